# UDP round trips with the peer's echo ("pong:" + datagram); argv: [script, peer_ip, port].
import sys
import socket
from portable import addr, host_port

peer, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
for msg in (b"ping", b"x" * 1000):
    print("sendto", s.sendto(msg, addr(peer, port)))
    data, frm = s.recvfrom(2000)
    print("recvfrom", data[:12], len(data), host_port(frm))
s.close()
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(5)
c.connect(addr(peer, port))
print("send connected", c.send(b"conn"))
print("recv connected", c.recv(100))
c.close()
