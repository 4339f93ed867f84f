# TCP client against the peer's echo server; argv: [script, peer_ip, port].
import sys
import socket

peer, port = sys.argv[1], int(sys.argv[2])
ai = socket.getaddrinfo(peer, port)
assert ai[0][0] == socket.AF_INET and ai[0][-1] == (peer, port), ai
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(ai[0][-1])
for i in range(5):
    msg = "line {}\n".format(i)
    assert s.write(msg) == len(msg)
    echoed = s.readline()
    assert echoed == msg.encode(), (echoed, msg)
s.sendall(b"bye\n")
assert s.recv(64) == b"bye\n"
s.close()
try:
    s.send(b"x")
except OSError as e:
    assert e.errno == 9, e
else:
    raise AssertionError("send after close")
print("tcp_echo_client ok")
