//! What the firmware passes to `k230net_start` (`k230net_config_t` in `k230net.h`) and the
//! result codes it gets back.

use k230_board::UsbNic;
use k230_hal::reg::dma::CacheMaintenance;
use k230_hal::sysctl::UsbPort;

/// A cache maintenance routine over `addr..addr + len` (`k230net_cache_fn`).
pub type CacheFn = unsafe extern "C" fn(addr: usize, len: usize);

/// `k230net_config_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The DWC2 controller the NIC hangs off: `K230NET_USB0` (0x9150_0000) or `K230NET_USB1`
    /// (0x9154_0000, the boards' RJ45 RTL8152).
    pub usb_port: u32,
    /// How long to wait for a device on the root port.
    pub connect_timeout_ms: u32,
    /// Reserved, ignored: the stack's secret (TCP sequence numbers, ports, DNS and DHCP ids)
    /// comes from the K230's TRNG. Kept so the structure's layout does not change.
    pub seed: u64,
    /// Writes dirty lines back before the controller reads memory; null when DMA is coherent.
    pub cache_clean: Option<CacheFn>,
    /// Drops lines before the CPU reads what the controller wrote; null when coherent.
    pub cache_invalidate: Option<CacheFn>,
}

/// `K230NET_USB0`.
pub const USB0: u32 = 0;
/// `K230NET_USB1`.
pub const USB1: u32 = 1;

impl Config {
    /// The controller named by `usb_port`.
    pub fn port(&self) -> Result<UsbPort, Status> {
        match self.usb_port {
            USB0 => Ok(UsbPort::Usb0),
            USB1 => Ok(UsbPort::Usb1),
            _ => Err(Status::BadConfig),
        }
    }

    /// The board's USB NIC: the K230 controller `usb_port` names, waiting
    /// `connect_timeout_ms` for the device; VBUS is not switched here (a C firmware powers its
    /// NIC itself).
    pub fn usb_nic(&self) -> Result<UsbNic, Status> {
        Ok(UsbNic {
            connect_timeout_ms: self.connect_timeout_ms,
            ..UsbNic::k230(self.port()?)
        })
    }

    /// The cache maintenance the firmware supplied.
    pub fn cache(&self) -> CacheHooks {
        CacheHooks::new(self.cache_clean, self.cache_invalidate)
    }
}

/// Cache maintenance through the firmware's routines (none: coherent DMA).
#[derive(Clone, Copy, Debug)]
pub struct CacheHooks {
    clean: Option<CacheFn>,
    invalidate: Option<CacheFn>,
}

impl CacheHooks {
    /// Maintenance through `clean` and `invalidate` (`None`: the controller's DMA is coherent).
    pub const fn new(clean: Option<CacheFn>, invalidate: Option<CacheFn>) -> Self {
        CacheHooks { clean, invalidate }
    }
}

impl CacheMaintenance for CacheHooks {
    fn clean(&self, addr: usize, len: usize) {
        if let Some(clean) = self.clean {
            // SAFETY: the firmware's routine for any address range the driver hands the
            // controller (k230net.h).
            unsafe { clean(addr, len) }
        }
    }

    unsafe fn invalidate(&self, addr: usize, len: usize) {
        if let Some(invalidate) = self.invalidate {
            // SAFETY: as in `clean`; the caller's contract keeps the range free of data the
            // CPU still needs.
            unsafe { invalidate(addr, len) }
        }
    }
}

/// Why a call failed: the `K230NET_E_*` codes of `k230net.h` (0 is `K230NET_OK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// A null config or an unknown `usb_port`.
    BadConfig = -1,
    /// `k230net_start` already succeeded.
    AlreadyStarted = -2,
    /// The controller's reset did not report done.
    UsbReset = -3,
    /// The DWC2 core did not initialise in host mode.
    Dwc2Init = -4,
    /// No device enumerated on the root port within the timeout.
    NoDevice = -5,
    /// The device is neither an RTL8152 nor a CDC-ECM function.
    UnsupportedNic = -6,
    /// The NIC failed to initialise.
    NicInit = -7,
    /// Interning names or filling the module dicts raised (MemoryError).
    Register = -8,
    /// The TRNG failed its start-up health test: the network is not started with a guessable
    /// secret.
    Entropy = -9,
}

