//! DWC2 channel completion handling: the real `k230_hal::usb::dwc2` driver against the DWC2
//! model (`k230_hal::sim::dwc2_model`), with the fuzz input deciding what the driver reads from
//! HCINT, HCTSIZ, GINTSTS and HPRT0 once the device is enumerated.
//!
//! The driver's only view of the controller is its `RegisterBlock`, so the seam is a register
//! block that passes everything to the model except those reads, which take the next value from
//! the input (or the model's, when the input says so or has run out). A sequence of transfers
//! and port polls, also from the input, runs on top. The model keeps moving data for the
//! channels it really runs; it records the rules a driver confused by impossible register values
//! breaks, which is expected here and not checked.
//!
//! Invariants: no panic; every call returns (a result or a `UsbError`) within a bounded number
//! of register reads and of virtual time; an IN transfer never reports more bytes than its
//! buffer holds.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Poll;

use arbitrary::{Arbitrary, Unstructured};
use k230_hal::reg::RegisterBlock;
use k230_hal::sim::dwc2_model::{Dwc2Model, SimDelay, SimDma, SimRegs};
use k230_hal::sim::usb_function::{Handshake, InResponse, Stall, UsbFunction};
use k230_hal::usb::dwc2::regs::{hcint, hctsiz, GINTSTS, HPRT0};
use k230_hal::usb::dwc2::{Dwc2Host, Dwc2Memory, PIPES};
use k230_hal::usb::{
    DeviceAddress, Direction, Pipe, SetupPacket, Speed, TransferType, UsbDevice, UsbHost,
};

/// Register reads one call may make: the longest legal wait is a control transfer's 500 ms
/// budget in 10 µs steps with two reads each, plus a channel halt; far more means a loop that
/// does not end.
const MAX_READS_PER_CALL: u64 = 250_000;
/// Virtual time one call may take: `connect` waits 100 + 50 + 10 ms and runs five control
/// transfers of at most 500 ms each.
const MAX_NS_PER_CALL: u64 = 5_000_000_000;
/// Calls per input (bounds the run time of one input).
const MAX_CALLS: usize = 64;

/// What one intercepted register read returns.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Read {
    /// The model's value.
    Model,
    /// The model's value with these bits flipped.
    Flip(u32),
    /// This value.
    Value(u32),
}

/// A pipe of the test device, or one it does not have.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum PipeSel {
    BulkIn,
    BulkOut,
    InterruptIn,
    Other {
        endpoint: u8,
        is_in: bool,
        interrupt: bool,
        max_packet_size: u16,
    },
}

/// A driver call.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Call {
    PollIn { pipe: PipeSel, len: u16 },
    SubmitOut { pipe: PipeSel, len: u16 },
    PollOut { pipe: PipeSel },
    ControlIn { request: u8, length: u16 },
    ControlOut { request: u8, length: u8 },
    PollPort,
    InterruptPending,
    Connect,
    Detach,
    Attach,
}

/// The decoded input.
#[derive(Arbitrary, Debug)]
struct Input {
    calls: Vec<Call>,
    reads: Vec<Read>,
}

/// What the interposed register block shares with the harness.
#[derive(Default)]
struct Script {
    /// Serving reads from the input (after enumeration).
    active: Cell<bool>,
    reads: RefCell<VecDeque<Read>>,
    /// Register reads so far.
    count: Cell<u64>,
}

/// The model's registers, with the reads the fuzzer decides taken from the script.
struct FuzzRegs {
    model: SimRegs,
    script: Rc<Script>,
}

fn intercepted(offset: usize) -> bool {
    offset == GINTSTS
        || offset == HPRT0
        || (0..=PIPES).any(|ch| offset == hcint(ch) || offset == hctsiz(ch))
}

