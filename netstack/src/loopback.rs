//! The loopback path: the stack's one smoltcp interface also owns 127.0.0.1/8, and every frame
//! it sends to a loopback address or to its own NIC address goes back into it instead of onto
//! the wire, as lwIP's loopback (`netif_loop_output`, `LWIP_NETIF_LOOPBACK`) and Linux's `lo` do.
//!
//! [`Link`] is the `Device` the interface polls: a NIC (or [`NoNic`]) plus a [`LoopQueue`] of
//! frames on their way back. Each frame smoltcp sends is built in a scratch buffer and routed by
//! its addresses ([`route`]): back into the queue, to the NIC, or (a loopback source towards
//! anywhere else, which the socket layer already refuses) nowhere. Frames from the NIC that
//! carry a loopback address, or the stack's own address as their source, are martians and never
//! reach smoltcp ([`is_martian`]). So no 127.0.0.0/8 frame ever reaches the wire, in either
//! direction, whatever a socket is bound to; every frame not sent is counted ([`LinkDrops`]).
//!
//! One interface keeps one socket set and one routing decision: a listener bound to `0.0.0.0`
//! is reached through the NIC and through 127.0.0.1 alike. smoltcp's neighbour cache learns
//! that 127.0.0.1 and the NIC address are at the interface's own MAC from ARP replies the path
//! makes up ([`LoopQueue::announce`]), so no ARP request is ever sent for them.
//!
//! TCP and UDP checksums are the link's, not smoltcp's ([`crate::checksum`]): it fills them in
//! every frame it sends and checks them in every frame from the NIC, leaving to the NIC what its
//! `ChecksumCapabilities` say it does; a frame with a wrong one is dropped and counted.

use core::cell::Cell;
use core::net::Ipv4Addr;

use crate::{checksum, segment};

use managed::ManagedSlice;
use smoltcp::phy::{
    Checksum, ChecksumCapabilities, Device, DeviceCapabilities, Medium, PacketMeta, RxToken,
    TxToken,
};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Packet,
};

/// The address the stack answers on its loopback network.
pub const LOOPBACK_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The prefix length of the loopback network (127.0.0.0/8).
pub const LOOPBACK_PREFIX: u8 = 8;
/// Largest frame on the loopback path: an Ethernet frame with 1500 bytes of IP.
pub const LOOP_FRAME: usize = 1514;
/// Frames the loopback queue holds; the interface's egress waits while it has no room for the
/// largest frame it may send (with feature `large-send`, [`LOOP_SEGMENTS`] segments when the NIC
/// takes large frames: the queue is twice as long).
pub const LOOP_FRAMES: usize = if cfg!(feature = "large-send") {
    LOOP_FRAMES_BASE + LOOP_SEGMENTS
} else {
    LOOP_FRAMES_BASE
};
/// Frames the loopback queue holds without feature `large-send`.
pub(crate) const LOOP_FRAMES_BASE: usize = 8;
/// Buffers behind the queue: one more than it holds, for a reply built while the oldest frame
/// is being received.
pub const LOOP_SLOTS: usize = LOOP_FRAMES + 1;
/// The MAC of a stack without NIC (locally administered); only loopback frames carry it.
pub const NO_NIC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/// Where a frame the interface sends goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Back into the interface (to 127.0.0.0/8 or to its own address).
    Loop,
    /// Out through the NIC.
    Nic,
    /// Nowhere: from a loopback address to somewhere else, which must not reach the wire.
    Refuse,
}

/// Addresses `frame` (Ethernet) carries that decide its route: IPv4 source and destination, or
/// ARP sender and target; `None` for anything else or what does not parse.
fn addresses(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            Some((ip.src_addr(), ip.dst_addr()))
        }
        EthernetProtocol::Arp => {
            let arp = ArpPacket::new_checked(eth.payload()).ok()?;
            let src: [u8; 4] = arp.source_protocol_addr().try_into().ok()?;
            let dst: [u8; 4] = arp.target_protocol_addr().try_into().ok()?;
            Some((Ipv4Addr::from(src), Ipv4Addr::from(dst)))
        }
        _ => None,
    }
}

/// The route of a frame the interface sends, given its own NIC address `own`.
pub fn route(frame: &[u8], own: Option<Ipv4Addr>) -> Route {
    match addresses(frame) {
        Some((_, dst)) if dst.is_loopback() || Some(dst) == own => Route::Loop,
        Some((src, _)) if src.is_loopback() => Route::Refuse,
        Some(_) | None => Route::Nic,
    }
}

/// Whether a frame received from the NIC must be dropped: it carries a loopback address (IPv4
/// or ARP), or claims the stack's own address `own` as its IPv4 source.
pub fn is_martian(frame: &[u8], own: Option<Ipv4Addr>) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let own_source = eth.ethertype() == EthernetProtocol::Ipv4
        && addresses(frame).is_some_and(|(src, _)| Some(src) == own);
    own_source || addresses(frame).is_some_and(|(src, dst)| src.is_loopback() || dst.is_loopback())
}

