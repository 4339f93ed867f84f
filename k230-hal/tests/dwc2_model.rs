//! The DWC2 model on its own, driven register by register: it must reject what the silicon
//! would, so that it catches driver bugs. Offsets and bits from Linux `drivers/usb/dwc2/hw.h`.
#![cfg(feature = "sim")]

mod dwc2_support;

use dwc2_support::Loopback;
use embedded_hal::delay::DelayNs;
use k230_hal::reg::dma::{Dma, DmaDirection};
use k230_hal::reg::RegisterBlock;
use k230_hal::sim::dwc2_model::{Dwc2Model, SimDelay, SimRegs};
use k230_hal::usb::Speed;

const GAHBCFG: usize = 0x008;
const GUSBCFG: usize = 0x00c;
const GRSTCTL: usize = 0x010;
const GINTSTS: usize = 0x014;
const GRXFSIZ: usize = 0x024;
const GNPTXFSIZ: usize = 0x028;
const GDFIFOCFG: usize = 0x05c;
const HPRT0: usize = 0x440;
const HCCHAR0: usize = 0x500;
const HCINT0: usize = 0x508;
const HCTSIZ0: usize = 0x510;
const HCDMA0: usize = 0x514;

const CHHLTD: u32 = 1 << 1;
const XFERCOMPL: u32 = 1 << 0;
const AHBERR: u32 = 1 << 2;
const XACTERR: u32 = 1 << 7;
const PRT_ENA: u32 = 1 << 2;
const PRT_ENACHG: u32 = 1 << 3;
const PRT_CONNDET: u32 = 1 << 1;
const PRT_RST: u32 = 1 << 8;
const PRT_PWR: u32 = 1 << 12;

/// A buffer the controller may write: whole cache lines (the DMA rules refuse anything else).
#[repr(C, align(64))]
struct Lines<const N: usize>([u8; N]);

/// Host mode, DMA on, FIFOs sized, port powered; reset held for `reset_ms`.
fn bring_up(model: &Dwc2Model, reset_ms: u32) -> (SimRegs, SimDelay) {
    let (regs, delay) = bring_up_fifo_only(model, reset_ms);
    // EP info (one word per channel) above RX + non-periodic TX.
    regs.write32(GDFIFOCFG, (768 << 16) | 1024);
    (regs, delay)
}

/// As [`bring_up`] but without moving GDFIFOCFG.EPINFOBASE below the top of the FIFO.
fn bring_up_fifo_only(model: &Dwc2Model, reset_ms: u32) -> (SimRegs, SimDelay) {
    let regs = model.regs();
    let mut delay = model.delay();
    regs.write32(GUSBCFG, 1 << 29);
    delay.delay_ms(25);
    assert_eq!(regs.read32(GINTSTS) & 1, 1, "host mode");
    regs.write32(GAHBCFG, 1 << 5);
    regs.write32(GRXFSIZ, 512);
    regs.write32(GNPTXFSIZ, (256 << 16) | 512);
    regs.write32(HPRT0, PRT_PWR);
    regs.write32(HPRT0, PRT_PWR | PRT_RST);
    delay.delay_ms(reset_ms);
    regs.write32(HPRT0, PRT_PWR);
    (regs, delay)
}

fn attached(speed: Speed) -> Dwc2Model {
    let model = Dwc2Model::new();
    model.attach(Box::new(Loopback::new(speed)));
    model
}

/// GET_DESCRIPTOR(device, 8) as a SETUP stage on channel 0 at address 0.
fn setup_stage(regs: &SimRegs, bus: u32) {
    regs.write32(HCTSIZ0, (3 << 29) | (1 << 19) | 8);
    regs.write32(HCDMA0, bus);
    regs.write32(HCCHAR0, (1 << 31) | 64);
}

#[test]
fn port_enables_after_a_long_enough_reset_and_hprt0_bits_behave() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let hprt = regs.read32(HPRT0);
    assert_eq!(hprt & 1, 1, "connected");
    assert_ne!(hprt & PRT_ENA, 0, "enabled");
    assert_eq!((hprt >> 17) & 3, 0, "high speed");
    assert_ne!(regs.read32(GINTSTS) & (1 << 24), 0, "PRTINT");
    // Write-1-to-clear: CONNDET and ENACHG go, ENA stays when written as 0.
    regs.write32(HPRT0, PRT_PWR | PRT_CONNDET | PRT_ENACHG);
    let hprt = regs.read32(HPRT0);
    assert_eq!(hprt & (PRT_CONNDET | PRT_ENACHG), 0);
    assert_ne!(hprt & PRT_ENA, 0);
    assert_eq!(regs.read32(GINTSTS) & (1 << 24), 0, "PRTINT follows HPRT0");
    // The classic read-modify-write bug: writing back ENA=1 disables the port.
    regs.write32(HPRT0, regs.read32(HPRT0));
    assert_eq!(regs.read32(HPRT0) & PRT_ENA, 0);
}

