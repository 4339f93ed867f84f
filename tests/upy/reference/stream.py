# makefile/readline/read/readinto against a peer that sends lines then closes;
# argv: [script, peer_ip, port].
import sys
import socket
from portable import addr

peer, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.settimeout(5)
s.connect(addr(peer, port))
s.write(b"go\n")
f = s.makefile("rwb", 0)
print("readline", f.readline())
print("readline", f.readline())
buf = bytearray(6)
print("readinto", f.readinto(buf), bytes(buf))
print("read", f.read(5))
print("read rest", f.read())
print("readline at eof", f.readline())
print("read at eof", f.read(10))
f.close()
s.close()
