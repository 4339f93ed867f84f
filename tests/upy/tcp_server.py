# TCP server on the board: accepts one connection, answers with the upper-cased request;
# select.poll reports the pending connection first. argv: [script, port].
import sys
import socket
import select

port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("", port))
srv.listen(1)
p = select.poll()
p.register(srv, select.POLLIN)
events = []
for _ in range(100):
    events = p.poll(100)
    if events:
        break
assert events and events[0][1] & select.POLLIN, events
conn, addr = srv.accept()
conn.settimeout(5)
req = conn.recv(100)
conn.sendall(req.upper())
conn.close()
srv.close()
print("tcp_server ok", addr[0])