#[test]
fn short_port_reset_is_not_a_reset() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 2);
    assert_eq!(regs.read32(HPRT0) & PRT_ENA, 0);
    assert_eq!(model.violations().len(), 1, "{:?}", model.violations());
}

#[test]
fn host_registers_need_host_mode_and_soft_reset_self_clears() {
    let model = attached(Speed::High);
    let regs = model.regs();
    let mut delay = model.delay();
    regs.write32(HPRT0, PRT_PWR);
    assert_eq!(model.violations().len(), 1, "HPRT0 written in device mode");
    regs.write32(GRSTCTL, 1);
    assert_eq!(regs.read32(GRSTCTL) & 1, 1, "reset in progress");
    regs.write32(GAHBCFG, 1 << 5);
    assert_eq!(model.violations().len(), 2, "write during soft reset");
    delay.delay_us(10);
    assert_eq!(regs.read32(GRSTCTL), 1 << 31, "done and AHB idle");
}

#[test]
fn dma_outside_mapped_buffers_is_an_ahb_error() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    setup_stage(&regs, 0x1000);
    assert_eq!(regs.read32(HCINT0) & (CHHLTD | AHBERR), CHHLTD | AHBERR);
    assert_eq!(model.violations().len(), 1, "{:?}", model.violations());
}

#[test]
fn unaligned_dma_is_an_ahb_error() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let mut dma = model.dma();
    let mut buf = [0u64; 4];
    let p = buf.as_mut_ptr().cast::<u8>();
    let bus = dma.map(p, 32, DmaDirection::ToDevice).unwrap();
    setup_stage(&regs, bus + 2);
    assert_eq!(regs.read32(HCINT0) & (CHHLTD | AHBERR), CHHLTD | AHBERR);
    assert!(
        model.violations()[0].contains("aligned"),
        "{:?}",
        model.violations()
    );
    dma.unmap(p, 32, DmaDirection::ToDevice);
}

#[test]
fn a_well_formed_setup_stage_completes() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let mut dma = model.dma();
    let mut buf = [0x80u8, 6, 0, 1, 0, 0, 8, 0];
    let p = buf.as_mut_ptr();
    let bus = dma.map(p, 8, DmaDirection::ToDevice).unwrap();
    setup_stage(&regs, bus);
    assert_eq!(
        regs.read32(HCINT0) & (CHHLTD | XFERCOMPL),
        CHHLTD | XFERCOMPL
    );
    let tsiz = regs.read32(HCTSIZ0);
    assert_eq!(tsiz & 0x7ffff, 0, "all bytes sent");
    assert_eq!((tsiz >> 19) & 0x3ff, 0, "all packets sent");
    assert_eq!((tsiz >> 29) & 3, 2, "DATA1 next");
    assert_eq!(regs.read32(HCDMA0), bus + 8);
    // W1C.
    regs.write32(HCINT0, CHHLTD);
    assert_eq!(regs.read32(HCINT0) & CHHLTD, 0);
    dma.unmap(p, 8, DmaDirection::ToDevice);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}

#[test]
fn bad_channel_programming_is_refused() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let mut dma = model.dma();
    let mut buf = Lines([0u8; 1024]);
    let p = buf.0.as_mut_ptr();
    let bus = dma.map(p, 1024, DmaDirection::FromDevice).unwrap();
    let cases = [
        // OUT, 100 bytes in 2 packets of 64: the packet count must be 2... give 3.
        ((3 << 19) | 100, 64u32, "packet count"),
        // IN of 100 bytes: not whole packets.
        ((2 << 29) | (2 << 19) | 100, (1 << 15) | 64, "transfer size"),
        // SETUP PID on an IN channel.
        ((3 << 29) | (1 << 19) | 64, (1 << 15) | 64, "SETUP"),
        // High-speed bulk with a 64-byte max packet size.
        ((1 << 19) | 64, (2 << 18) | (1 << 11) | 64, "max packet"),
        // Zero packets.
        (64, 64, "packet count 0"),
    ];
    for (i, (tsiz, chars, why)) in cases.into_iter().enumerate() {
        regs.write32(HCINT0, u32::MAX);
        regs.write32(HCTSIZ0, tsiz);
        regs.write32(HCDMA0, bus);
        regs.write32(HCCHAR0, (1 << 31) | chars);
        assert_eq!(
            regs.read32(HCINT0) & (CHHLTD | XACTERR),
            CHHLTD | XACTERR,
            "{why}"
        );
        let v = model.violations();
        assert_eq!(v.len(), i + 1, "{why}: {v:?}");
        assert!(v[i].contains(why), "{why}: {}", v[i]);
    }
    dma.unmap(p, 1024, DmaDirection::FromDevice);
}