/// Frames the loopback path did not deliver, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkDrops {
    /// Frames from the NIC with a loopback address or the stack's own source address.
    pub martians: u64,
    /// Frames from a loopback source to a non-loopback destination, not sent.
    pub refused: u64,
    /// Frames for the NIC while the link is down (or there is no NIC).
    pub no_link: u64,
    /// Frames from the NIC with a wrong TCP or UDP checksum.
    pub bad_checksum: u64,
    /// Segments of a large frame without room left for them (in the loopback queue, or a NIC
    /// that cuts no large frames ran out of buffers mid-frame); TCP sends them again.
    pub no_room: u64,
}

/// The frames on their way back, in buffers set aside when the stack is built.
pub struct LoopQueue<'a> {
    slots: ManagedSlice<'a, [u8; LOOP_FRAME]>,
    scratch: ManagedSlice<'a, u8>,
    lens: [Cell<usize>; LOOP_SLOTS],
    head: Cell<usize>,
    count: Cell<usize>,
    nic_turn: Cell<bool>,
    drops: Cell<LinkDrops>,
    /// The largest frame the interface was told the link takes (its segmentation capability
    /// when it was built), `None` for no large frames.
    large: Option<usize>,
}

impl<'a> LoopQueue<'a> {
    /// A queue over `slots` (at least [`LOOP_SLOTS`] used) and a `scratch` buffer of at least
    /// [`LOOP_FRAME`] bytes (large frames need [`LARGE_FRAME`]).
    pub(crate) fn new(
        slots: ManagedSlice<'a, [u8; LOOP_FRAME]>,
        scratch: ManagedSlice<'a, u8>,
    ) -> Self {
        assert!(slots.len() >= LOOP_SLOTS && scratch.len() >= LOOP_FRAME);
        Self {
            slots,
            scratch,
            lens: Default::default(),
            head: Cell::new(0),
            count: Cell::new(0),
            nic_turn: Cell::new(true),
            drops: Cell::new(LinkDrops::default()),
            large: None,
        }
    }

    /// Frames waiting to be received.
    pub fn queued(&self) -> usize {
        self.count.get()
    }

    /// What the path dropped so far.
    pub fn drops(&self) -> LinkDrops {
        self.drops.get()
    }

    /// Records the largest frame the interface was built to send (`caps`, the link's
    /// capabilities it was given), which decides the room egress waits for.
    pub(crate) fn built_with(&mut self, caps: &DeviceCapabilities) {
        self.large = segment::offered(caps);
    }

    /// Queues, for each of `addrs`, an ARP reply that tells the interface the address is at its
    /// own `mac`; false (nothing queued) without room for all of them.
    ///
    /// Like Linux's `lo` (no ARP), the loop path needs no address resolution, but smoltcp's
    /// Ethernet interface resolves every neighbour, and its neighbour cache rate-limits all
    /// requests together (one a second): a request for 127.0.0.1 would hold back the first
    /// request for a real neighbour. These replies fill the cache without any request.
    pub(crate) fn announce(&mut self, mac: [u8; 6], addrs: &[Ipv4Addr]) -> bool {
        let count = self.count.get();
        if count + addrs.len() > LOOP_FRAMES {
            return false;
        }
        for (i, addr) in addrs.iter().enumerate() {
            let index = (self.head.get() + count + i) % LOOP_SLOTS;
            let len = arp_reply(&mut self.slots[index], mac, *addr);
            self.lens[index].set(len);
        }
        self.count.set(count + addrs.len());
        true
    }
}

/// Writes into `frame` an ARP reply from `addr` at `mac` to `addr` at `mac`; returns its length.
fn arp_reply(frame: &mut [u8], mac: [u8; 6], addr: Ipv4Addr) -> usize {
    let mac = EthernetAddress(mac);
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: mac,
        source_protocol_addr: addr,
        target_hardware_addr: mac,
        target_protocol_addr: addr,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: mac,
        ethertype: EthernetProtocol::Arp,
    };
    let len = eth.buffer_len() + arp.buffer_len();
    let mut packet = EthernetFrame::new_unchecked(&mut frame[..len]);
    eth.emit(&mut packet);
    arp.emit(&mut ArpPacket::new_unchecked(packet.payload_mut()));
    len
}

/// The element at `write` (mutable) and the one at `read` (shared); they must differ.
fn split_pair<T>(items: &mut [T], write: usize, read: usize) -> (&mut T, &T) {
    if write < read {
        let (low, high) = items.split_at_mut(read);
        (&mut low[write], &high[0])
    } else {
        let (low, high) = items.split_at_mut(write);
        (&mut high[0], &low[read])
    }
}

/// The device the interface polls: `nic` (used only while `nic_up`) and the loopback queue.
pub(crate) struct Link<'s, 'a, D> {
    nic: &'s mut D,
    queue: &'s mut LoopQueue<'a>,
    nic_up: bool,
    own: Option<Ipv4Addr>,
    /// What the NIC does of the checksums and of large frames.
    nic_offload: Offload,
}

