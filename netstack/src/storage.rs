//! Memory for the stack: every socket and buffer is set aside when the stack is built.
//!
//! [`StaticStorage`] (sockets and tables) and [`StaticBuffers`] (the socket buffers) fix socket
//! counts and buffer sizes at build time (const generics) and live in two `static`s on a `no_std`
//! target: the buffers, almost all of the memory, are all zero bytes and so cost nothing in a
//! firmware image (.bss); the sockets and tables, whose empty state is not all zero, are small.
//! [`HeapStorage`] (feature `alloc`) takes the same choices at run time for the host.

use managed::ManagedSlice;
use smoltcp::iface::{SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::dns::{self, DnsQuery};
use smoltcp::socket::{tcp, udp};

use crate::loopback::{
    LoopQueue, LARGE_FRAME, LOOP_FRAME, LOOP_FRAMES, LOOP_FRAMES_BASE, LOOP_SLOTS,
};
use crate::tables::{DnsEntry, IdSlot, TcpEntry, UdpEntry};

/// Datagrams a UDP socket can hold queued in each direction.
pub const UDP_PACKETS: usize = 8;
/// DNS queries that can run at once.
pub const DNS_QUERIES: usize = 4;
/// smoltcp sockets beside the TCP and UDP pool: the DNS client and the DHCP client (the latter
/// in a socket set of its own, see [`crate::gate`]).
pub const SERVICE_SOCKETS: usize = 2;

/// Everything the stack is built from, borrowed for `'a` or owned.
pub struct Parts<'a> {
    /// smoltcp's sockets, the TCP and UDP pools already added.
    pub(crate) sockets: SocketSet<'a>,
    /// The DHCP client's socket set (one slot, empty until the client starts).
    pub(crate) dhcp: SocketSet<'a>,
    /// Socket ids.
    pub(crate) ids: ManagedSlice<'a, IdSlot>,
    /// The TCP pool.
    pub(crate) tcp: ManagedSlice<'a, TcpEntry>,
    /// The UDP pool.
    pub(crate) udp: ManagedSlice<'a, UdpEntry>,
    /// Name queries.
    pub(crate) dns: ManagedSlice<'a, DnsEntry>,
    /// smoltcp's DNS socket.
    pub(crate) dns_handle: SocketHandle,
    /// The frames of the loopback path.
    pub(crate) loopback: LoopQueue<'a>,
}

/// The stack's tables, before the sockets are made.
struct Tables<'a> {
    ids: ManagedSlice<'a, IdSlot>,
    tcp: ManagedSlice<'a, TcpEntry>,
    udp: ManagedSlice<'a, UdpEntry>,
    dns: ManagedSlice<'a, DnsEntry>,
}

/// Adds one smoltcp socket per pool entry and the DNS socket to `storage`; `dhcp` holds the
/// DHCP client's socket.
fn assemble<'a>(
    storage: ManagedSlice<'a, SocketStorage<'a>>,
    dhcp: ManagedSlice<'a, SocketStorage<'a>>,
    mut tables: Tables<'a>,
    tcp_buffers: impl Iterator<Item = (tcp::SocketBuffer<'a>, tcp::SocketBuffer<'a>)>,
    udp_buffers: impl Iterator<Item = (udp::PacketBuffer<'a>, udp::PacketBuffer<'a>)>,
    dns_queries: ManagedSlice<'a, Option<DnsQuery>>,
    loopback: LoopQueue<'a>,
) -> Parts<'a> {
    let mut sockets = SocketSet::new(storage);
    for (entry, (rx, tx)) in tables.tcp.iter_mut().zip(tcp_buffers) {
        *entry = TcpEntry::EMPTY;
        entry.handle = Some(sockets.add(tcp::Socket::new(rx, tx)));
    }
    for (entry, (rx, tx)) in tables.udp.iter_mut().zip(udp_buffers) {
        *entry = UdpEntry::EMPTY;
        entry.handle = Some(sockets.add(udp::Socket::new(rx, tx)));
    }
    let dns_handle = sockets.add(dns::Socket::new(&[], dns_queries));
    tables.ids.iter_mut().for_each(|slot| *slot = IdSlot::Free);
    tables
        .dns
        .iter_mut()
        .for_each(|entry| *entry = DnsEntry::Free);
    Parts {
        sockets,
        dhcp: SocketSet::new(dhcp),
        ids: tables.ids,
        tcp: tables.tcp,
        udp: tables.udp,
        dns: tables.dns,
        dns_handle,
        loopback,
    }
}

