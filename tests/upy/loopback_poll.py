# A TCP server and client in one script over 127.0.0.1, both non-blocking, driven by one
# select.poll: the client sends a known payload, the server echoes every byte back, the client
# checks what returns byte for byte. Needs no peer (a board without NIC runs it over loopback).
# Prints one line per stage; bounded in polls and in time.
import select
import socket
import time

PORT = 7300
SIZE = 48 * 1024  # three times a TCP buffer: the window fills and drains several times
PAYLOAD = bytes((i * 31 + i // 251) & 0xFF for i in range(SIZE))
LIMIT_MS = 20000
MAX_POLLS = 100000

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", PORT))
srv.listen(1)
srv.setblocking(False)

cli = socket.socket()
cli.setblocking(False)
try:
    cli.connect(("127.0.0.1", PORT))
except OSError as e:
    print("connect in progress", e.errno == 115)  # EINPROGRESS

poller = select.poll()
poller.register(srv, select.POLLIN)
poller.register(cli, select.POLLOUT)

conn = None
sent = 0
echo = bytearray()  # what the server received and has not echoed yet
echoed = 0
back = bytearray()
polls = 0
start = time.ticks_ms()
while len(back) < SIZE:
    polls += 1
    if polls > MAX_POLLS or time.ticks_diff(time.ticks_ms(), start) > LIMIT_MS:
        raise RuntimeError("stuck: sent {} echoed {} back {}".format(sent, echoed, len(back)))
    for obj, ev in poller.poll(1000):
        if ev & (select.POLLERR | select.POLLHUP):
            raise RuntimeError("poll error {} on {}".format(ev, obj))
        if obj is srv:
            conn, peer = srv.accept()
            conn.setblocking(False)
            print("accepted from", peer[0])
            poller.unregister(srv)
            poller.register(conn, select.POLLIN)
        elif obj is conn:
            if ev & select.POLLIN:
                data = conn.recv(4096)
                if not data:
                    raise RuntimeError("client closed early")
                echo.extend(data)
            if ev & select.POLLOUT and echo:
                n = conn.send(echo)
                echoed += n
                echo = echo[n:]
            poller.modify(conn, select.POLLIN | (select.POLLOUT if echo else 0))
        elif obj is cli:
            if ev & select.POLLOUT and sent < SIZE:
                sent += cli.send(PAYLOAD[sent : sent + 4096])
            if ev & select.POLLIN:
                back.extend(cli.recv(4096))
            poller.modify(cli, select.POLLIN | (select.POLLOUT if sent < SIZE else 0))

print("client sent", sent)
print("server echoed", echoed)
print("client got back", len(back), "bytes, equal:", bytes(back) == PAYLOAD)
cli.close()
# The server side sees the client's FIN as an empty read.
poller.modify(conn, select.POLLIN)
while True:
    polls += 1
    if polls > MAX_POLLS or time.ticks_diff(time.ticks_ms(), start) > LIMIT_MS:
        raise RuntimeError("no end of stream")
    if poller.poll(1000) and conn.recv(16) == b"":
        print("server saw end of stream")
        break
conn.close()
srv.close()
