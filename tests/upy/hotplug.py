# The board's USB NIC unplugged while a TCP connection is open, then plugged back in: the open
# connection's next call raises ECONNABORTED and the interface reports no connection; after the
# replug the NIC has the same MAC, the interface the addressing the user had (argv[3]: "static"
# or "dhcp"), and a new connection carries data. argv: [script, peer_ip, port, addressing].
# The simulated board's hands are the `simboard` module.
import errno
import sys
import time
import network
import simboard
import socket

peer = (sys.argv[1], int(sys.argv[2]))
addressing = sys.argv[3]
lan = network.LAN()


def wait_connected():
    for _ in range(400):  # at most 20 s
        if lan.isconnected():
            return
        time.sleep(0.05)
    raise AssertionError("no connection: status %d" % lan.status())


if addressing == "dhcp":
    lan.ifconfig("dhcp")
wait_connected()
mac = lan.config("mac")
config = lan.ifconfig()

s = socket.socket()
s.settimeout(20)
s.connect(peer)
s.send(b"before\n")
assert s.recv(4) == b"ack\n"  # the peer has the line: the connection is up both ways
assert simboard.unplug_usb()
try:
    s.recv(16)
except OSError as e:
    assert e.errno == errno.ECONNABORTED, e
else:
    raise AssertionError("recv after the unplug returned")
assert not lan.isconnected()
assert lan.ifconfig()[0] == "0.0.0.0", lan.ifconfig()
s.close()
assert not simboard.unplug_usb(), "already out"

assert simboard.replug_usb()
wait_connected()
assert lan.config("mac") == mac, (lan.config("mac"), mac)
assert lan.ifconfig() == config, (lan.ifconfig(), config)

s = socket.socket()
s.settimeout(20)
s.connect(peer)
s.send(b"after\n")
s.close()
print("hotplug ok", addressing, lan.ifconfig())
