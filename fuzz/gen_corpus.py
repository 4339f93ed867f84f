#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/ (run from anywhere).

Seeds are real artefacts: Ethernet frames with valid checksums addressed to the netstack_frames
harness (MAC 02:00:00:00:00:01, 10.0.0.1), RTL8152 RX aggregates laid out as the chip does
(24-byte descriptors with the length incl. CRC in opts1, 8-byte alignment; Linux r8152.c
rx_bottom), the RTL8152's two configuration descriptors (vendor, and its CDC-ECM one) and QEMU
usb-net's CDC-ECM configuration, and byte patterns for the arbitrary-decoded targets.
The `found-*` files next to them are not generated here: they are inputs fuzz runs found.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MAC = bytes([0x02, 0, 0, 0, 0, 0x01])
PEER_MAC = bytes([0x02, 0, 0, 0, 0, 0x02])
IP = bytes([10, 0, 0, 1])
PEER_IP = bytes([10, 0, 0, 2])
BCAST = b"\xff" * 6


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, ethertype, payload):
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def l4_csum(src, dst, proto, seg):
    return csum(src + dst + struct.pack("!BBH", 0, proto, len(seg)) + seg)


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", opts=b""):
    off = (20 + len(opts)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 8192, 0, 0) + opts + payload
    c = l4_csum(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_csum(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa


def frames():
    syn = tcp(PEER_IP, IP, 40000, 80, 1000, 0, 0x02, opts=b"\x02\x04\x05\xb4")
    return {
        "arp_request": eth(BCAST, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER_IP, b"\0" * 6, IP)),
        "arp_reply": eth(MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER_IP, MAC, IP)),
        "tcp_syn": eth(MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, IP, 6, syn)),
        "tcp_ack_data": eth(MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, IP, 6, tcp(PEER_IP, IP, 40000, 80, 1001, 1, 0x18, b"GET / HTTP/1.0\r\n\r\n"), 2)),
        "tcp_rst": eth(MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, IP, 6, tcp(PEER_IP, IP, 4000, 49152, 0, 1, 0x14), 3)),
        "udp": eth(MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, IP, 17, udp(PEER_IP, IP, 6000, 5000, b"ping over udp"), 4)),
        "icmp_echo": eth(MAC, PEER_MAC, 0x0800, ipv4(PEER_IP, IP, 1, (lambda b: b[:2] + struct.pack("!H", csum(b)) + b[4:])(struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"abcdefgh"), 5)),
        "udp_fragment": eth(MAC, PEER_MAC, 0x0800, (lambda p: p[:6] + b"\x20\x00" + p[8:])(ipv4(PEER_IP, IP, 17, udp(PEER_IP, IP, 6000, 5000, b"x" * 32), 6))),
    }


def record(frame, advance=1):
    return struct.pack("<BH", advance, len(frame)) + frame


def aggregate(fs, trailing=b""):
    out = b""
    for f in fs:
        while len(out) % 8:
            out += b"\xee"
        desc = struct.pack("<I", len(f) + 4) + b"\0" * 20
        out += desc + f + b"\xc1\xc2\xc3\xc4"
    return out + trailing


def desc_config(ifaces_blob, value=1, attrs=0xA0, power=50, n_ifaces=1):
    total = 9 + len(ifaces_blob)
    return struct.pack("<BBHBBBBB", 9, 2, total, n_ifaces, value, 0, attrs, power) + ifaces_blob


def iface(num, alt, neps, cls, sub, proto):
    return bytes([9, 4, num, alt, neps, cls, sub, proto, 0])


def ep(addr, attr, mps, interval):
    return struct.pack("<BBBBHB", 7, 5, addr, attr, mps, interval)