impl<'s, 'a, D: Device> Link<'s, 'a, D> {
    /// The link over `nic` and `queue`; `own` is the interface's NIC address, if any.
    pub(crate) fn new(
        nic: &'s mut D,
        queue: &'s mut LoopQueue<'a>,
        nic_up: bool,
        own: Option<Ipv4Addr>,
    ) -> Self {
        let nic_offload = Offload::of(&nic.capabilities());
        Self {
            nic,
            queue,
            nic_up,
            own,
            nic_offload,
        }
    }
}

/// A received frame: from the loopback queue or from the NIC.
pub(crate) enum LinkRx<'b, R> {
    /// The oldest looped frame; popped when consumed.
    Looped {
        frame: &'b [u8],
        head: &'b Cell<usize>,
        count: &'b Cell<usize>,
    },
    /// A NIC frame, dropped if it is a martian or its checksum is wrong.
    Nic {
        token: R,
        own: Option<Ipv4Addr>,
        drops: &'b Cell<LinkDrops>,
        checksums: ChecksumCapabilities,
    },
}

impl<R: RxToken> RxToken for LinkRx<'_, R> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        match self {
            LinkRx::Looped { frame, head, count } => {
                let result = f(frame);
                head.set((head.get() + 1) % LOOP_SLOTS);
                count.set(count.get() - 1);
                result
            }
            LinkRx::Nic {
                token,
                own,
                drops,
                checksums,
            } => token.consume(|frame| {
                let drop: Option<fn(&mut LinkDrops)> = if is_martian(frame, own) {
                    Some(|d| d.martians += 1)
                } else if !checksum::verify(frame, &checksums) {
                    Some(|d| d.bad_checksum += 1)
                } else {
                    None
                };
                match drop {
                    Some(count) => {
                        let mut d = drops.get();
                        count(&mut d);
                        drops.set(d);
                        // An empty frame: smoltcp discards it.
                        f(&[])
                    }
                    None => f(frame),
                }
            }),
        }
    }

    fn meta(&self) -> smoltcp::phy::PacketMeta {
        match self {
            LinkRx::Looped { .. } => smoltcp::phy::PacketMeta::default(),
            LinkRx::Nic { token, .. } => token.meta(),
        }
    }
}

/// Where the frames a [`LinkTx`] sends to the NIC go.
pub(crate) enum NicOut<'b, D: Device + 'b> {
    /// One token: the NIC takes any frame the interface builds whole.
    Token(D::TxToken<'b>),
    /// The NIC itself, asked for a token per frame: a large frame it cannot take whole goes
    /// out as segments.
    Device(&'b mut D, Instant),
    /// The one token was used.
    Spent,
    /// No NIC: its frames are dropped and counted.
    Down,
}

impl<D: Device> NicOut<'_, D> {
    /// Hands the NIC a frame of `len` bytes that `write` fills, with `meta`; false when it has
    /// no room (or there is no NIC).
    fn send(
        &mut self,
        meta: Option<PacketMeta>,
        len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> bool {
        fn hand<T: TxToken>(
            mut token: T,
            meta: Option<PacketMeta>,
            len: usize,
            write: impl FnOnce(&mut [u8]),
        ) {
            if let Some(meta) = meta {
                token.set_meta(meta);
            }
            token.consume(len, write);
        }
        match self {
            NicOut::Device(nic, at) => match nic.transmit(*at) {
                Some(token) => {
                    hand(token, meta, len, write);
                    true
                }
                None => false,
            },
            NicOut::Token(_) => match core::mem::replace(self, NicOut::Spent) {
                NicOut::Token(token) => {
                    hand(token, meta, len, write);
                    true
                }
                _ => false,
            },
            NicOut::Spent | NicOut::Down => false,
        }
    }
}

/// Where the frames a [`LinkTx`] sends to the loopback path go.
pub(crate) enum LoopOut<'b> {
    /// A reply built while the oldest frame is read: the one free slot, if there is one.
    One {
        slot: Option<(&'b mut [u8; LOOP_FRAME], &'b Cell<usize>)>,
        count: &'b Cell<usize>,
    },
    /// Egress: every free slot after the queued frames.
    Tail {
        slots: &'b mut [[u8; LOOP_FRAME]],
        lens: &'b [Cell<usize>],
        head: usize,
        count: &'b Cell<usize>,
    },
}

impl LoopOut<'_> {
    /// Queues a frame of `len` bytes that `write` fills; false without room.
    fn push(&mut self, len: usize, write: impl FnOnce(&mut [u8])) -> bool {
        let (slot, slot_len, count) = match self {
            LoopOut::One { slot, count } => match slot.take() {
                Some((slot, slot_len)) => (slot, slot_len, *count),
                None => return false,
            },
            LoopOut::Tail {
                slots,
                lens,
                head,
                count,
            } => {
                if count.get() >= LOOP_FRAMES {
                    return false;
                }
                let index = (*head + count.get()) % LOOP_SLOTS;
                (&mut slots[index], &lens[index], *count)
            }
        };
        write(&mut slot[..len]);
        slot_len.set(len);
        count.set(count.get() + 1);
        true
    }
}

