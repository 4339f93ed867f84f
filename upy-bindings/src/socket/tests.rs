//! The `socket` module on the real interpreter, over a mocked socket layer.

use core::net::{Ipv4Addr, SocketAddrV4};

use mockall::predicate::eq;
use upy_socket::RecvFlags;

use crate::backend::{Handle, MockSocketApi, OptOutcome, SockError};
use crate::host::testing::run;
use crate::host::{Backends, ScriptError};

fn with_sockets(mock: MockSocketApi) -> Backends {
    Backends {
        sockets: Some(Box::new(mock)),
        ..Backends::default()
    }
}

fn ok(mock: MockSocketApi, source: &str) {
    if let Some(Err(e)) = run(with_sockets(mock), source) {
        panic!("script failed: {e}");
    }
}

#[test]
fn constants_have_modlwip_values() {
    ok(
        MockSocketApi::new(),
        "import socket\n\
         assert socket.AF_INET == 2 and socket.AF_INET6 == 10\n\
         assert socket.SOCK_STREAM == 1 and socket.SOCK_DGRAM == 2\n\
         assert socket.SOL_SOCKET == 1 and socket.SO_REUSEADDR == 4 and socket.SO_BROADCAST == 32\n\
         assert socket.IPPROTO_IP == 0 and socket.IPPROTO_TCP == 6 and socket.TCP_NODELAY == 64\n\
         assert socket.IP_ADD_MEMBERSHIP == 1024\n\
         assert socket.__name__ == 'socket'\n\
         assert type(socket.socket) is type\n\
         assert not hasattr(socket, 'error')\n",
    );
}

#[test]
fn tcp_client_calls_reach_the_socket_layer_in_order() {
    let mut mock = MockSocketApi::new();
    let mut seq = mockall::Sequence::new();
    mock.expect_socket()
        .with(eq(2), eq(1), eq(0))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(Handle(7)));
    mock.expect_connect()
        .with(
            eq(Handle(7)),
            eq(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 60000)),
        )
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mock.expect_stream_write()
        .withf(|h, data| *h == Handle(7) && data == "K230 0\r\n".as_bytes())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, data| Ok(data.len()));
    mock.expect_send()
        .withf(|h, data| *h == Handle(7) && data == b"xyz")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(2));
    mock.expect_recv()
        .withf(|h, buf, flags| *h == Handle(7) && buf.len() == 10 && *flags == RecvFlags::NONE)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, buf, _| {
            buf[..2].copy_from_slice(b"hi");
            Ok(2)
        });
    mock.expect_close()
        .with(eq(Handle(7)))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    ok(
        mock,
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)\n\
         s.connect(('10.0.0.2', 60000))\n\
         assert s.write('K230 0\\r\\n') == 8\n\
         assert s.send(b'xyz') == 2\n\
         assert s.recv(10) == b'hi'\n\
         s.close()\n\
         s.close()\n",
    );
}

#[test]
fn recv_flags_are_modlwips_and_reach_the_layer() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket().returning(|_, _, _| Ok(Handle(6)));
    let peek = RecvFlags {
        peek: true,
        dont_wait: false,
    };
    let both = RecvFlags {
        peek: true,
        dont_wait: true,
    };
    let dont_wait = RecvFlags {
        peek: false,
        dont_wait: true,
    };
    for expected in [peek, both, RecvFlags::NONE] {
        mock.expect_recv()
            .withf(move |h, buf, flags| *h == Handle(6) && buf.len() == 4 && *flags == expected)
            .times(1)
            .returning(|_, buf, _| {
                buf[..2].copy_from_slice(b"ab");
                Ok(2)
            });
    }
    mock.expect_recvfrom()
        .withf(move |h, buf, flags| *h == Handle(6) && buf.len() == 3 && *flags == dont_wait)
        .times(1)
        .returning(|_, _, _| Err(SockError::Os(11)));
    mock.expect_close().return_const(());
    ok(
        mock,
        "import socket\n\
         assert (socket.MSG_PEEK, socket.MSG_DONTWAIT) == (1, 2)\n\
         s = socket.socket()\n\
         assert s.recv(4, socket.MSG_PEEK) == b'ab'\n\
         assert s.recv(4, socket.MSG_PEEK | socket.MSG_DONTWAIT | 0x100) == b'ab'\n\
         assert s.recv(4, 0x100) == b'ab'\n\
         try:\n    s.recvfrom(3, socket.MSG_DONTWAIT)\nexcept OSError as e:\n    assert e.errno == 11\nelse:\n    raise AssertionError\n\
         try:\n    s.recv(3, 'x')\nexcept TypeError:\n    pass\nelse:\n    raise AssertionError\n\
         try:\n    s.recv(3, 1, 2)\nexcept TypeError:\n    pass\nelse:\n    raise AssertionError\n\
         s.close()\n",
    );
}

