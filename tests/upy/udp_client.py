# UDP round trip with the peer; argv: [script, peer_ip, port].
import sys
import socket

peer, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
assert s.sendto(b"ping", (peer, port)) == 4
data, addr = s.recvfrom(100)
assert data == b"pong" and addr == (peer, port), (data, addr)
s.close()
print("udp_client ok")
