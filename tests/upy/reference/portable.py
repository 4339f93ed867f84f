# Helpers that let one script run on our socket (modlwip's API: (host, port) tuples) and on
# the unix port's own socket (raw sockaddr bytes), for the reference comparison.
import socket


def addr(host, port):
    # The address `connect`/`bind`/`sendto` take: getaddrinfo's, as MicroPython's docs advise.
    return socket.getaddrinfo(host, port)[0][-1]


def host_port(a):
    # (host, port) from what `accept`/`recvfrom` return: a tuple on lwIP, a sockaddr (decoded
    # with the unix port's `socket.sockaddr`) on the unix port.
    if isinstance(a, tuple):
        return a
    _, ip, port = socket.sockaddr(a)
    return ".".join(str(b) for b in ip), port


def err(e):
    # The argument of an OSError (an errno, or lwIP's negative getaddrinfo code).
    return e.args[0] if e.args else None
