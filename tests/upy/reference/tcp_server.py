# TCP server on the board: one client (the peer) sends a request, gets it upper-cased.
# argv: [script, port].
import sys
import socket
from portable import addr, host_port

port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(addr("0.0.0.0", port))
srv.listen(1)
srv.settimeout(10)
conn, peer = srv.accept()
print("accepted from", host_port(peer)[0])
conn.settimeout(5)
req = conn.recv(100)
print("request", req)
conn.sendall(req.upper())
conn.close()
srv.close()
print("done")
