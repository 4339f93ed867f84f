# Non-blocking sockets and timeouts, with exact errno; argv: [script, peer_ip, mute_port].
# The peer accepts on mute_port and never sends.
import sys
import time
import socket
from portable import addr, err


def attempt(what, f, *args):
    t0 = time.ticks_ms()
    try:
        r = f(*args)
        print(what, "returned", r)
    except OSError as e:
        waited = time.ticks_diff(time.ticks_ms(), t0)
        print(what, "OSError", err(e), "waited", "long" if waited >= 150 else "short")


peer, port = sys.argv[1], int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(addr("0.0.0.0", 7601))
u.setblocking(False)
attempt("udp recvfrom non-blocking", u.recvfrom, 10)
u.settimeout(0.2)
attempt("udp recvfrom timeout", u.recvfrom, 10)
u.close()
srv = socket.socket()
srv.bind(addr("0.0.0.0", 7602))
srv.listen(1)
srv.setblocking(False)
attempt("accept non-blocking", srv.accept)
srv.settimeout(0.2)
attempt("accept timeout", srv.accept)
srv.close()
c = socket.socket()
c.setblocking(False)
attempt("connect non-blocking", c.connect, addr(peer, port))
c.close()
c = socket.socket()
c.settimeout(5)
c.connect(addr(peer, port))
c.setblocking(False)
attempt("recv non-blocking", c.recv, 10)
print("read non-blocking", c.read(10))
c.settimeout(0.2)
attempt("recv timeout", c.recv, 10)
c.close()