impl RegisterBlock for FuzzRegs {
    fn read32(&self, offset: usize) -> u32 {
        let s = &self.script;
        s.count.set(s.count.get() + 1);
        let value = self.model.read32(offset);
        if !s.active.get() || !intercepted(offset) {
            return value;
        }
        match s.reads.borrow_mut().pop_front() {
            None | Some(Read::Model) => value,
            Some(Read::Flip(bits)) => value ^ bits,
            Some(Read::Value(v)) => v,
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        self.model.write32(offset, value);
    }
}

type Host = Dwc2Host<FuzzRegs, SimDma, SimDelay>;

const BULK_IN: u8 = 1;
const BULK_OUT: u8 = 2;
const INTR_IN: u8 = 3;
const BULK_MPS: u16 = 512;

/// A high-speed device with bulk IN 1, bulk OUT 2 and interrupt IN 3: IN endpoints alternate
/// between data of varying length and NAK; OUT takes everything; vendor requests answer.
struct Device {
    config: Vec<u8>,
    tick: u32,
}

impl Device {
    fn new() -> Self {
        let mut config = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 3, 0xff, 0, 0, 0];
        config.extend_from_slice(&[7, 5, 0x80 | BULK_IN, 2, 0x00, 0x02, 0]);
        config.extend_from_slice(&[7, 5, BULK_OUT, 2, 0x00, 0x02, 0]);
        config.extend_from_slice(&[7, 5, 0x80 | INTR_IN, 3, 16, 0, 4]);
        let total = config.len() as u16;
        config[2..4].copy_from_slice(&total.to_le_bytes());
        Self { config, tick: 0 }
    }
}

impl UsbFunction for Device {
    fn speed(&self) -> Speed {
        Speed::High
    }
    fn device_descriptor(&self) -> [u8; 18] {
        [
            18, 1, 0, 2, 0xff, 0, 0, 64, 0x09, 0x12, 0x01, 0, 0, 1, 0, 0, 0, 1,
        ]
    }
    fn configuration_descriptor(&self) -> &[u8] {
        &self.config
    }
    fn string_descriptor(&self, _index: u8, _language: u16) -> Option<Vec<u8>> {
        None
    }
    fn set_configuration(&mut self, _value: u8) -> Result<(), Stall> {
        Ok(())
    }
    fn set_interface(&mut self, _interface: u8, _alternate: u8) -> Result<(), Stall> {
        Ok(())
    }
    fn control_in(&mut self, setup: &SetupPacket) -> Result<Vec<u8>, Stall> {
        match setup.request {
            0x7f => Err(Stall),
            r => Ok((0..setup.length).map(|i| i as u8 ^ r).collect()),
        }
    }
    fn control_out(&mut self, setup: &SetupPacket, _data: &[u8]) -> Result<(), Stall> {
        if setup.request == 0x7f {
            Err(Stall)
        } else {
            Ok(())
        }
    }
    fn data_out(&mut self, endpoint: u8, _packet: &[u8]) -> Handshake {
        if endpoint == BULK_OUT {
            Handshake::Ack
        } else {
            Handshake::Stall
        }
    }
    fn data_in(&mut self, endpoint: u8, buf: &mut [u8]) -> InResponse {
        self.tick = self.tick.wrapping_add(1);
        match endpoint {
            BULK_IN | INTR_IN if self.tick % 3 == 0 => InResponse::Nak,
            BULK_IN | INTR_IN => {
                let n = (self.tick as usize * 37) % (buf.len() + 1);
                buf[..n].fill(self.tick as u8);
                InResponse::Data(n)
            }
            _ => InResponse::Stall,
        }
    }
    fn bus_reset(&mut self) {}
}

fn pipe(device: &UsbDevice, sel: PipeSel) -> Pipe {
    let (endpoint, direction, kind, max_packet_size) = match sel {
        PipeSel::BulkIn => (BULK_IN, Direction::In, TransferType::Bulk, BULK_MPS),
        PipeSel::BulkOut => (BULK_OUT, Direction::Out, TransferType::Bulk, BULK_MPS),
        PipeSel::InterruptIn => (INTR_IN, Direction::In, TransferType::Interrupt, 16),
        PipeSel::Other {
            endpoint,
            is_in,
            interrupt,
            max_packet_size,
        } => (
            endpoint,
            if is_in { Direction::In } else { Direction::Out },
            if interrupt {
                TransferType::Interrupt
            } else {
                TransferType::Bulk
            },
            max_packet_size,
        ),
    };
    Pipe {
        device: device.address,
        speed: device.speed,
        endpoint,
        direction,
        kind,
        max_packet_size,
        interval: 4,
    }
}