/// The sockets and tables for `TCP` TCP and `UDP` UDP sockets; `SOCKETS` must be `TCP + UDP + 2`
/// (checked at compile time) and is also the number of socket ids. The socket buffers are a
/// separate [`StaticBuffers`].
///
/// Build it in a `static` (its constructor is `const`) and hand `&'static mut` of it and of the
/// buffers to [`StaticStorage::parts`]; nothing is allocated. Its empty state is not all zero
/// bytes (smoltcp's empty socket slot and empty packet metadata are `None`s whose niche is not
/// zero), so its static is initialised data (.data, in the image): it is kept small, a few
/// hundred bytes per socket, while the buffers are all zero (.bss).
pub struct StaticStorage<'a, const TCP: usize, const UDP: usize, const SOCKETS: usize> {
    sockets: [SocketStorage<'a>; SOCKETS],
    ids: [IdSlot; SOCKETS],
    tcp: [TcpEntry; TCP],
    udp: [UdpEntry; UDP],
    udp_rx_meta: [[udp::PacketMetadata; UDP_PACKETS]; UDP],
    udp_tx_meta: [[udp::PacketMetadata; UDP_PACKETS]; UDP],
    dns_queries: [Option<DnsQuery>; DNS_QUERIES],
    dns: [DnsEntry; DNS_QUERIES],
}

/// The byte buffers of `TCP` TCP sockets of `TCP_BUF` bytes per direction and `UDP` UDP sockets
/// of `UDP_BUF` payload bytes per direction, and the loopback path's frames
/// ([`LOOPBACK_BYTES`]): most of the stack's memory.
///
/// Only bytes, and all zero when built by the `const` [`StaticBuffers::new`], so a `static` of
/// it is zero-initialised (.bss): it costs nothing in a firmware image.
pub struct StaticBuffers<
    const TCP: usize,
    const UDP: usize,
    const TCP_BUF: usize,
    const UDP_BUF: usize,
> {
    tcp_rx: [[u8; TCP_BUF]; TCP],
    tcp_tx: [[u8; TCP_BUF]; TCP],
    udp_rx: [[u8; UDP_BUF]; UDP],
    udp_tx: [[u8; UDP_BUF]; UDP],
    loop_slots: [[u8; LOOP_FRAME]; LOOP_SLOTS],
    loop_scratch: [u8; LARGE_FRAME],
}

/// Bytes the link's frames take: the loopback queue and the scratch buffer every frame is built
/// in (large enough for a large TCP frame).
pub const LOOPBACK_BYTES: usize = LOOP_SLOTS * LOOP_FRAME + LARGE_FRAME;

/// The part of [`LOOPBACK_BYTES`] feature `large-send` adds (the scratch buffer's room for a
/// large frame, and the loopback queue's room to cut one); 0 without it.
pub const LARGE_SEND_BYTES: usize =
    (LOOP_FRAMES - LOOP_FRAMES_BASE) * LOOP_FRAME + (LARGE_FRAME - LOOP_FRAME);

