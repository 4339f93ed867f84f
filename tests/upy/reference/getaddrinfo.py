# getaddrinfo of numeric addresses, the peer's DNS name and an unknown name;
# argv: [script, peer_name, peer_ip, unknown_name].
import sys
import socket
from portable import host_port, err

name, ip, unknown = sys.argv[1], sys.argv[2], sys.argv[3]
for host, port in (("10.1.2.3", 80), (ip, 8080), (name, 443)):
    ai = socket.getaddrinfo(host, port)
    family, socktype = ai[0][0], ai[0][1]
    print(host, family == socket.AF_INET, socktype == socket.SOCK_STREAM, host_port(ai[0][-1]))
try:
    socket.getaddrinfo(unknown, 80)
except OSError as e:
    print(unknown, "OSError", err(e))