def ecm_blob(mac_index, notify_mps, bulk_mps, data_alt0_empty=True):
    b = iface(0, 0, 1, 0x02, 0x06, 0x00)
    b += bytes([5, 0x24, 0x00, 0x10, 0x01])  # header, CDC 1.10
    b += bytes([5, 0x24, 0x06, 0x00, 0x01])  # union: control 0, data 1
    b += bytes([13, 0x24, 0x0F, mac_index]) + struct.pack("<IHHB", 0, 1514, 0, 0)
    b += ep(0x83, 3, notify_mps, 8)
    if data_alt0_empty:
        b += iface(1, 0, 0, 0x0A, 0, 0)
    b += iface(1, 1, 2, 0x0A, 0, 0) + ep(0x81, 2, bulk_mps, 0) + ep(0x02, 2, bulk_mps, 0)
    return b


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    fs = frames()
    # rtl8152_rx: aggregates as the chip builds them.
    write("rtl8152_rx", "one_frame", aggregate([fs["tcp_syn"]]))
    write("rtl8152_rx", "three_frames_aligned", aggregate([fs["arp_request"], fs["udp"], fs["tcp_ack_data"]]))
    write("rtl8152_rx", "oversize_then_frame", aggregate([b"\x5a" * 1600, fs["icmp_echo"]]))
    write("rtl8152_rx", "truncated_frame", aggregate([fs["udp"], fs["tcp_syn"]])[:-20])
    write("rtl8152_rx", "short_descriptor_tail", aggregate([fs["arp_reply"]], b"\x40\x00\x00\x00\x00"))
    write("rtl8152_rx", "bogus_length", struct.pack("<I", 12) + b"\0" * 60)

    # usb_descriptors: real configurations.
    rtl_vendor = desc_config(iface(0, 0, 3, 0xFF, 0xFF, 0x00) + ep(0x81, 2, 512, 0) + ep(0x02, 2, 512, 0) + ep(0x83, 3, 2, 8))
    rtl_ecm = desc_config(ecm_blob(3, 16, 512), value=2, n_ifaces=2)
    qemu_ecm = desc_config(ecm_blob(0x0F, 16, 64), value=2, attrs=0xC0, n_ifaces=2)
    write("usb_descriptors", "rtl8152_config1_vendor", rtl_vendor)
    write("usb_descriptors", "rtl8152_config2_cdc_ecm", rtl_ecm)
    write("usb_descriptors", "qemu_usb_net_cdc_ecm", qemu_ecm)
    write("usb_descriptors", "ecm_without_union", desc_config(ecm_blob(3, 16, 512).replace(bytes([5, 0x24, 0x06, 0x00, 0x01]), b""), n_ifaces=2))
    write("usb_descriptors", "rtl8152_device_descriptor", bytes([18, 1, 0x10, 0x02, 0, 0, 0, 64, 0xDA, 0x0B, 0x52, 0x81, 0x00, 0x20, 1, 2, 3, 2]))
    mac = "0200000000AB"
    write("usb_descriptors", "mac_string", bytes([2 + 2 * len(mac), 3]) + mac.encode("utf-16-le"))
    write("usb_descriptors", "notification_speed", bytes([0xA1, 0x2A, 0, 0, 0, 0, 8, 0]) + struct.pack("<II", 100_000_000, 100_000_000))
    write("usb_descriptors", "notification_connected", bytes([0xA1, 0x00, 1, 0, 0, 0, 0, 0]))

    # netstack_frames: flag byte, then [advance_ms][len u16 LE][frame] records.
    static = b"\0"
    write("netstack_frames", "arp_then_syn_then_data", static + record(fs["arp_request"]) + record(fs["tcp_syn"]) + record(fs["tcp_ack_data"], 5))
    write("netstack_frames", "arp_reply_rst_for_client", static + record(fs["arp_reply"]) + record(fs["tcp_rst"], 10))
    write("netstack_frames", "udp_icmp_fragment", static + record(fs["udp"]) + record(fs["icmp_echo"]) + record(fs["udp_fragment"]))
    write("netstack_frames", "runt_and_garbage", static + record(b"\x02\0\0\0\0\x01" + b"\x08") + record(bytes(range(60))))
    write("netstack_frames", "dhcp_mode_broadcast_arp", b"\x01" + record(fs["arp_request"], 200))

    # Arbitrary-decoded targets: byte patterns the decoder turns into varied call lists.
    for target in ("dwc2_channel", "socket_sequence"):
        write(target, "zeros", b"\0" * 64)
        write(target, "counting", bytes(range(256)))
        write(target, "mixed", bytes((i * 37 + 11) & 0xFF for i in range(512)))


if __name__ == "__main__":
    main()