#[test]
fn controller_writes_into_a_to_device_buffer_are_refused() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let mut dma = model.dma();
    let mut setup = [0x80u8, 6, 0, 1, 0, 0, 8, 0];
    let sp = setup.as_mut_ptr();
    let bus = dma.map(sp, 8, DmaDirection::ToDevice).unwrap();
    setup_stage(&regs, bus);
    dma.unmap(sp, 8, DmaDirection::ToDevice);
    let mut data = [0u32; 16];
    let dp = data.as_mut_ptr().cast::<u8>();
    let bus = dma.map(dp, 64, DmaDirection::ToDevice).unwrap();
    regs.write32(HCINT0, u32::MAX);
    regs.write32(HCTSIZ0, (2 << 29) | (1 << 19) | 64);
    regs.write32(HCDMA0, bus);
    regs.write32(HCCHAR0, (1 << 31) | (1 << 15) | 64);
    assert_eq!(regs.read32(HCINT0) & (CHHLTD | AHBERR), CHHLTD | AHBERR);
    assert!(model.violations()[0].contains("mapped for the device to read"));
    assert_eq!(data, [0; 16], "memory untouched");
    dma.unmap(dp, 64, DmaDirection::ToDevice);
}

#[test]
fn taking_a_buffer_back_from_a_running_channel_is_caught() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let mut dma = model.dma();
    // A control IN that NAKs forever keeps the channel running.
    model.inject(k230_hal::sim::dwc2_model::Fault::Naks(u32::MAX));
    let mut data = Lines([0u8; 64]);
    let dp = data.0.as_mut_ptr();
    let bus = dma.map(dp, 64, DmaDirection::FromDevice).unwrap();
    regs.write32(HCTSIZ0, (2 << 29) | (1 << 19) | 64);
    regs.write32(HCDMA0, bus);
    regs.write32(HCCHAR0, (1 << 31) | (1 << 15) | 64);
    assert_eq!(regs.read32(HCINT0) & CHHLTD, 0, "still running, NAKed");
    assert_ne!(regs.read32(HCCHAR0) & (1 << 31), 0);
    dma.unmap(dp, 64, DmaDirection::FromDevice);
    assert!(
        model.violations()[0].contains("taken back"),
        "{:?}",
        model.violations()
    );
    // Halting: CHDIS with CHENA.
    regs.write32(HCCHAR0, (1 << 31) | (1 << 30) | (1 << 15) | 64);
    assert_ne!(regs.read32(HCINT0) & CHHLTD, 0);
}

#[test]
fn fifos_must_leave_room_for_the_channels_dma_state() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up_fifo_only(&model, 50);
    let mut dma = model.dma();
    let mut buf = [0x80u8, 6, 0, 1, 0, 0, 8, 0];
    let p = buf.as_mut_ptr();
    let bus = dma.map(p, 8, DmaDirection::ToDevice).unwrap();
    setup_stage(&regs, bus);
    assert_eq!(regs.read32(HCINT0) & (CHHLTD | XACTERR), CHHLTD | XACTERR);
    assert!(
        model.violations()[0].contains("EP info"),
        "{:?}",
        model.violations()
    );
    dma.unmap(p, 8, DmaDirection::ToDevice);
}

