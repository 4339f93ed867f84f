# Socket errors from the real stack, as MicroPython's errno; argv: [script, peer_ip, closed_port].
import sys
import socket

peer, closed_port = sys.argv[1], int(sys.argv[2])


def errno_of(f, *args):
    try:
        f(*args)
    except OSError as e:
        return e.errno
    raise AssertionError("no OSError from {}".format(f))


assert errno_of(socket.socket, socket.AF_INET6, socket.SOCK_STREAM) == 97  # EAFNOSUPPORT
assert errno_of(socket.socket, socket.AF_INET, 99) == 22  # EINVAL

s = socket.socket()
s.settimeout(5)
assert errno_of(s.connect, (peer, closed_port)) == 111  # ECONNREFUSED (RST from the peer)
s.close()

a = socket.socket()
a.bind(("", 7100))
b = socket.socket()
assert errno_of(b.bind, ("", 7100)) == 98  # EADDRINUSE
a.close()
b.close()

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
assert errno_of(u.listen) == 95  # EOPNOTSUPP
u.close()
assert errno_of(u.sendto, b"x", (peer, 9)) == 9  # EBADF after close
print("errors ok")
