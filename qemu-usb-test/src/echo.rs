//! The network side: the board assembly's supervised stack (`k230-board`) over the NIC, a static
//! address, ping answered by the stack, and a TCP echo server that reports each finished
//! connection.

use core::net::{Ipv4Addr, SocketAddrV4};

use k230_board::description::QEMU_RASPI3B_RNG;
use k230_hal::eth::driver::Driver;
use k230_hal::eth::nic::Nic;
use k230_hal::eth::supervisor::Supervisor;
use netstack::api::{Ipv4Config, NetError, SocketId, SocketStack, Transport};
use netstack::{InterfaceControl, StaticBuffers, StaticStorage};

use crate::{fail, println, timer, Host, ADDRESS, ECHO_PORT};

/// Two TCP sockets (listener pool) of 32 KiB per direction, one UDP socket.
type Storage = StaticStorage<'static, 2, 1, 5>;
static mut STORAGE: Storage = Storage::new();
/// The socket buffers, all zero bytes (.bss).
static mut BUFFERS: StaticBuffers<2, 1, 32768, 1536> = StaticBuffers::new();

/// Interval between status lines while idle.
const STATUS_EVERY_US: u64 = 5_000_000;

/// One echo connection: bytes read but not yet sent back, and totals.
struct Echo {
    id: SocketId,
    peer: SocketAddrV4,
    buf: [u8; 4096],
    start: usize,
    end: usize,
    received: u64,
    eof: bool,
}

impl Echo {
    /// Moves bytes from the socket back into it; true when the connection is finished.
    fn pump<S: SocketStack>(&mut self, stack: &mut S) -> bool {
        loop {
            if self.start < self.end {
                match stack.send(self.id, &self.buf[self.start..self.end]) {
                    Ok(n) => self.start += n,
                    Err(NetError::WouldBlock) => return false,
                    Err(e) => {
                        println!("qemu-usb-test: echo send: {e:?}");
                        return true;
                    }
                }
                continue;
            }
            if self.eof {
                return true;
            }
            match stack.recv(self.id, &mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.received += n as u64;
                    self.start = 0;
                    self.end = n;
                }
                Err(NetError::WouldBlock) => return false,
                Err(e) => {
                    println!("qemu-usb-test: echo recv: {e:?}");
                    return true;
                }
            }
        }
    }
}

/// Runs the stack forever.
pub fn serve(nic: Nic<Host>) -> ! {
    // SAFETY: the only references ever made to STORAGE and BUFFERS; this function never returns.
    let (storage, buffers) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(STORAGE),
            &mut *core::ptr::addr_of_mut!(BUFFERS),
        )
    };
    // The secret from raspi3b's RNG, health-checked, as the firmware takes it.
    // SAFETY: the RNG's registers, used only here.
    let seed = match unsafe { k230_board::secret::seed(QEMU_RASPI3B_RNG) } {
        Ok(seed) => seed,
        Err(e) => fail(format_args!("entropy: {e:?}")),
    };
    let mut stack = k230_board::supervised(
        Supervisor::new(nic),
        seed,
        storage.parts(buffers),
        timer::now_us(),
    );
    let config = Ipv4Config {
        address: ADDRESS,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::UNSPECIFIED,
        dns: Ipv4Addr::UNSPECIFIED,
    };
    if let Err(e) = stack.set_static(config) {
        fail(format_args!("static address: {e:?}"));
    }
    let listener = stack
        .open(Transport::Tcp)
        .and_then(|id| {
            stack
                .bind(id, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT))
                .map(|()| id)
        })
        .and_then(|id| stack.listen(id, 1).map(|()| id));
    let listener = match listener {
        Ok(id) => id,
        Err(e) => fail(format_args!("echo listener: {e:?}")),
    };
    println!("qemu-usb-test: READY {ADDRESS} tcp echo port {ECHO_PORT}");
    let mut conn: Option<Echo> = None;
    let mut last_status = timer::now_us();
    loop {
        let now = timer::now_us();
        stack.poll(now);
        if conn.is_none() {
            if let Ok((id, peer)) = stack.accept(listener) {
                println!("qemu-usb-test: echo connection from {peer}");
                conn = Some(Echo {
                    id,
                    peer,
                    buf: [0; 4096],
                    start: 0,
                    end: 0,
                    received: 0,
                    eof: false,
                });
            }
        }
        if let Some(c) = conn.as_mut() {
            if c.pump(&mut stack) {
                println!(
                    "qemu-usb-test: echo done: {} bytes from {}",
                    c.received, c.peer
                );
                stack.close(c.id);
                conn = None;
            }
        }
        if now.saturating_sub(last_status) > STATUS_EVERY_US {
            last_status = now;
            let s = stack.device().counters();
            println!(
                "qemu-usb-test: stats rx {} (errors {}) tx {} (errors {})",
                s.rx_frames, s.rx_errors, s.tx_frames, s.tx_errors
            );
        }
    }
}