/// A frame to send: built in the scratch buffer, then looped, handed to the NIC or refused. A
/// large frame (a TCP segment of several MSS, [`crate::segment`]) goes to the NIC whole when
/// it offloads segmentation, and is cut into segments otherwise.
pub(crate) struct LinkTx<'b, D: Device + 'b> {
    nic: NicOut<'b, D>,
    to_loop: LoopOut<'b>,
    scratch: &'b mut [u8],
    own: Option<Ipv4Addr>,
    drops: &'b Cell<LinkDrops>,
    /// What the NIC does of the checksums and of large frames.
    nic_offload: Offload,
    meta: PacketMeta,
}

/// What the NIC does of the frames it sends: checksums, and the largest frame it cuts into TCP
/// segments itself.
#[derive(Clone, Debug)]
pub(crate) struct Offload {
    checksums: ChecksumCapabilities,
    large: Option<usize>,
}

impl Offload {
    /// What `caps` (a NIC's) say; large frames only with the TCP checksum offloaded too, as
    /// smoltcp requires.
    fn of(caps: &DeviceCapabilities) -> Self {
        let large = segment::offered(caps).filter(|_| !caps.checksum.tcp.tx());
        Self {
            checksums: caps.checksum.clone(),
            large,
        }
    }
}

impl<D: Device> TxToken for LinkTx<'_, D> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let Self {
            mut nic,
            mut to_loop,
            scratch,
            own,
            drops,
            nic_offload,
            meta,
        } = self;
        // The interface never builds more than the sizes it was given (the scratch buffer's).
        let len = len.min(scratch.len());
        let frame = &mut scratch[..len];
        let result = f(frame);
        let bump = |which: fn(&mut LinkDrops)| {
            let mut d = drops.get();
            which(&mut d);
            drops.set(d);
        };
        let to = route(frame, own);
        let mss = segment::requested(&meta);
        // A frame of several segments is cut here unless the NIC takes it whole; looped ones
        // always are.
        let cut = match (to, mss) {
            (Route::Nic, Some(_)) => nic_offload.large.is_none_or(|l| l < frame.len()),
            (Route::Loop, Some(_)) => true,
            _ => false,
        };
        if !cut {
            // Whole frames: looped ones never meet a NIC, their checksums are always ours.
            let software = ChecksumCapabilities::default();
            let checksums = match to {
                Route::Nic => &nic_offload.checksums,
                Route::Loop | Route::Refuse => &software,
            };
            checksum::fill(frame, checksums);
        }
        let frame: &[u8] = frame;
        let large = match mss.filter(|_| cut) {
            Some(mss) => match segment::Large::new(frame, mss) {
                Some(large) => Some(large),
                None => {
                    // smoltcp asked to cut what is no TCP frame: nothing sensible goes out.
                    bump(|d| d.refused += 1);
                    return result;
                }
            },
            None => None,
        };
        let segments = large.map_or(1, |l| l.count());
        for index in 0..segments {
            let seg_len = large.map_or(frame.len(), |l| l.len(index));
            let write = |buf: &mut [u8], caps: &ChecksumCapabilities| match large {
                Some(l) => {
                    l.write(index, buf);
                    checksum::fill(buf, caps);
                }
                None => buf.copy_from_slice(frame),
            };
            let sent = match to {
                Route::Loop => to_loop.push(seg_len, |buf| {
                    write(buf, &ChecksumCapabilities::default());
                }),
                Route::Nic => nic.send(large.is_none().then_some(meta), seg_len, |buf| {
                    write(buf, &nic_offload.checksums);
                }),
                Route::Refuse => false,
            };
            if !sent {
                match (to, &nic) {
                    (Route::Refuse, _) => bump(|d| d.refused += 1),
                    (Route::Nic, NicOut::Down) => bump(|d| d.no_link += 1),
                    _ => bump(|d| d.no_room += 1),
                }
            }
        }
        result
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta = meta;
    }
}

/// Loop slots a looped large frame may need: the link advertises large frames no longer than
/// this many segments of the smallest MSS the loopback path uses (its IPv4 MTU less 40 header
/// and 40 option bytes), so egress waits for this much room.
pub const LOOP_SEGMENTS: usize = 8;

/// The largest frame the link advertises for segmentation with Ethernet MTU `mtu` (header
/// included), before the NIC's and the scratch buffer's limits: Ethernet, IPv4 and TCP headers
/// and [`LOOP_SEGMENTS`] of the smallest MSS.
const fn loop_large(mtu: usize) -> usize {
    14 + 20 + 20 + LOOP_SEGMENTS * mtu.saturating_sub(14 + 80)
}

/// The largest frame the link builds: its scratch buffer's size (one frame without feature
/// `large-send`).
pub const LARGE_FRAME: usize = if cfg!(feature = "large-send") {
    loop_large(LOOP_FRAME)
} else {
    LOOP_FRAME
};

