# Timeouts and non-blocking behaviour against a silent peer; argv: [script, peer_ip, port].
import sys
import time
import socket

peer, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 0))
s.setblocking(False)
try:
    s.recvfrom(10)
except OSError as e:
    assert e.errno == 11, e  # EAGAIN
else:
    raise AssertionError("non-blocking recvfrom returned")
s.settimeout(0.2)
t0 = time.ticks_ms()
try:
    s.recvfrom(10)
except OSError as e:
    assert e.errno == 110, e  # ETIMEDOUT
else:
    raise AssertionError("recvfrom did not time out")
waited = time.ticks_diff(time.ticks_ms(), t0)
assert 150 <= waited < 2000, waited
s.close()
print("timeouts ok")