thread_local! {
    /// The driver's DMA memory, allocated once per thread: leaking 66 KiB per input would end a
    /// fuzzing run (and trip the leak checker).
    static MEMORY: *mut Dwc2Memory = Box::into_raw(Box::default());
}

/// This thread's DMA memory, zeroed, for one driver.
fn memory() -> &'static mut Dwc2Memory {
    let raw = MEMORY.with(|m| *m);
    // SAFETY: `raw` comes from a leaked Box that is never freed. Only `run` calls this, once per
    // call, and the driver holding the previous reference was dropped when the previous `run` on
    // this thread returned, so this is the only live reference.
    let mem = unsafe { &mut *raw };
    *mem = Dwc2Memory::new();
    mem
}

/// Runs the driver against the model with the register reads and calls `data` decodes to.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let model = Dwc2Model::new();
    model.attach(Box::new(Device::new()));
    let script = Rc::new(Script::default());
    let regs = FuzzRegs {
        model: model.regs(),
        script: script.clone(),
    };
    let mut host: Host = Dwc2Host::new(regs, model.dma(), model.delay(), memory());
    host.init().expect("the model is a DWC2 core");
    let address = DeviceAddress::new(1).expect("1 is a valid address");
    let device = host
        .connect(address, 1000)
        .expect("the model enumerates the device");

    script.reads.replace(input.reads.into_iter().collect());
    script.active.set(true);
    for call in input.calls.into_iter().take(MAX_CALLS) {
        let reads = script.count.get();
        let start = model.now_ns();
        step(&mut host, &model, &device, call);
        let used = script.count.get() - reads;
        assert!(
            used <= MAX_READS_PER_CALL,
            "{call:?}: {used} register reads"
        );
        let took = model.now_ns() - start;
        assert!(took <= MAX_NS_PER_CALL, "{call:?}: {took} ns");
    }
}

fn step(host: &mut Host, model: &Dwc2Model, device: &UsbDevice, call: Call) {
    match call {
        Call::PollIn { pipe: sel, len } => {
            let mut buf = vec![0u8; usize::from(len)];
            if let Poll::Ready(Ok(n)) = host.poll_in(&pipe(device, sel), &mut buf) {
                assert!(n <= buf.len(), "{n} bytes into a {}-byte buffer", buf.len());
            }
        }
        Call::SubmitOut { pipe: sel, len } => {
            let data = vec![0xa5u8; usize::from(len)];
            let _ = host.submit_out(&pipe(device, sel), &data);
        }
        Call::PollOut { pipe: sel } => {
            let _ = host.poll_out(&pipe(device, sel));
        }
        Call::ControlIn { request, length } => {
            let setup = SetupPacket {
                request_type: 0xc0,
                request,
                value: 0,
                index: 0,
                length,
            };
            let mut buf = vec![0u8; usize::from(length)];
            if let Ok(n) = host.control_in(device.address, setup, &mut buf) {
                assert!(n <= usize::from(length));
            }
        }
        Call::ControlOut { request, length } => {
            let setup = SetupPacket {
                request_type: 0x40,
                request,
                value: 0,
                index: 0,
                length: u16::from(length),
            };
            let _ = host.control_out(device.address, setup, &vec![0x3c; usize::from(length)]);
        }
        Call::PollPort => {
            let _ = host.poll_port();
        }
        Call::InterruptPending => {
            let _ = host.interrupt_pending();
        }
        Call::Connect => {
            let _ = host.connect(device.address, 5);
        }
        Call::Detach => {
            let _ = model.detach();
        }
        Call::Attach => model.attach(Box::new(Device::new())),
    }
}