impl<D: Device> Device for Link<'_, '_, D> {
    type RxToken<'b>
        = LinkRx<'b, D::RxToken<'b>>
    where
        Self: 'b;
    type TxToken<'b>
        = LinkTx<'b, D>
    where
        Self: 'b;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (own, nic_up, offload) = (self.own, self.nic_up, self.nic_offload.clone());
        let nic = &mut *self.nic;
        let queue = &mut *self.queue;
        let (head, count) = (queue.head.get(), queue.count.get());
        let tail = (head + count) % LOOP_SLOTS;
        // Turns alternate, so that neither side starves the other.
        let nic_turn = queue.nic_turn.get() || count == 0;
        queue.nic_turn.set(!nic_turn);
        if nic_up && nic_turn {
            if let Some((rx, tx)) = nic.receive(timestamp) {
                // A reply to a NIC frame goes back to the NIC (martians never get here), but it
                // is routed like any frame; the queue has room unless it is full.
                let slot =
                    (count < LOOP_FRAMES).then(|| (&mut queue.slots[tail], &queue.lens[tail]));
                let rx = LinkRx::Nic {
                    token: rx,
                    own,
                    drops: &queue.drops,
                    checksums: offload.checksums.clone(),
                };
                let tx = LinkTx {
                    nic: NicOut::Token(tx),
                    to_loop: LoopOut::One {
                        slot,
                        count: &queue.count,
                    },
                    scratch: &mut queue.scratch[..],
                    own,
                    drops: &queue.drops,
                    nic_offload: offload,
                    meta: PacketMeta::default(),
                };
                return Some((rx, tx));
            }
        }
        if count == 0 {
            return None;
        }
        // The reply to a looped frame goes back to its source, a loopback or own address: it
        // loops too (never needs the NIC), built while the oldest frame is read, in the spare
        // slot.
        let (write, read) = split_pair(&mut queue.slots[..LOOP_SLOTS], tail, head);
        let rx = LinkRx::Looped {
            frame: &read[..queue.lens[head].get()],
            head: &queue.head,
            count: &queue.count,
        };
        let tx = LinkTx {
            nic: NicOut::Down,
            to_loop: LoopOut::One {
                slot: Some((write, &queue.lens[tail])),
                count: &queue.count,
            },
            scratch: &mut queue.scratch[..],
            own,
            drops: &queue.drops,
            nic_offload: offload,
            meta: PacketMeta::default(),
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let queue = &mut *self.queue;
        let (head, count) = (queue.head.get(), queue.count.get());
        // Room for the largest frame the interface may loop (one slot without large frames).
        let room = if queue.large.is_some() {
            LOOP_SEGMENTS
        } else {
            1
        };
        if count + room > LOOP_FRAMES {
            // Full: egress waits until the next ingress takes frames out.
            return None;
        }
        let whole = queue
            .large
            .is_none_or(|l| self.nic_offload.large.is_some_and(|n| n >= l));
        let nic = if !self.nic_up {
            NicOut::Down
        } else if whole {
            // A busy NIC holds everything back, so no frame is built that could not be sent.
            NicOut::Token(self.nic.transmit(timestamp)?)
        } else {
            // The NIC takes no large frame whole (another NIC than the interface was built
            // with): a token per segment, the first one checked here.
            self.nic.transmit(timestamp)?;
            NicOut::Device(&mut *self.nic, timestamp)
        };
        Some(LinkTx {
            nic,
            to_loop: LoopOut::Tail {
                slots: &mut queue.slots[..LOOP_SLOTS],
                lens: &queue.lens,
                head,
                count: &queue.count,
            },
            scratch: &mut queue.scratch[..],
            own: self.own,
            drops: &queue.drops,
            nic_offload: self.nic_offload.clone(),
            meta: PacketMeta::default(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.nic.capabilities();
        caps.max_transmission_unit = caps.max_transmission_unit.min(LOOP_FRAME);
        // smoltcp does the IPv4 and ICMP checksums of every frame; TCP and UDP ones are the
        // link's (filled on the way out, checked on the way in from the NIC).
        caps.checksum = ChecksumCapabilities::default();
        caps.checksum.tcp = Checksum::None;
        caps.checksum.udp = Checksum::None;
        // Large TCP frames when the NIC cuts them, no larger than the scratch buffer holds
        // and the loopback path can cut into its free slots.
        let large = self
            .nic_offload
            .large
            .map(|l| {
                l.min(self.queue.scratch.len())
                    .min(loop_large(caps.max_transmission_unit))
            })
            .filter(|&l| l > caps.max_transmission_unit);
        segment::offer(&mut caps, large);
        caps
    }
}

/// The device of a board without NIC: nothing is received, nothing can be sent. A stack over it
/// ([`crate::Stack::without_nic`]) works over loopback only.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNic;

/// [`NoNic`]'s tokens, which never exist.
#[derive(Debug)]
pub enum Never {}

impl RxToken for Never {
    fn consume<R, F>(self, _f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        match self {}
    }
}

impl TxToken for Never {
    fn consume<R, F>(self, _len: usize, _f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        match self {}
    }
}

impl Device for NoNic {
    type RxToken<'a> = Never;
    type TxToken<'a> = Never;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Never, Never)> {
        None
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Never> {
        None
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = LOOP_FRAME;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpProtocol, Ipv4Repr};

    const OWN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 5];

    /// An Ethernet/IPv4 frame from `src` to `dst` with `payload` bytes of UDP-typed payload.
    fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, payload: usize) -> Vec<u8> {
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: payload,
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress(MAC),
            dst_addr: EthernetAddress(MAC),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + payload];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        ip.emit(
            &mut Ipv4Packet::new_unchecked(frame.payload_mut()),
            &ChecksumCapabilities::default(),
        );
        // With its UDP checksum, as the link fills it on the way out.
        checksum::fill(&mut buf, &ChecksumCapabilities::default());
        buf
    }

