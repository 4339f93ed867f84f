# Sockets on the board talking to each other: TCP and UDP through 127.0.0.1 and through the
# board's own address; argv: [script, board_ip, peer_ip, port] (uses port .. port + 2).
import sys
import socket
from portable import addr, err, host_port

board, peer, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


def attempt(what, f, *args):
    try:
        print(what, f(*args))
    except OSError as e:
        print(what, "OSError", err(e))


print("localhost", host_port(socket.getaddrinfo("localhost", 80)[0][-1]))
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(addr("127.0.0.1", port))
srv.listen(2)
c = socket.socket()
c.settimeout(5)
c.connect(addr("127.0.0.1", port))
s, peer_addr = srv.accept()
s.settimeout(5)
print("accepted from", host_port(peer_addr)[0])
c.send(b"hello")
print("server got", s.recv(16))
s.sendall(bytes(range(256)) * 12)
got = b""
while len(got) < 3072:
    got += c.recv(1024)
print("client got", len(got), got == bytes(range(256)) * 12)
c.close()
print("server eof", s.recv(16))
s.close()
srv.close()

# A listener on any address, reached through 127.0.0.1 and the board's own address.
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(addr("0.0.0.0", port + 1))
srv.listen(2)
for to in ("127.0.0.1", board):
    c = socket.socket()
    c.settimeout(5)
    c.connect(addr(to, port + 1))
    s, peer_addr = srv.accept()
    c.send(to.encode())
    print("via", to, "from", host_port(peer_addr)[0], s.recv(16))
    s.close()
    c.close()
srv.close()

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.bind(addr("127.0.0.1", port + 2))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v.settimeout(5)
v.sendto(b"dgram", addr("127.0.0.1", port + 2))
data, src = u.recvfrom(16)
print("udp", data, host_port(src)[0])
u.sendto(b"back", src)
print("udp reply", v.recv(16))
attempt("udp from 127.0.0.1 to the peer", u.sendto, b"x", addr(peer, port))
u.close()
v.close()

c = socket.socket()
c.settimeout(5)
attempt("connect to a closed port", c.connect, addr("127.0.0.1", port + 3))
c.close()
c = socket.socket()
c.settimeout(5)
c.bind(addr("127.0.0.1", 0))
attempt("connect from 127.0.0.1 to the peer", c.connect, addr(peer, port))
c.close()