impl<const TCP: usize, const UDP: usize, const TCP_BUF: usize, const UDP_BUF: usize>
    StaticBuffers<TCP, UDP, TCP_BUF, UDP_BUF>
{
    /// Zeroed buffers, usable as a `static` initialiser.
    pub const fn new() -> Self {
        Self {
            tcp_rx: [[0; TCP_BUF]; TCP],
            tcp_tx: [[0; TCP_BUF]; TCP],
            udp_rx: [[0; UDP_BUF]; UDP],
            udp_tx: [[0; UDP_BUF]; UDP],
            loop_slots: [[0; LOOP_FRAME]; LOOP_SLOTS],
            loop_scratch: [0; LARGE_FRAME],
        }
    }
}

impl<const TCP: usize, const UDP: usize, const TCP_BUF: usize, const UDP_BUF: usize> Default
    for StaticBuffers<TCP, UDP, TCP_BUF, UDP_BUF>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const TCP: usize, const UDP: usize, const SOCKETS: usize>
    StaticStorage<'a, TCP, UDP, SOCKETS>
{
    /// Empty sockets and tables, usable as a `static` initialiser.
    pub const fn new() -> Self {
        const {
            assert!(
                SOCKETS == TCP + UDP + SERVICE_SOCKETS,
                "SOCKETS must be TCP + UDP + 2"
            )
        };
        Self {
            sockets: [const { SocketStorage::EMPTY }; SOCKETS],
            ids: [IdSlot::Free; SOCKETS],
            tcp: [TcpEntry::EMPTY; TCP],
            udp: [UdpEntry::EMPTY; UDP],
            udp_rx_meta: [[udp::PacketMetadata::EMPTY; UDP_PACKETS]; UDP],
            udp_tx_meta: [[udp::PacketMetadata::EMPTY; UDP_PACKETS]; UDP],
            dns_queries: [const { None }; DNS_QUERIES],
            dns: [DnsEntry::Free; DNS_QUERIES],
        }
    }

    /// Splits the storage and `buffers` (sized for the same socket counts) into the stack's
    /// parts.
    pub fn parts<const TCP_BUF: usize, const UDP_BUF: usize>(
        &'a mut self,
        buffers: &'a mut StaticBuffers<TCP, UDP, TCP_BUF, UDP_BUF>,
    ) -> Parts<'a> {
        let Self {
            sockets,
            ids,
            tcp,
            udp,
            udp_rx_meta,
            udp_tx_meta,
            dns_queries,
            dns,
        } = self;
        let StaticBuffers {
            tcp_rx,
            tcp_tx,
            udp_rx,
            udp_tx,
            loop_slots,
            loop_scratch,
        } = buffers;
        let tcp_buffers = tcp_rx.iter_mut().zip(tcp_tx.iter_mut()).map(|(rx, tx)| {
            (
                tcp::SocketBuffer::new(&mut rx[..]),
                tcp::SocketBuffer::new(&mut tx[..]),
            )
        });
        let udp_buffers = udp_rx_meta
            .iter_mut()
            .zip(udp_rx.iter_mut())
            .zip(udp_tx_meta.iter_mut().zip(udp_tx.iter_mut()))
            .map(|((rx_meta, rx), (tx_meta, tx))| {
                (
                    udp::PacketBuffer::new(&mut rx_meta[..], &mut rx[..]),
                    udp::PacketBuffer::new(&mut tx_meta[..], &mut tx[..]),
                )
            });
        let tables = Tables {
            ids: ManagedSlice::Borrowed(&mut ids[..]),
            tcp: ManagedSlice::Borrowed(&mut tcp[..]),
            udp: ManagedSlice::Borrowed(&mut udp[..]),
            dns: ManagedSlice::Borrowed(&mut dns[..]),
        };
        // `new` checked that SOCKETS >= 2.
        let (pool, dhcp) = sockets.split_at_mut(SOCKETS - 1);
        assemble(
            ManagedSlice::Borrowed(pool),
            ManagedSlice::Borrowed(dhcp),
            tables,
            tcp_buffers,
            udp_buffers,
            ManagedSlice::Borrowed(&mut dns_queries[..]),
            LoopQueue::new(
                ManagedSlice::Borrowed(&mut loop_slots[..]),
                ManagedSlice::Borrowed(&mut loop_scratch[..]),
            ),
        )
    }
}

