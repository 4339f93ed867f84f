# A peer that sends and then resets (SO_LINGER 0, close); argv: [script, port]. On `port` and
# `port + 1` the peer connects, sends an 18-byte request and resets; the board, non-blocking,
# polls until the reset shows, then reads: every byte the peer sent, ECONNRESET once, then EOF.
# On `port + 2` the board sits in a blocking recv when the data and then the reset arrive.
import sys
import socket
import select
import errno
import time
from portable import addr, err

port = int(sys.argv[1])


def events(p):
    return [ev for (_, ev) in p.poll(0)]


def listener(port):
    # One listener per round, so that the peer's next connection waits for the board.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(addr("0.0.0.0", port))
    srv.listen(1)
    return srv


for round, size in enumerate((10, 100)):
    srv = listener(port + round)
    conn, _ = srv.accept()
    srv.close()
    conn.setblocking(False)
    p = select.poll()
    p.register(conn, select.POLLIN)
    for _ in range(250):
        if p.poll(20) and events(p)[0] & select.POLLERR:
            break
        time.sleep_ms(20)
    print("reset seen", events(p))
    got = b""
    for _ in range(5):
        try:
            data = conn.recv(size)
            got += data
            print("recv", data)
        except OSError as e:
            print("recv error", err(e) == errno.ECONNRESET, "after", len(got), "bytes")
        print("poll", events(p))
    try:
        conn.send(b"x")
    except OSError as e:
        print("send after reset", err(e))
    conn.close()
    print("closed poll", events(p))
    try:
        conn.recv(10)
    except OSError as e:
        print("recv after close", err(e) == errno.EBADF)
srv = listener(port + 2)
conn, _ = srv.accept()
srv.close()
conn.settimeout(10)
got = b""
while True:
    try:
        data = conn.recv(100)
    except OSError as e:
        print("blocking recv error", err(e) == errno.ECONNRESET, "after", got)
        break
    print("blocking recv", data)
    if not data:
        break
    got += data
print("then", conn.recv(100))
conn.close()
