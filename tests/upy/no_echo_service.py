# The board runs no echo service (issue 18): a datagram to UDP port 7 gets no reply, and a TCP
# connection to port 7 is refused. The control, in the same run and over the same path, proves
# the probe would have seen a reply: a UDP socket of the script's own on another port receives
# the probe's datagram and answers it, and the probe receives that answer. Needs no peer: the
# board's own address is 127.0.0.1 (loopback; on a board with a NIC the stack owns it too).
import socket

HOST = "127.0.0.1"
CONTROL_PORT = 7007
WAIT_S = 2

probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.settimeout(WAIT_S)

control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
control.bind((HOST, CONTROL_PORT))
control.settimeout(WAIT_S)
probe.sendto(b"echo?", (HOST, CONTROL_PORT))
data, sender = control.recvfrom(64)
control.sendto(data, sender)
reply, source = probe.recvfrom(64)
print("control: port", CONTROL_PORT, "answered", reply, "from port", source[1])
control.close()

probe.sendto(b"echo?", (HOST, 7))
try:
    reply, source = probe.recvfrom(64)
    print("udp port 7 answered", reply, "from", source)
except OSError as e:
    print("udp port 7: no reply within", WAIT_S, "s, errno", e.errno)  # ETIMEDOUT 110
probe.close()

tcp = socket.socket()
tcp.settimeout(WAIT_S)
try:
    tcp.connect((HOST, 7))
    print("tcp port 7 accepted the connection")
except OSError as e:
    print("tcp port 7: errno", e.errno)  # ECONNREFUSED 111
tcp.close()