#[test]
fn random_register_traffic_never_panics_the_model() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(7);
    let model = attached(Speed::Full);
    let (regs, mut delay) = bring_up(&model, 50);
    let mut dma = model.dma();
    let mut mem = Box::new(Lines([0u8; 4096]));
    let p = mem.0.as_mut_ptr();
    let bus = dma.map(p, 4096, DmaDirection::FromDevice).unwrap();
    for _ in 0..20_000 {
        let offset = match rng.gen_range(0..4) {
            0 => 0x500 + 4 * rng.gen_range(0..64),
            1 => 0x440,
            2 => 4 * rng.gen_range(0..0x40),
            _ => 4 * rng.gen_range(0..0x400),
        };
        let value = match rng.gen_range(0..3) {
            0 if offset % 0x20 == 0x14 => bus + 4 * rng.gen_range(0..1024),
            1 => rng.gen::<u32>() & 0x8fff_ffff,
            _ => rng.gen(),
        };
        if rng.gen_bool(0.5) {
            regs.write32(offset, value);
        } else {
            let _ = regs.read32(offset);
        }
        if rng.gen_bool(0.01) {
            delay.delay_us(rng.gen_range(0..20_000));
        }
    }
    // Some channels may still run into the buffer: halt them before it goes away.
    for n in 0..8 {
        regs.write32(0x500 + 0x20 * n, (1 << 31) | (1 << 30));
    }
    dma.unmap(p, 4096, DmaDirection::FromDevice);
    assert!(
        !model.violations().is_empty(),
        "random programming breaks rules"
    );
}

#[test]
fn split_transactions_and_flushes_during_transfers_are_refused() {
    let model = attached(Speed::High);
    let (regs, _) = bring_up(&model, 50);
    let mut dma = model.dma();
    let mut buf = [0x80u8, 6, 0, 1, 0, 0, 8, 0];
    let p = buf.as_mut_ptr();
    let bus = dma.map(p, 8, DmaDirection::ToDevice).unwrap();
    regs.write32(0x504, 1 << 31);
    setup_stage(&regs, bus);
    assert_eq!(regs.read32(HCINT0) & (CHHLTD | XACTERR), CHHLTD | XACTERR);
    assert!(
        model.violations()[0].contains("split"),
        "{:?}",
        model.violations()
    );
    dma.unmap(p, 8, DmaDirection::ToDevice);

    // A control IN that NAKs keeps channel 0 running; flushing the RX FIFO now is a bug.
    regs.write32(0x504, 0);
    model.inject(k230_hal::sim::dwc2_model::Fault::Naks(u32::MAX));
    let mut data = Lines([0u8; 64]);
    let dp = data.0.as_mut_ptr();
    let bus = dma.map(dp, 64, DmaDirection::FromDevice).unwrap();
    regs.write32(HCTSIZ0, (2 << 29) | (1 << 19) | 64);
    regs.write32(HCDMA0, bus);
    regs.write32(HCCHAR0, (1 << 31) | (1 << 15) | 64);
    regs.write32(GRSTCTL, 1 << 4);
    assert!(
        model.violations()[1].contains("flush"),
        "{:?}",
        model.violations()
    );
    regs.write32(HCCHAR0, (1 << 31) | (1 << 30) | (1 << 15) | 64);
    dma.unmap(dp, 64, DmaDirection::FromDevice);
}

#[test]
fn bus_addresses_wrap_inside_the_window_around_buffers_still_mapped() {
    let model = Dwc2Model::new();
    let mut dma = model.dma();
    let mut big = Box::new(Lines([0u8; 16 * 1024]));
    let mut page = Box::new(Lines([0u8; 4096]));
    // A one-line buffer takes a bus page as a 1500-byte frame does, and costs the cache model
    // less to clean two million times.
    let mut small = vec![0u8; 64];
    let mut ranges = Vec::new();
    for b in [&mut big.0[..], &mut page.0[..]] {
        let bus = dma
            .map(b.as_mut_ptr(), b.len(), DmaDirection::FromDevice)
            .unwrap();
        ranges.push((u64::from(bus), u64::from(bus) + b.len() as u64));
    }
    // Far more than 4 GiB of address space handed out while those two stay mapped.
    let mut last = 0;
    let mut wrapped = 0;
    for _ in 0..2_000_000 {
        let bus = dma
            .map(small.as_mut_ptr(), small.len(), DmaDirection::ToDevice)
            .unwrap();
        dma.unmap(small.as_mut_ptr(), small.len(), DmaDirection::ToDevice);
        let (start, end) = (u64::from(bus), u64::from(bus) + small.len() as u64);
        assert!(end <= 1 << 32, "{bus:#x} runs past the 32-bit bus");
        assert!(
            ranges.iter().all(|&(s, e)| end <= s || e <= start),
            "{bus:#x} overlaps a mapped buffer"
        );
        if start < last {
            wrapped += 1;
        }
        last = start;
    }
    assert!(wrapped >= 2, "the window wrapped {wrapped} times");
    assert_eq!(model.mapped_buffers(), 2);
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}