#[test]
fn getaddrinfo_returns_modlwips_shape() {
    let mut mock = MockSocketApi::new();
    mock.expect_getaddrinfo()
        .withf(|host, port, hints| host == "board.example" && *port == 80 && *hints == [0; 4])
        .times(1)
        .returning(|_, port, _| Ok(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), port)));
    ok(
        mock,
        "import socket\n\
         ai = socket.getaddrinfo('board.example', 80)\n\
         assert ai == [(2, 1, 0, '', ('192.0.2.1', 80))], ai\n",
    );
}

#[test]
fn errors_become_oserror_with_the_layers_errno() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket().returning(|_, _, _| Ok(Handle(1)));
    mock.expect_connect()
        .returning(|_, _| Err(SockError::Os(111)));
    mock.expect_getaddrinfo()
        .returning(|_, _, _| Err(SockError::Os(-2)));
    mock.expect_settimeout()
        .returning(|_, _| Err(SockError::Value("Timeout value out of range")));
    mock.expect_close().return_const(());
    ok(
        mock,
        "import socket\n\
         s = socket.socket()\n\
         try:\n    s.connect(('10.0.0.2', 1))\nexcept OSError as e:\n    assert e.errno == 111, e\nelse:\n    raise AssertionError\n\
         try:\n    socket.getaddrinfo('nowhere', 1)\nexcept OSError as e:\n    assert e.errno == -2, e\nelse:\n    raise AssertionError\n\
         try:\n    s.settimeout(-1)\nexcept ValueError as e:\n    assert 'range' in str(e)\nelse:\n    raise AssertionError\n\
         s.close()\n",
    );
}

#[test]
fn misuse_raises_the_right_exception_without_reaching_the_layer() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket()
        .times(1)
        .returning(|_, _, _| Ok(Handle(3)));
    mock.expect_close()
        .with(eq(Handle(3)))
        .times(1)
        .return_const(());
    ok(
        mock,
        "import socket\n\
         def raises(exc, f, *a):\n    try:\n        f(*a)\n    except exc as e:\n        return e\n    raise AssertionError('no ' + exc.__name__)\n\
         s = socket.socket()\n\
         raises(TypeError, s.connect, 'not a tuple')\n\
         raises(ValueError, s.connect, ('10.0.0.1',))\n\
         raises(ValueError, s.connect, ('not.an.ip', 80))\n\
         raises(TypeError, s.connect, (1234, 80))\n\
         raises(OverflowError, s.bind, ('10.0.0.1', 70000))\n\
         raises(MemoryError, s.recv, -1)\n\
         raises(MemoryError, s.recv, 10**12)\n\
         raises(OverflowError, s.recv, 2**70)\n\
         raises(TypeError, s.settimeout, 'x')\n\
         raises(TypeError, s.setsockopt, 1, 4, None)\n\
         raises(TypeError, s.setsockopt, 1, 4, b'xx')\n\
         raises(TypeError, s.setsockopt, 0, socket.IP_ADD_MEMBERSHIP, 1)\n\
         raises(ValueError, s.setsockopt, 0, socket.IP_ADD_MEMBERSHIP, b'1234')\n\
         raises(TypeError, s.send, 12)\n\
         raises(TypeError, socket.socket.close, 5)\n\
         raises(TypeError, socket.socket, 'x')\n\
         raises(TypeError, socket.socket, 1, 2, 3, 4, 5)\n\
         s.close()\n\
         e = raises(OSError, s.send, b'x')\n\
         assert e.errno == 9, e\n\
         e = raises(OSError, s.recv, 1)\n\
         assert e.errno == 9, e\n\
         e = raises(OSError, s.read, 1)\n\
         assert e.errno == 9, e\n",
    );
}

#[test]
fn without_a_backend_calls_raise_enodev() {
    let result = run(
        Backends::default(),
        "import socket\n\
         try:\n    socket.socket()\nexcept OSError as e:\n    assert e.errno == 19\nelse:\n    raise AssertionError\n",
    );
    assert!(matches!(result, None | Some(Ok(()))), "{result:?}");
}

#[test]
fn select_poll_uses_the_stream_ioctl() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket().returning(|_, _, _| Ok(Handle(5)));
    mock.expect_poll()
        .withf(|h, _| *h == Handle(5))
        .returning(|_, flags| flags & 0x0001);
    mock.expect_close().return_const(());
    ok(
        mock,
        "import socket, select\n\
         s = socket.socket()\n\
         p = select.poll()\n\
         p.register(s, select.POLLIN | select.POLLOUT)\n\
         r = p.poll(0)\n\
         assert len(r) == 1 and r[0][0] is s and r[0][1] == select.POLLIN, r\n\
         s.close()\n",
    );
}