impl<const TCP: usize, const UDP: usize, const SOCKETS: usize> Default
    for StaticStorage<'_, TCP, UDP, SOCKETS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes of RAM one TCP socket of the pool costs: both buffers plus smoltcp's socket and the
/// stack's entry.
pub const fn tcp_socket_ram(buffer: usize) -> usize {
    2 * buffer
        + core::mem::size_of::<SocketStorage<'static>>()
        + core::mem::size_of::<TcpEntry>()
        + core::mem::size_of::<IdSlot>()
}

/// Storage sized at run time, on the heap.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapStorage {
    /// TCP sockets in the pool.
    pub tcp_sockets: usize,
    /// Bytes per TCP buffer (each direction).
    pub tcp_buffer: usize,
    /// UDP sockets in the pool.
    pub udp_sockets: usize,
    /// Payload bytes per UDP buffer (each direction).
    pub udp_buffer: usize,
}

#[cfg(feature = "alloc")]
impl Default for HeapStorage {
    /// 16 TCP sockets of 64 KiB per direction, 8 UDP sockets of 16 KiB.
    fn default() -> Self {
        Self {
            tcp_sockets: 16,
            tcp_buffer: 64 * 1024,
            udp_sockets: 8,
            udp_buffer: 16 * 1024,
        }
    }
}

