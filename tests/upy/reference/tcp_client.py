# TCP client against the peer's echo server; argv: [script, peer_ip, port].
import sys
import socket
from portable import addr, err

peer, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(addr(peer, port))
for i in range(3):
    msg = "line {}\n".format(i)
    print("write", s.write(msg))
    print("readline", s.readline())
print("send empty", s.send(b""))
print("send", s.send(b"abc"))
got = b""
while len(got) < 3:
    got += s.recv(16)
print("recv", got)
s.sendall(b"x" * 3000)
got = b""
while len(got) < 3000:
    got += s.recv(1024)
print("sendall echoed", len(got))
s.close()
try:
    s.send(b"x")
except OSError as e:
    print("send after close", err(e))