impl Status {
    /// Every code, for the header consistency test.
    pub const ALL: [Status; 9] = [
        Status::BadConfig,
        Status::AlreadyStarted,
        Status::UsbReset,
        Status::Dwc2Init,
        Status::NoDevice,
        Status::UnsupportedNic,
        Status::NicInit,
        Status::Register,
        Status::Entropy,
    ];

    /// The C return value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The name of its `K230NET_E_*` macro.
    pub const fn c_name(self) -> &'static str {
        match self {
            Status::BadConfig => "K230NET_E_CONFIG",
            Status::AlreadyStarted => "K230NET_E_STARTED",
            Status::UsbReset => "K230NET_E_USB_RESET",
            Status::Dwc2Init => "K230NET_E_DWC2",
            Status::NoDevice => "K230NET_E_NO_DEVICE",
            Status::UnsupportedNic => "K230NET_E_UNSUPPORTED_NIC",
            Status::NicInit => "K230NET_E_NIC",
            Status::Register => "K230NET_E_REGISTER",
            Status::Entropy => "K230NET_E_ENTROPY",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = include_str!("../cmodule/k230net.h");

    /// The value of `#define NAME (value)` in the header.
    fn define(name: &str) -> Option<i64> {
        HEADER.lines().find_map(|line| {
            let rest = line.strip_prefix("#define ")?.strip_prefix(name)?;
            let value = rest.split("/*").next()?.trim();
            let value = value.trim_start_matches('(').trim_end_matches(')');
            value.trim_end_matches('u').parse().ok()
        })
    }

    #[test]
    fn status_codes_match_the_header() {
        assert_eq!(define("K230NET_OK"), Some(0));
        for status in Status::ALL {
            assert_eq!(
                define(status.c_name()),
                Some(i64::from(status.code())),
                "{status:?}"
            );
        }
        assert_eq!(define("K230NET_USB0"), Some(i64::from(USB0)));
        assert_eq!(define("K230NET_USB1"), Some(i64::from(USB1)));
    }

    #[test]
    fn config_names_a_controller_or_is_rejected() {
        let mut config = Config {
            usb_port: USB1,
            connect_timeout_ms: 1,
            seed: 0,
            cache_clean: None,
            cache_invalidate: None,
        };
        assert_eq!(config.port(), Ok(UsbPort::Usb1));
        config.usb_port = USB0;
        assert_eq!(config.port(), Ok(UsbPort::Usb0));
        config.usb_port = 2;
        assert_eq!(config.port(), Err(Status::BadConfig));
    }

    static CALLS: std::sync::Mutex<Vec<(&str, usize, usize)>> = std::sync::Mutex::new(Vec::new());

    unsafe extern "C" fn clean(addr: usize, len: usize) {
        CALLS.lock().unwrap().push(("clean", addr, len));
    }

    unsafe extern "C" fn invalidate(addr: usize, len: usize) {
        CALLS.lock().unwrap().push(("invalidate", addr, len));
    }

    #[test]
    fn cache_hooks_call_the_firmware_or_nothing() {
        let coherent = CacheHooks {
            clean: None,
            invalidate: None,
        };
        coherent.clean(0x1000, 64);
        // SAFETY: neither hook touches memory (none, or the recording test hook).
        unsafe { coherent.invalidate(0x1000, 64) };
        assert!(CALLS.lock().unwrap().is_empty());
        let hooks = CacheHooks {
            clean: Some(clean),
            invalidate: Some(invalidate),
        };
        hooks.clean(0x1000, 64);
        // SAFETY: as above.
        unsafe { hooks.invalidate(0x2000, 32) };
        assert_eq!(
            *CALLS.lock().unwrap(),
            [("clean", 0x1000, 64), ("invalidate", 0x2000, 32)]
        );
    }

    #[test]
    fn config_layout_is_the_headers() {
        // u32, u32, u64, two function pointers: 8 + 8 + 2 pointers, no padding.
        assert_eq!(core::mem::offset_of!(Config, seed), 8);
        assert_eq!(core::mem::offset_of!(Config, cache_clean), 16);
        assert_eq!(
            core::mem::size_of::<Config>(),
            16 + 2 * core::mem::size_of::<usize>()
        );
    }
}