#[cfg(feature = "alloc")]
impl HeapStorage {
    /// Allocates the stack's parts.
    pub fn parts(&self) -> Parts<'static> {
        use alloc::vec;
        use alloc::vec::Vec;
        let sockets = self.tcp_sockets + self.udp_sockets + SERVICE_SOCKETS;
        // The DHCP client's slot is a set of its own.
        let storage: Vec<SocketStorage<'static>> =
            (1..sockets).map(|_| SocketStorage::EMPTY).collect();
        let tcp_buffers = (0..self.tcp_sockets).map(|_| {
            (
                tcp::SocketBuffer::new(vec![0u8; self.tcp_buffer]),
                tcp::SocketBuffer::new(vec![0u8; self.tcp_buffer]),
            )
        });
        let udp_buffers = (0..self.udp_sockets).map(|_| {
            (
                udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                    vec![0u8; self.udp_buffer],
                ),
                udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                    vec![0u8; self.udp_buffer],
                ),
            )
        });
        let queries: Vec<Option<DnsQuery>> = (0..DNS_QUERIES).map(|_| None).collect();
        let tables = Tables {
            ids: ManagedSlice::Owned(vec![IdSlot::Free; sockets]),
            tcp: ManagedSlice::Owned(vec![TcpEntry::EMPTY; self.tcp_sockets]),
            udp: ManagedSlice::Owned(vec![UdpEntry::EMPTY; self.udp_sockets]),
            dns: ManagedSlice::Owned(vec![DnsEntry::Free; DNS_QUERIES]),
        };
        assemble(
            ManagedSlice::Owned(storage),
            ManagedSlice::Owned(vec![SocketStorage::EMPTY]),
            tables,
            tcp_buffers,
            udp_buffers,
            ManagedSlice::Owned(queries),
            LoopQueue::new(
                ManagedSlice::Owned(vec![[0u8; LOOP_FRAME]; LOOP_SLOTS]),
                ManagedSlice::Owned(vec![0u8; LARGE_FRAME]),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluated at compile time, as a `static` on the board is.
    const SMALL: StaticStorage<'static, 2, 1, 5> = StaticStorage::new();
    const SMALL_BUFFERS: StaticBuffers<2, 1, 256, 128> = StaticBuffers::new();

    #[test]
    fn static_storage_splits_into_pools_of_its_sizes() {
        let storage: &'static mut _ = Box::leak(Box::new(SMALL));
        let buffers: &'static mut _ = Box::leak(Box::new(SMALL_BUFFERS));
        let parts = storage.parts(buffers);
        assert_eq!(parts.tcp.len(), 2);
        assert_eq!(parts.udp.len(), 1);
        assert_eq!(parts.ids.len(), 5);
        assert!(parts.tcp.iter().all(|e| e.handle.is_some()));
        assert!(parts.udp.iter().all(|e| e.handle.is_some()));
        let tcp = parts.tcp[0].handle.unwrap();
        let socket = parts.sockets.get::<tcp::Socket>(tcp);
        assert_eq!(socket.send_capacity(), 256);
        assert_eq!(socket.recv_capacity(), 256);
        let udp = parts.udp[0].handle.unwrap();
        let socket = parts.sockets.get::<udp::Socket>(udp);
        assert_eq!(socket.payload_send_capacity(), 128);
        assert_eq!(socket.packet_recv_capacity(), UDP_PACKETS);
    }

    /// The upy-cmodule's sizes: 6 TCP sockets of 16 KiB, 4 UDP sockets of 2 KiB.
    type BoardStorage = StaticStorage<'static, 6, 4, 12>;
    type BoardBuffers = StaticBuffers<6, 4, { 16 * 1024 }, 2048>;
    const BOARD_BUFFERS: BoardBuffers = StaticBuffers::new();
    // SAFETY: `StaticBuffers` holds only byte arrays (alignment 1, no padding), so its value is
    // `size_of` initialised bytes. Were a field with padding or a non-byte type added, reading
    // it here would fail const evaluation or the test below.
    static BOARD_BUFFER_BYTES: [u8; core::mem::size_of::<BoardBuffers>()] =
        unsafe { core::mem::transmute(BOARD_BUFFERS) };

    /// What decides that a `static` of the buffers is zero-initialised (.bss, not in the image):
    /// its initial value is all zero bytes.
    #[test]
    fn static_buffers_start_as_zero_bytes() {
        assert_eq!(
            BOARD_BUFFER_BYTES.len(),
            2 * 6 * 16 * 1024 + 2 * 4 * 2048 + LOOPBACK_BYTES,
            "the buffers are only the socket and loopback buffers"
        );
        let first = BOARD_BUFFER_BYTES.iter().position(|&b| b != 0);
        assert_eq!(
            first, None,
            "a non-zero initial byte puts the buffers in .data"
        );
    }

    /// The sockets and tables, initialised data (.data) in a firmware image, stay small beside
    /// the buffers they run.
    #[test]
    fn static_storage_without_buffers_is_small() {
        let storage = core::mem::size_of::<BoardStorage>();
        let buffers = core::mem::size_of::<BoardBuffers>();
        assert!(storage <= 12 * 1024, "{storage} bytes for 12 sockets");
        assert!(storage * 16 < buffers, "{storage} bytes beside {buffers}");
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn heap_storage_matches_its_description() {
        let parts = HeapStorage {
            tcp_sockets: 3,
            tcp_buffer: 1000,
            udp_sockets: 2,
            udp_buffer: 500,
        }
        .parts();
        assert_eq!(
            (parts.tcp.len(), parts.udp.len(), parts.ids.len()),
            (3, 2, 7)
        );
        let udp = parts.udp[1].handle.unwrap();
        let socket = parts.sockets.get::<udp::Socket>(udp);
        assert_eq!(socket.payload_send_capacity(), 500);
        assert_eq!(socket.packet_send_capacity(), UDP_PACKETS);
    }

    #[test]
    fn ram_per_tcp_socket_counts_both_buffers() {
        assert_eq!(tcp_socket_ram(1000) - tcp_socket_ram(0), 2000);
        assert!(tcp_socket_ram(0) >= core::mem::size_of::<tcp::Socket<'static>>());
    }
}
