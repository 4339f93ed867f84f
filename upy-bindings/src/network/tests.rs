//! `network.LAN` on the real interpreter, over a mocked interface.

use core::net::Ipv4Addr;

use mockall::predicate::eq;

use crate::backend::{IfConfig, MockLanApi};
use crate::host::testing::run;
use crate::host::Backends;

fn ok(mock: MockLanApi, source: &str) {
    let backends = Backends {
        sockets: None,
        lan: Some(Box::new(mock)),
        ..Backends::default()
    };
    if let Some(Err(e)) = run(backends, source) {
        panic!("script failed: {e}");
    }
}

#[test]
fn lan_reports_and_sets_the_interface_like_canmv() {
    let mut mock = MockLanApi::new();
    mock.expect_active().return_const(true);
    mock.expect_set_active()
        .with(eq(true))
        .times(1)
        .returning(|_| Ok(()));
    mock.expect_isconnected().return_const(true);
    mock.expect_status().return_const(1);
    mock.expect_ifconfig().return_const(IfConfig {
        address: Ipv4Addr::new(10, 0, 0, 2),
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        gateway: Ipv4Addr::new(10, 0, 0, 1),
        dns: Ipv4Addr::new(10, 0, 0, 1),
    });
    mock.expect_set_ifconfig()
        .with(eq(IfConfig {
            address: Ipv4Addr::new(192, 168, 7, 2),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: Ipv4Addr::new(192, 168, 7, 1),
            dns: Ipv4Addr::new(8, 8, 8, 8),
        }))
        .times(1)
        .returning(|_| Ok(()));
    mock.expect_set_dhcp().times(1).returning(|| Ok(()));
    mock.expect_mac()
        .return_const([0x00, 0xe0, 0x4c, 0x36, 0x01, 0x02]);
    mock.expect_set_mac()
        .with(eq([2, 0, 0, 0, 0, 1]))
        .times(1)
        .returning(|_| Ok(()));
    ok(
        mock,
        "import network\n\
         lan = network.LAN()\n\
         assert lan.active() is True\n\
         assert lan.active(True) is None\n\
         assert lan.isconnected() is True\n\
         assert lan.status() == 1\n\
         assert lan.ifconfig() == ('10.0.0.2', '255.255.255.0', '10.0.0.1', '10.0.0.1'), lan.ifconfig()\n\
         lan.ifconfig(('192.168.7.2', '255.255.255.0', '192.168.7.1', '8.8.8.8'))\n\
         lan.ifconfig('dhcp')\n\
         assert lan.config('mac') == b'\\x00\\xe0\\x4c\\x36\\x01\\x02'\n\
         lan.config(mac=b'\\x02\\x00\\x00\\x00\\x00\\x01')\n",
    );
}

#[test]
fn lan_misuse_raises() {
    ok(
        MockLanApi::new(),
        "import network\n\
         lan = network.LAN()\n\
         def raises(exc, f, *a, **k):\n    try:\n        f(*a, **k)\n    except exc:\n        return\n    raise AssertionError('no ' + exc.__name__)\n\
         raises(ValueError, lan.ifconfig, 'static')\n\
         raises(ValueError, lan.ifconfig, ('1.2.3.4', '255.0.0.0'))\n\
         raises(ValueError, lan.ifconfig, ('1.2.3.4', 'x', '1.1.1.1', '1.1.1.1'))\n\
         raises(ValueError, lan.config, 'essid')\n\
         raises(ValueError, lan.config, mac=b'123')\n\
         raises(ValueError, lan.config, ssid=b'123')\n\
         raises(TypeError, lan.config)\n\
         raises(TypeError, network.LAN.active, 3)\n",
    );
}
