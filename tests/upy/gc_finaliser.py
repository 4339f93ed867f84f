# Sockets dropped without close() are closed by the garbage collector (finaliser), so opening
# far more sockets than the table holds never runs out.
import gc
import socket

for i in range(60):
    s = socket.socket()
    s = None
    if i % 4 == 3:
        gc.collect()
print("gc_finaliser ok")
