//! The network stack over a supervised NIC, with the one address policy every board runs.
//!
//! [`supervised`] builds a `netstack` [`Stack`] whose every poll (from the board's loop, or from
//! a socket call waiting for the network) first lets the hot-plug [`Supervisor`] look at the
//! root port, then acts on what it reports:
//! - the USB device went away: the interface's address is released, as lwIP's `netif_remove`
//!   does ([`Stack::release_address`]): the connections bound to it abort, so a socket's next
//!   call fails with `ECONNABORTED`, and `network.LAN` reports no connection;
//! - the device is back (with the same MAC): the addressing the user had is applied again, the
//!   DHCP client anew or the static configuration ([`Stack::restore_address`]); a configuration
//!   the user set while the device was gone stands;
//! - the stack's link state is the real carrier: the device runs and its PHY has a link.
//!
//! [`Supervisor`]: k230_hal::eth::supervisor::Supervisor

use k230_hal::eth::driver::Driver;
use k230_hal::eth::supervisor::{LinkEvent, Supervised};
use netstack::api::Micros;
use netstack::{Addressing, InterfaceControl, Parts, Seed, Stack, StackConfig};
use smoltcp::phy::Device;

/// The stack over `device` (a supervised NIC) from `parts`, with the NIC's MAC, the secret
/// `seed` (from the board's noise source, [`crate::secret::seed`]) and the address policy of
/// the [module docs](self). The interface starts without address: start DHCP or set a static
/// configuration.
pub fn supervised<'a, D: Device + Supervised>(
    device: D,
    seed: Seed,
    parts: Parts<'a>,
    now: Micros,
) -> Stack<'a, D> {
    let mac = device.supervisor().mac();
    let config = StackConfig { mac, seed };
    let mut stack = Stack::new(device, config, parts, now);
    stack.set_link_watch(supervise::<D>);
    stack
}

/// Lets the supervisor look at the port, acts on what it reports and sets the link state.
fn supervise<D: Device + Supervised>(stack: &mut Stack<'_, D>, now: Micros) {
    match stack.device_mut().supervisor_mut().poll(now / 1000) {
        Some(LinkEvent::DeviceLost) => {
            log::warn!("board: NIC unplugged, address released");
            stack.release_address();
        }
        Some(LinkEvent::DeviceBack) => match stack.restore_address() {
            Some(Addressing::Dhcp) => log::info!("board: NIC back, DHCP restarted"),
            Some(Addressing::Static(config)) => {
                log::info!("board: NIC back, static address {}", config.address)
            }
            None => log::info!("board: NIC back"),
        },
        Some(LinkEvent::BringUpFailed) | None => {}
    }
    let carrier = stack.device().supervisor().carrier();
    stack.set_link_up(carrier);
}