    fn arp(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut buf = vec![0u8; 64];
        let len = arp_reply(&mut buf, MAC, sender);
        buf.truncate(len);
        // Retarget: offset 14 + 24 is the ARP target protocol address.
        buf[38..42].copy_from_slice(&target.octets());
        buf
    }

    #[test]
    fn frames_to_loopback_or_own_address_loop_and_loopback_sources_go_nowhere_else() {
        let lo = LOOPBACK_ADDR;
        assert_eq!(route(&ipv4(lo, lo, 8), Some(OWN)), Route::Loop);
        assert_eq!(route(&ipv4(OWN, lo, 8), Some(OWN)), Route::Loop);
        assert_eq!(route(&ipv4(OWN, OWN, 8), Some(OWN)), Route::Loop);
        assert_eq!(route(&ipv4(lo, OWN, 8), Some(OWN)), Route::Loop);
        assert_eq!(route(&ipv4(OWN, PEER, 8), Some(OWN)), Route::Nic);
        assert_eq!(route(&ipv4(lo, PEER, 8), Some(OWN)), Route::Refuse);
        assert_eq!(route(&ipv4(lo, PEER, 8), None), Route::Refuse);
        assert_eq!(
            route(&ipv4(Ipv4Addr::new(127, 9, 9, 9), PEER, 8), None),
            Route::Refuse
        );
        assert_eq!(route(&arp(OWN, lo), Some(OWN)), Route::Loop);
        assert_eq!(route(&arp(OWN, OWN), Some(OWN)), Route::Loop);
        assert_eq!(route(&arp(OWN, PEER), Some(OWN)), Route::Nic);
        assert_eq!(route(&arp(lo, PEER), Some(OWN)), Route::Refuse);
    }

    #[test]
    fn martians_carry_a_loopback_address_or_our_own_source() {
        let lo = LOOPBACK_ADDR;
        assert!(is_martian(&ipv4(lo, OWN, 8), Some(OWN)));
        assert!(is_martian(&ipv4(PEER, lo, 8), Some(OWN)));
        assert!(is_martian(&ipv4(OWN, OWN, 8), Some(OWN)));
        assert!(is_martian(&arp(lo, OWN), Some(OWN)));
        assert!(is_martian(&arp(PEER, lo), Some(OWN)));
        assert!(!is_martian(&ipv4(PEER, OWN, 8), Some(OWN)));
        assert!(!is_martian(&ipv4(PEER, OWN, 8), None));
        // Another host's ARP claiming our address is an address conflict, not a martian.
        assert!(!is_martian(&arp(OWN, PEER), Some(OWN)));
    }

    #[test]
    fn every_truncation_is_classified_without_panicking() {
        for frame in [
            ipv4(LOOPBACK_ADDR, PEER, 20),
            ipv4(PEER, OWN, 0),
            arp(OWN, LOOPBACK_ADDR),
        ] {
            for len in 0..=frame.len() {
                let cut = &frame[..len];
                let _ = route(cut, Some(OWN));
                let _ = is_martian(cut, Some(OWN));
            }
        }
        // What does not parse goes to the NIC (smoltcp only sends what it built) and is no
        // martian (smoltcp drops it itself).
        assert_eq!(route(&[0u8; 10], Some(OWN)), Route::Nic);
        assert!(!is_martian(&[0u8; 10], Some(OWN)));
    }

