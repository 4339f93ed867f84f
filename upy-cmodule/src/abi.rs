//! The C entry points declared in `k230net.h`.

use core::ffi::c_int;

use k230_board::Entropy;

use crate::config::{Config, Status};
use crate::{modules, net};

/// `K230NET_OK`.
const OK: c_int = 0;

/// `int k230net_register(void)`: links the module objects into the running interpreter. Call
/// after every `mp_init()` and before any script runs.
///
/// # Safety
/// On the interpreter thread, with the interpreter initialised and no script running.
#[no_mangle]
pub unsafe extern "C" fn k230net_register() -> c_int {
    match modules::register() {
        Ok(()) => OK,
        Err(e) => {
            log::error!("k230net: registering the modules failed: {e:?}");
            Status::Register.code()
        }
    }
}

/// `int k230net_start(const k230net_config_t *config)`: brings the NIC on the K230 controller
/// `config` names and the stack up (DHCP starts at once) and installs them behind the modules.
/// May be retried after a failure.
///
/// # Safety
/// `config` is null or points to a valid `k230net_config_t`; see [`net::start`].
#[no_mangle]
pub unsafe extern "C" fn k230net_start(config: *const Config) -> c_int {
    // SAFETY: per the caller, null or valid.
    let Some(config) = (unsafe { config.as_ref() }) else {
        return Status::BadConfig.code();
    };
    // The controller is checked before any register is touched.
    let usb = match config.usb_nic() {
        Ok(usb) => usb,
        Err(status) => return status.code(),
    };
    // SAFETY: forwarded from the caller (the K230's TRNG: `k230net.h`).
    match unsafe { net::start(&usb, Entropy::K230Trng, config.cache()) } {
        Ok(mac) => {
            log::info!("k230net: up, MAC {mac:02x?}, DHCP started");
            OK
        }
        Err(status) => status.code(),
    }
}

/// `void k230net_poll(void)`: one round of network work; call from `MICROPY_EVENT_POLL_HOOK`.
///
/// # Safety
/// On the interpreter thread.
#[no_mangle]
pub unsafe extern "C" fn k230net_poll() {
    // SAFETY: forwarded from the caller.
    unsafe { net::poll() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_config_or_an_unknown_controller_touches_no_register() {
        // SAFETY: null is allowed; the port is checked before any register is touched (this
        // would fault on the host otherwise).
        assert_eq!(
            unsafe { k230net_start(core::ptr::null()) },
            Status::BadConfig.code()
        );
        let config = Config {
            usb_port: 2,
            connect_timeout_ms: 0,
            seed: 0,
            cache_clean: None,
            cache_invalidate: None,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { k230net_start(&config) }, Status::BadConfig.code());
    }
}