#[test]
fn stream_read_helpers_and_nonblocking_eagain() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket().returning(|_, _, _| Ok(Handle(2)));
    let mut served = false;
    mock.expect_stream_read().returning(move |_, buf| {
        if served {
            return Err(SockError::Os(11));
        }
        served = true;
        let line = b"line one\nrest";
        let n = line.len().min(buf.len());
        buf[..n].copy_from_slice(&line[..n]);
        Ok(n)
    });
    mock.expect_close().return_const(());
    ok(
        mock,
        "import socket\n\
         s = socket.socket()\n\
         f = s.makefile('rwb', 0)\n\
         assert f is s\n\
         buf = bytearray(20)\n\
         n = s.readinto(buf)\n\
         assert buf[:n] == b'line one\\nrest', buf\n\
         assert s.read(4) is None\n\
         s.close()\n",
    );
}

#[test]
fn setsockopt_passes_integers_and_refuses_byte_options() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket().returning(|_, _, _| Ok(Handle(4)));
    mock.expect_setsockopt()
        .with(eq(Handle(4)), eq(1), eq(4), eq(1))
        .times(1)
        .returning(|_, _, _, _| Ok(OptOutcome::Applied));
    mock.expect_setsockopt()
        .with(eq(Handle(4)), eq(6), eq(64), eq(1))
        .times(1)
        .returning(|_, _, _, _| Ok(OptOutcome::NotImplemented));
    mock.expect_close().return_const(());
    ok(
        mock,
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         assert s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True) is None\n\
         try:\n    s.setsockopt(0, socket.IP_ADD_MEMBERSHIP, b'12345678')\nexcept OSError as e:\n    assert e.errno == 95\nelse:\n    raise AssertionError\n\
         s.close()\n",
    );
}

#[test]
fn script_errors_are_reported_not_crashed() {
    let result = run(Backends::default(), "import socket\nsocket.nonexistent\n");
    match result {
        None => {}
        Some(Err(ScriptError::Exception(text))) => {
            assert!(text.contains("AttributeError"), "{text}")
        }
        other => panic!("{other:?}"),
    }
}

/// Found by the `upy_calls` fuzz target: an argument's `__int__` closed the socket and opened
/// another, which took the closed one's handle; the call then acted on the new socket. Every
/// call looks its handle up again after converting its arguments, so the closed socket is
/// `EBADF` and the new one is left alone.
#[test]
fn a_socket_closed_while_its_arguments_convert_is_ebadf() {
    let mut mock = MockSocketApi::new();
    // Every socket gets the handle just freed, as a slot table hands it out.
    mock.expect_socket().returning(|_, _, _| Ok(Handle(3)));
    mock.expect_settimeout().returning(|_, _| Ok(()));
    mock.expect_close().with(eq(Handle(3))).return_const(());
    // No other expectation: a call reaching the layer fails the test.
    ok(
        mock,
        "import socket\n\
         class Closer:\n\
         \x20   def __init__(self, v):\n\
         \x20       self.v = v\n\
         \x20   def __int__(self):\n\
         \x20       global t\n\
         \x20       s.close()\n\
         \x20       t = socket.socket()\n\
         \x20       return self.v\n\
         def check(call):\n\
         \x20   global s\n\
         \x20   s = socket.socket()\n\
         \x20   try:\n\
         \x20       call()\n\
         \x20   except OSError as e:\n\
         \x20       assert e.errno == 9, e\n\
         \x20   else:\n\
         \x20       raise AssertionError('no EBADF')\n\
         \x20   t.close()\n\
         check(lambda: s.recv(Closer(10)))\n\
         check(lambda: s.recv(10, Closer(0)))\n\
         check(lambda: s.recvfrom(Closer(10)))\n\
         check(lambda: s.listen(Closer(1)))\n\
         check(lambda: s.setsockopt(Closer(1), 4, 1))\n\
         check(lambda: s.setsockopt(1, 4, Closer(1)))\n\
         check(lambda: s.bind(('0.0.0.0', Closer(80))))\n\
         check(lambda: s.connect(('10.0.0.2', Closer(80))))\n\
         check(lambda: s.sendto(b'x', ('10.0.0.2', Closer(80))))\n",
    );
}

/// Found by the `upy_calls` fuzz target: `sendto` took the data's bytes, then converted the
/// address, whose port's `__int__` resized the bytearray holding the data (moving its bytes);
/// the call then sent from the old, freed place. The data is now taken last.
#[test]
fn sendto_sends_the_data_as_it_is_after_the_address_converted() {
    let mut mock = MockSocketApi::new();
    mock.expect_socket().returning(|_, _, _| Ok(Handle(5)));
    let grown: Vec<u8> = (0..=255u8).cycle().take(2048).collect();
    mock.expect_sendto()
        .withf(move |h, data, to| {
            *h == Handle(5)
                && data == grown.as_slice()
                && *to == SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 9)
        })
        .times(1)
        .returning(|_, data, _| Ok(data.len()));
    mock.expect_close().return_const(());
    ok(
        mock,
        "import socket\n\
         buf = bytearray(b'old')\n\
         class Grow:\n\
         \x20   def __int__(self):\n\
         \x20       buf[:] = bytes(range(256)) * 8\n\
         \x20       return 9\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         assert s.sendto(buf, ('10.0.0.2', Grow())) == 2048\n\
         s.close()\n",
    );
}
