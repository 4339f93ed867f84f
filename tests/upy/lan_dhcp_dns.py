# network.LAN with DHCP, then a DNS name, against dnsmasq on the Linux peer.
# argv: [script, expected_board_ip, peer_name, peer_ip].
import sys
import time
import network
import socket

board_ip, peer_name, peer_ip = sys.argv[1], sys.argv[2], sys.argv[3]
lan = network.LAN()
assert lan.active()
lan.ifconfig("dhcp")
for _ in range(200):
    if lan.isconnected():
        break
    time.sleep(0.05)
assert lan.isconnected(), lan.status()
ip, mask, gw, dns = lan.ifconfig()
assert ip == board_ip and mask == "255.255.255.0" and dns == peer_ip, lan.ifconfig()
ai = socket.getaddrinfo(peer_name, 80)
assert ai == [(socket.AF_INET, socket.SOCK_STREAM, 0, "", (peer_ip, 80))], ai
try:
    socket.getaddrinfo("nonexistent.k230.sim", 80)
except OSError as e:
    assert e.errno == -2, e
else:
    raise AssertionError("unknown name resolved")
print("lan_dhcp_dns ok", lan.ifconfig())
