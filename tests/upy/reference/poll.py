# select.poll on a listening socket and a connection; argv: [script, port]. The peer connects,
# waits for "go", sends "data", waits for "bye" and closes.
import sys
import socket
import select
from portable import addr

port = int(sys.argv[1])


def wait(p, flags_wanted):
    # Polls (bounded) until one of `flags_wanted` shows, and returns the events.
    for _ in range(100):
        ev = p.poll(50)
        if ev and ev[0][1] & flags_wanted:
            return ev[0][1]
    return 0


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(addr("0.0.0.0", port))
srv.listen(1)
p = select.poll()
p.register(srv, select.POLLIN)
print("listener idle", p.poll(0))
print("listener pending", wait(p, select.POLLIN) & select.POLLIN)
conn, _ = srv.accept()
conn.settimeout(5)
q = select.poll()
q.register(conn, select.POLLIN | select.POLLOUT)
print("connection writable", wait(q, select.POLLOUT) & (select.POLLIN | select.POLLOUT))
q.modify(conn, select.POLLIN)
print("nothing to read", q.poll(0))
conn.write(b"go")
print("data readable", wait(q, select.POLLIN) & select.POLLIN)
print("read", conn.recv(10))
conn.write(b"bye")
print("eof readable", wait(q, select.POLLIN) & select.POLLIN)
print("read at eof", conn.recv(10))
q.unregister(conn)
conn.close()
srv.close()
print("ipoll", [ev for (_, ev) in p.ipoll(0)] if hasattr(p, "ipoll") else "none")
