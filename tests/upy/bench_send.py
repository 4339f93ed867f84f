# Sends `total` bytes in `chunk`-byte sendall() calls; argv: [script, peer_ip, port, total, chunk].
import sys
import socket

peer, port, total, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
buf = bytes(chunk)
s = socket.socket()
s.connect((peer, port))
sent = 0
while sent < total:
    s.sendall(buf)
    sent += chunk
s.close()