    fn queue() -> LoopQueue<'static> {
        LoopQueue::new(
            ManagedSlice::Owned(vec![[0u8; LOOP_FRAME]; LOOP_SLOTS]),
            ManagedSlice::Owned(vec![0u8; LARGE_FRAME]),
        )
    }

    fn send<D: Device>(link: &mut Link<'_, '_, D>, frame: &[u8]) -> bool {
        match link.transmit(Instant::ZERO) {
            Some(token) => {
                token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
                true
            }
            None => false,
        }
    }

    fn take<D: Device>(link: &mut Link<'_, '_, D>) -> Option<Vec<u8>> {
        let (rx, _tx) = link.receive(Instant::ZERO)?;
        Some(rx.consume(|frame| frame.to_vec()))
    }

    #[test]
    fn looped_frames_come_back_in_order_across_the_ring_and_a_full_queue_holds_egress() {
        let mut q = queue();
        let mut nic = NoNic;
        let mut link = Link::new(&mut nic, &mut q, false, Some(OWN));
        for round in 0..5 {
            let frames: Vec<Vec<u8>> = (0..LOOP_FRAMES)
                .map(|i| ipv4(OWN, LOOPBACK_ADDR, round * 10 + i))
                .collect();
            for frame in &frames {
                assert!(send(&mut link, frame));
            }
            // Full: the next frame waits.
            assert!(link.transmit(Instant::ZERO).is_none());
            for frame in &frames {
                assert_eq!(take(&mut link).as_ref(), Some(frame));
            }
            assert_eq!(take(&mut link), None);
        }
        // Frames for the NIC while it is absent are counted, not queued.
        assert!(send(&mut link, &ipv4(OWN, PEER, 4)));
        assert!(send(&mut link, &ipv4(LOOPBACK_ADDR, PEER, 4)));
        assert_eq!(take(&mut link), None);
        assert_eq!(
            q.drops(),
            LinkDrops {
                martians: 0,
                refused: 1,
                no_link: 1,
                bad_checksum: 0,
                no_room: 0,
            }
        );
    }

    #[test]
    fn a_reply_built_while_the_oldest_frame_is_read_uses_the_spare_slot() {
        let mut q = queue();
        let mut nic = NoNic;
        let mut link = Link::new(&mut nic, &mut q, false, Some(OWN));
        for i in 0..LOOP_FRAMES {
            assert!(send(&mut link, &ipv4(OWN, OWN, i)));
        }
        let reply = ipv4(OWN, LOOPBACK_ADDR, 99);
        let (rx, tx) = link.receive(Instant::ZERO).unwrap();
        let first = rx.consume(|frame| {
            tx.consume(reply.len(), |buf| buf.copy_from_slice(&reply));
            frame.to_vec()
        });
        assert_eq!(first, ipv4(OWN, OWN, 0));
        for i in 1..LOOP_FRAMES {
            assert_eq!(take(&mut link), Some(ipv4(OWN, OWN, i)));
        }
        assert_eq!(take(&mut link), Some(reply));
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn announcements_are_arp_replies_for_each_address_at_our_mac() {
        let mut q = queue();
        assert!(q.announce(MAC, &[LOOPBACK_ADDR, OWN]));
        assert_eq!(q.queued(), 2);
        let mut nic = NoNic;
        let mut link = Link::new(&mut nic, &mut q, false, Some(OWN));
        for addr in [LOOPBACK_ADDR, OWN] {
            let frame = take(&mut link).unwrap();
            let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
            assert_eq!(eth.dst_addr(), EthernetAddress(MAC));
            let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
            assert_eq!(
                arp,
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: EthernetAddress(MAC),
                    source_protocol_addr: addr,
                    target_hardware_addr: EthernetAddress(MAC),
                    target_protocol_addr: addr,
                }
            );
        }
        // No room for both: nothing is queued.
        let mut q = queue();
        let mut nic = NoNic;
        let mut link = Link::new(&mut nic, &mut q, false, None);
        for _ in 0..LOOP_FRAMES - 1 {
            assert!(send(&mut link, &ipv4(OWN, LOOPBACK_ADDR, 1)));
        }
        assert!(!q.announce(MAC, &[LOOPBACK_ADDR, OWN]));
        assert_eq!(q.queued(), LOOP_FRAMES - 1);
    }

    /// Large frames (feature `large-send`).
    #[cfg(feature = "large-send")]
    mod large_send {
        use super::*;

        /// A NIC that records what it is handed, with or without segmentation offload.
        #[derive(Default)]
        struct Recorder {
            large: Option<usize>,
            sent: Vec<(Vec<u8>, PacketMeta)>,
        }

        struct RecordTx<'a> {
            sent: &'a mut Vec<(Vec<u8>, PacketMeta)>,
            meta: PacketMeta,
        }

        impl TxToken for RecordTx<'_> {
            fn consume<R, F>(self, len: usize, f: F) -> R
            where
                F: FnOnce(&mut [u8]) -> R,
            {
                let mut frame = vec![0; len];
                let result = f(&mut frame);
                self.sent.push((frame, self.meta));
                result
            }

            fn set_meta(&mut self, meta: PacketMeta) {
                self.meta = meta;
            }
        }

        impl Device for Recorder {
            type RxToken<'a> = Never;
            type TxToken<'a> = RecordTx<'a>;

            fn receive(&mut self, _timestamp: Instant) -> Option<(Never, RecordTx<'_>)> {
                None
            }

            fn transmit(&mut self, _timestamp: Instant) -> Option<RecordTx<'_>> {
                Some(RecordTx {
                    sent: &mut self.sent,
                    meta: PacketMeta::default(),
                })
            }

            fn capabilities(&self) -> DeviceCapabilities {
                let mut caps = DeviceCapabilities::default();
                caps.max_transmission_unit = LOOP_FRAME;
                if self.large.is_some() {
                    caps.checksum.tcp = Checksum::Rx;
                }
                caps.segmentation.tcpv4 = self.large.and_then(core::num::NonZeroUsize::new);
                caps
            }
        }

        impl Recorder {
            /// A NIC that cuts frames of up to 16,000 bytes.
            fn offloading() -> Self {
                Self {
                    large: Some(16_000),
                    ..Self::default()
                }
            }
        }

        /// Builds an interface over `link` as the stack does (the queue keeps what it was
        /// told); returns the large frame size the link advertised.
        fn built<D: Device>(link: &mut Link<'_, '_, D>) -> Option<usize> {
            let caps = link.capabilities();
            link.queue.built_with(&caps);
            caps.segmentation.tcpv4.map(usize::from)
        }

        /// Sends `frame` through `link` as smoltcp sends a large frame: with its segment size.
        fn send_large<D: Device>(link: &mut Link<'_, '_, D>, frame: &[u8], mss: u16) -> bool {
            let Some(mut token) = link.transmit(Instant::ZERO) else {
                return false;
            };
            let mut meta = PacketMeta::default();
            meta.segmentation_offload_size = core::num::NonZeroU16::new(mss);
            token.set_meta(meta);
            token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
            true
        }

        /// TCP payloads of `frames`, checking each TCP checksum.
        fn payloads<'f>(frames: impl Iterator<Item = &'f [u8]>) -> Vec<u8> {
            use smoltcp::wire::{IpAddress, TcpPacket};
            let mut all = Vec::new();
            for frame in frames {
                let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
                let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                let (src, dst) = (
                    IpAddress::Ipv4(ip.src_addr()),
                    IpAddress::Ipv4(ip.dst_addr()),
                );
                assert!(tcp.verify_checksum(&src, &dst));
                all.extend_from_slice(tcp.payload());
            }
            all
        }

        #[test]
        fn large_frames_go_whole_to_a_nic_that_cuts_them_and_are_cut_for_any_other_way() {
            use crate::testframe::{segment, tcp_frame};
            use smoltcp::wire::TcpControl;
            let payload: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
            let to_peer = tcp_frame(OWN, PEER, &segment(TcpControl::Psh, 1, Some(1), &payload));
            let looped = tcp_frame(
                OWN,
                LOOPBACK_ADDR,
                &segment(TcpControl::Psh, 1, Some(1), &payload),
            );
            let (mut q, mut nic) = (queue(), Recorder::offloading());
            {
                let mut link = Link::new(&mut nic, &mut q, true, Some(OWN));
                // What the link advertises: its own limits, below the NIC's.
                assert_eq!(built(&mut link), Some(LARGE_FRAME));
                assert!(send_large(&mut link, &to_peer, 1448));
            }
            // Whole, with its segment size, the TCP checksum left to the NIC.
            assert_eq!(nic.sent.len(), 1);
            assert_eq!(nic.sent[0].0.len(), to_peer.len());
            assert_eq!(
                nic.sent[0].1.segmentation_offload_size.map(|m| m.get()),
                Some(1448)
            );
            // The NIC is swapped for one without the offload: the link cuts the frame, one token
            // and one software checksum per segment.
            nic.sent.clear();
            nic.large = None;
            let mut link = Link::new(&mut nic, &mut q, true, Some(OWN));
            assert!(send_large(&mut link, &to_peer, 1448));
            // Looped large frames are cut into the queue.
            assert!(send_large(&mut link, &looped, 1448));
            let mut back = Vec::new();
            while let Some(frame) = take(&mut link) {
                back.push(frame);
            }
            assert_eq!(nic.sent.len(), 4);
            assert!(nic.sent.iter().all(|(f, _)| f.len() <= LOOP_FRAME));
            assert_eq!(payloads(nic.sent.iter().map(|(f, _)| &f[..])), payload);
            assert_eq!(back.len(), 4);
            assert_eq!(payloads(back.iter().map(|f| &f[..])), payload);
            assert_eq!(q.drops(), LinkDrops::default());
        }

        #[test]
        fn with_large_frames_egress_waits_for_room_for_a_whole_cut_frame() {
            use crate::testframe::{segment, tcp_frame};
            use smoltcp::wire::TcpControl;
            let (mut q, mut nic) = (queue(), Recorder::offloading());
            let mut link = Link::new(&mut nic, &mut q, true, Some(OWN));
            built(&mut link);
            let small = tcp_frame(
                OWN,
                LOOPBACK_ADDR,
                &segment(TcpControl::None, 1, Some(1), &[7; 100]),
            );
            // Room for a cut frame while at most LOOP_FRAMES - LOOP_SEGMENTS frames wait.
            for _ in 0..=LOOP_FRAMES - LOOP_SEGMENTS {
                assert!(send(&mut link, &small));
            }
            assert!(link.transmit(Instant::ZERO).is_none());
            // A reply to a looped frame may still take the spare slot; a large one is cut as far
            // as there is room, the rest counted.
            let big = tcp_frame(
                OWN,
                LOOPBACK_ADDR,
                &segment(TcpControl::None, 1, Some(1), &[9; 3000]),
            );
            let (rx, mut tx) = link.receive(Instant::ZERO).unwrap();
            let mut meta = PacketMeta::default();
            meta.segmentation_offload_size = core::num::NonZeroU16::new(1000);
            tx.set_meta(meta);
            rx.consume(|_| tx.consume(big.len(), |buf| buf.copy_from_slice(&big)));
            assert_eq!(q.drops().no_room, 2);
            assert_eq!(q.queued(), LOOP_FRAMES - LOOP_SEGMENTS + 1);
        }
    }
}
