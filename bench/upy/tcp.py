# TCP throughput of a MicroPython script, for `cargo xtask bench`: the same file runs on the
# simulated board and on the unix MicroPython. It connects to a Linux peer that times the
# transfer and either sinks what the script sends or sends it BYTES and closes.
#
#   tcp.py MODE DIRECTION HOST PORT BYTES
#
# MODE: `block` (blocking send/readinto) or `poll` (non-blocking socket, select.poll);
# DIRECTION: `send` (script -> peer) or `recv` (peer -> script, until the peer closes).
# Prints nothing on success; fails (an exception) when fewer bytes moved than expected.

import errno
import select
import socket
import sys

CHUNK = 32 * 1024


def would_block(e):
    return e.errno == errno.EAGAIN


def send_all(s, mv, total, poller):
    sent = 0
    while sent < total:
        if poller is not None:
            poller.poll(1000)
        # Non-blocking: send until the buffer is full, then wait for room.
        while sent < total:
            try:
                n = s.send(mv[: min(CHUNK, total - sent)])
            except OSError as e:
                if would_block(e):
                    break
                raise
            sent += n
    return sent


def recv_all(s, mv, poller):
    got = 0
    while True:
        if poller is not None:
            poller.poll(1000)
        # Non-blocking: read until nothing is waiting (None), then wait for data.
        while True:
            n = s.readinto(mv)
            if n is None:
                break
            if n == 0:
                return got
            got += n


def main():
    mode, direction, host, port, total = sys.argv[1:6]
    total = int(total)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(socket.getaddrinfo(host, int(port))[0][-1])
    poller = None
    if mode == "poll":
        s.setblocking(False)
        poller = select.poll()
        poller.register(s, select.POLLOUT if direction == "send" else select.POLLIN)
    elif mode != "block":
        raise ValueError("MODE is block or poll")
    mv = memoryview(bytearray(CHUNK))
    if direction == "send":
        moved = send_all(s, mv, total, poller)
    elif direction == "recv":
        moved = recv_all(s, mv, poller)
    else:
        raise ValueError("DIRECTION is send or recv")
    s.close()
    if moved != total:
        raise OSError("moved %d of %d bytes" % (moved, total))


main()
