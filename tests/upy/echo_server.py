# TCP echo server on the board: accepts one connection on port 7000 and sends back every byte
# until the client shuts its side, then reports the count and the client's address.
import socket

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("", 7000))
srv.listen(1)
conn, addr = srv.accept()
total = 0
while True:
    data = conn.recv(4096)
    if not data:
        break
    conn.sendall(data)
    total += len(data)
conn.close()
srv.close()
print("echo_server done", total, addr[0])
