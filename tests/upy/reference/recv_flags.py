# recv/recvfrom flags and recv on a listening socket; argv: [script, peer_ip, tcp_port,
# udp_port, listen_port]. The TCP peer sends b"abcdefgh" on connection, waits for b"done" and
# closes; the UDP peer answers each datagram with two: b"one:" and b"two:" + the datagram.
import sys
import socket
import errno
import time
from portable import addr, err, host_port

peer, tcp_port, udp_port, listen_port = (
    sys.argv[1],
    int(sys.argv[2]),
    int(sys.argv[3]),
    int(sys.argv[4]),
)


def attempt(what, f, *args):
    try:
        print(what, f(*args))
    except OSError as e:
        print(what, "OSError", err(e))


s = socket.socket()
s.settimeout(5)
s.connect(addr(peer, tcp_port))
print("peek 4", s.recv(4, socket.MSG_PEEK))
for _ in range(100):
    if len(s.recv(8, socket.MSG_PEEK)) == 8:
        break
    time.sleep_ms(10)
print("peek 8", s.recv(8, socket.MSG_PEEK))
print("recvfrom peek", s.recvfrom(3, socket.MSG_PEEK)[0])
print("recv 8", s.recv(8))
start = time.ticks_ms()
attempt("dontwait empty", s.recv, 8, socket.MSG_DONTWAIT)
attempt("dontwait peek empty", s.recv, 8, socket.MSG_DONTWAIT | socket.MSG_PEEK)
print("no wait", time.ticks_diff(time.ticks_ms(), start) < 1000)
s.send(b"done")
print("eof", s.recv(8))
print("eof dontwait", s.recv(8, socket.MSG_DONTWAIT))
s.close()

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.bind(addr("0.0.0.0", 0))
attempt("udp dontwait empty", u.recv, 8, socket.MSG_DONTWAIT)
attempt("udp recvfrom dontwait empty", u.recvfrom, 8, socket.MSG_DONTWAIT)
u.sendto(b"ping", addr(peer, udp_port))
data, src = u.recvfrom(16, socket.MSG_PEEK)
print("udp peek", data, host_port(src)[1] == udp_port)
print("udp peek short", u.recv(3, socket.MSG_PEEK))
data, src = u.recvfrom(16)
print("udp recvfrom", data, host_port(src)[1] == udp_port)
for _ in range(100):
    try:
        print("udp second", u.recv(16, socket.MSG_DONTWAIT))
        break
    except OSError as e:
        if err(e) != errno.EAGAIN:
            raise
        time.sleep_ms(10)
attempt("udp drained", u.recv, 16, socket.MSG_DONTWAIT)
u.close()

l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(addr("0.0.0.0", listen_port))
l.listen(1)
for blocking in (True, False):
    l.setblocking(blocking)
    attempt("listening recv blocking={}".format(blocking), l.recv, 10)
l.settimeout(1)
attempt("listening recv timeout", l.recv, 10)
attempt("listening recv dontwait", l.recv, 10, socket.MSG_DONTWAIT)
l.close()
