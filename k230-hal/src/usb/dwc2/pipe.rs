//! Split-phase bulk and interrupt transfers: one channel and one DMA buffer per pipe.

use core::task::Poll;

use super::channel::{Endpoint, Halt, EPTYPE_BULK, EPTYPE_INTERRUPT, PID_DATA0};
use super::regs::hcint;
use super::{mapped_len, Dwc2Host, MAX_XACT_ERRORS, PIPES, PIPE_BUFFER};
use crate::reg::dma::{Dma, DmaDirection};
use crate::reg::RegisterBlock;
use crate::usb::{
    clear_halt_request, DeviceAddress, Direction, Pipe, SetupPacket, TransferType, UsbError,
    UsbHost,
};
use embedded_hal::delay::DelayNs;

/// A transfer the controller owns, run in pieces the core's counters hold.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// Bytes of the whole transfer.
    total: usize,
    /// Bytes moved by finished pieces.
    done: usize,
    /// HCTSIZ transfer size of the running piece.
    size: usize,
    /// Bus address of the buffer.
    bus: u32,
    /// Length of the mapped buffer.
    map_len: usize,
    /// Transaction errors in a row.
    errors: u8,
    /// An OUT transfer of whole packets still owes a zero-length packet.
    zlp: bool,
}

/// What a pipe is doing.
#[derive(Clone, Copy, Debug, Default)]
enum PipeState {
    #[default]
    Idle,
    Running(InFlight),
}

/// A pipe bound to a channel (channel = slot index + 1).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PipeSlot {
    pipe: Option<Pipe>,
    /// HCTSIZ PID the next transfer starts with.
    toggle: u32,
    state: PipeState,
}

/// Outcome of looking at a running transfer.
enum Step {
    Running,
    /// Done: bytes moved.
    Done(usize),
    /// Interrupt endpoint NAKed: nothing this time.
    Nothing,
    Failed(UsbError),
}

fn same_endpoint(a: &Pipe, b: &Pipe) -> bool {
    a.device == b.device && a.endpoint == b.endpoint && a.direction == b.direction
}

impl<R: RegisterBlock, D: Dma, T: DelayNs> Dwc2Host<R, D, T> {
    /// The slot serving `pipe`, binding a free one on first use.
    fn slot(&mut self, pipe: &Pipe) -> Result<usize, UsbError> {
        if pipe.endpoint == 0 || pipe.endpoint > 15 || pipe.max_packet_size == 0 {
            return Err(UsbError::InvalidState);
        }
        if let Some(i) = self
            .pipes
            .iter()
            .position(|s| s.pipe.as_ref().is_some_and(|p| same_endpoint(p, pipe)))
        {
            return Ok(i);
        }
        let usable = PIPES.min(self.channels.saturating_sub(1));
        let i = self.pipes[..usable]
            .iter()
            .position(|s| s.pipe.is_none())
            .ok_or(UsbError::Busy)?;
        self.pipes[i] = PipeSlot {
            pipe: Some(*pipe),
            toggle: PID_DATA0,
            state: PipeState::Idle,
        };
        Ok(i)
    }

    fn pipe_endpoint(&self, pipe: &Pipe) -> Endpoint {
        Endpoint {
            address: pipe.device.get(),
            number: pipe.endpoint,
            is_in: pipe.direction == Direction::In,
            ep_type: match pipe.kind {
                TransferType::Bulk => EPTYPE_BULK,
                TransferType::Interrupt => EPTYPE_INTERRUPT,
            },
            mps: pipe.max_packet_size,
            speed: pipe.speed,
        }
    }

    /// Maps slot `i`'s buffer and starts `size` bytes on its channel.
    fn start_pipe(&mut self, i: usize, pipe: &Pipe, size: usize) -> Result<InFlight, UsbError> {
        let ep = self.pipe_endpoint(pipe);
        let limit = ep.chunk_limit(self.max_xfer, self.max_packets);
        if size > PIPE_BUFFER || limit == 0 {
            return Err(UsbError::BadLength);
        }
        let dir = if ep.is_in {
            DmaDirection::FromDevice
        } else {
            DmaDirection::ToDevice
        };
        let ptr = self.mem.pipes[i].0.as_mut_ptr();
        let map_len = mapped_len(size, dir);
        let bus = self.map_buffer(ptr, map_len, dir)?;
        let toggle = self.pipes[i].toggle;
        let piece = size.min(limit);
        self.start_channel(i + 1, &ep, piece, toggle, bus);
        Ok(InFlight {
            total: size,
            done: 0,
            size: piece,
            bus,
            map_len,
            errors: 0,
            zlp: false,
        })
    }

    /// Ends slot `i`'s transfer: its halt is acknowledged (so the interrupt line drops) and
    /// its buffer taken back.
    fn release_pipe(&mut self, i: usize, run: &InFlight, is_in: bool) {
        self.regs.write32(hcint(i + 1), u32::MAX);
        let dir = if is_in {
            DmaDirection::FromDevice
        } else {
            DmaDirection::ToDevice
        };
        let ptr = self.mem.pipes[i].0.as_mut_ptr();
        self.dma.unmap(ptr, run.map_len, dir);
    }

    /// Looks at slot `i`'s running transfer; on its end unmaps the buffer and records the toggle.
    fn step(&mut self, i: usize, run: &mut InFlight, is_in: bool) -> Step {
        let ch = i + 1;
        let halt = match self.channel_halt(ch) {
            None if self.connected() => return Step::Running,
            None => {
                self.halt_channel(ch);
                self.release_pipe(i, run, is_in);
                return Step::Failed(UsbError::Disconnected);
            }
            Some(h) => h,
        };
        match halt {
            Halt::XactErr if self.connected() && run.errors < MAX_XACT_ERRORS => {
                run.errors += 1;
                log::debug!(
                    "dwc2: pipe channel {ch} transaction error {}, retrying",
                    run.errors
                );
                self.resume_channel(ch);
                return Step::Running;
            }
            Halt::Nyet => {
                run.errors = 0;
                self.resume_with_ping(ch);
                return Step::Running;
            }
            Halt::Complete => {
                let (moved, pid) = self.channel_progress(ch, run.size);
                self.pipes[i].toggle = pid;
                run.done += moved;
                if moved == run.size && run.done < run.total {
                    if let Some(pipe) = self.pipes[i].pipe {
                        let ep = self.pipe_endpoint(&pipe);
                        let limit = ep.chunk_limit(self.max_xfer, self.max_packets);
                        run.size = (run.total - run.done).min(limit);
                        run.errors = 0;
                        let bus = run.bus + run.done as u32;
                        self.start_channel(ch, &ep, run.size, pid, bus);
                        return Step::Running;
                    }
                }
                self.release_pipe(i, run, is_in);
                return Step::Done(run.done);
            }
            Halt::Nak => {
                self.release_pipe(i, run, is_in);
                return Step::Nothing;
            }
            _ => {}
        }
        self.release_pipe(i, run, is_in);
        let error = match halt {
            _ if !self.connected() => UsbError::Disconnected,
            Halt::Failed(e) => e,
            _ => UsbError::Transaction,
        };
        if error == UsbError::Stall {
            // The device resets the toggle when the halt is cleared.
            self.pipes[i].toggle = PID_DATA0;
        }
        log::warn!("dwc2: pipe channel {ch} failed: {error:?}");
        Step::Failed(error)
    }

    /// The device is gone: halts every running pipe transfer, takes the buffers back and
    /// forgets the endpoints (a new device gets fresh pipes and toggles).
    pub(super) fn abort_pipes(&mut self) {
        for i in 0..PIPES {
            let slot = self.pipes[i];
            if let (PipeState::Running(run), Some(pipe)) = (slot.state, slot.pipe) {
                self.halt_channel(i + 1);
                self.release_pipe(i, &run, pipe.direction == Direction::In);
            }
            self.pipes[i] = PipeSlot::default();
        }
    }

    fn check_pipe(&self, pipe: &Pipe, direction: Direction) -> Result<(), UsbError> {
        if pipe.direction != direction {
            return Err(UsbError::InvalidState);
        }
        let port = self.port()?;
        if pipe.speed != port.speed {
            return Err(UsbError::InvalidState);
        }
        Ok(())
    }

    fn poll_in_impl(&mut self, pipe: &Pipe, buf: &mut [u8]) -> Poll<Result<usize, UsbError>> {
        if let Err(e) = self.check_pipe(pipe, Direction::In) {
            return Poll::Ready(Err(e));
        }
        let i = match self.slot(pipe) {
            Ok(i) => i,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let mut run = match self.pipes[i].state {
            PipeState::Running(run) => run,
            PipeState::Idle => {
                if buf.is_empty() {
                    return Poll::Ready(Err(UsbError::BadLength));
                }
                let size = buf
                    .len()
                    .next_multiple_of(usize::from(pipe.max_packet_size));
                match self.start_pipe(i, pipe, size) {
                    Ok(run) => run,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        };
        let step = self.step(i, &mut run, true);
        self.pipes[i].state = match step {
            Step::Running => PipeState::Running(run),
            _ => PipeState::Idle,
        };
        match step {
            Step::Running | Step::Nothing => Poll::Pending,
            Step::Done(n) if n > buf.len() => Poll::Ready(Err(UsbError::Babble)),
            Step::Done(n) => {
                buf[..n].copy_from_slice(&self.mem.pipes[i].0[..n]);
                Poll::Ready(Ok(n))
            }
            Step::Failed(e) => Poll::Ready(Err(e)),
        }
    }

    fn submit_out_impl(&mut self, pipe: &Pipe, data: &[u8]) -> Result<(), UsbError> {
        self.check_pipe(pipe, Direction::Out)?;
        let i = self.slot(pipe)?;
        if let PipeState::Running(_) = self.pipes[i].state {
            return Err(UsbError::Busy);
        }
        if data.len() > PIPE_BUFFER {
            return Err(UsbError::BadLength);
        }
        self.mem.pipes[i].0[..data.len()].copy_from_slice(data);
        let mut run = self.start_pipe(i, pipe, data.len())?;
        // A transfer of whole packets needs a zero-length packet to end it.
        run.zlp = !data.is_empty() && data.len() % usize::from(pipe.max_packet_size) == 0;
        self.pipes[i].state = PipeState::Running(run);
        Ok(())
    }

    fn poll_out_impl(&mut self, pipe: &Pipe) -> Poll<Result<(), UsbError>> {
        if let Err(e) = self.check_pipe(pipe, Direction::Out) {
            return Poll::Ready(Err(e));
        }
        let Some(i) = self
            .pipes
            .iter()
            .position(|s| s.pipe.as_ref().is_some_and(|p| same_endpoint(p, pipe)))
        else {
            return Poll::Ready(Ok(()));
        };
        let mut run = match self.pipes[i].state {
            PipeState::Idle => return Poll::Ready(Ok(())),
            PipeState::Running(run) => run,
        };
        let (state, result) = match self.step(i, &mut run, false) {
            Step::Running => (PipeState::Running(run), Poll::Pending),
            Step::Done(_) if run.zlp => match self.start_pipe(i, pipe, 0) {
                Ok(zlp) => (PipeState::Running(zlp), Poll::Pending),
                Err(e) => (PipeState::Idle, Poll::Ready(Err(e))),
            },
            Step::Done(_) | Step::Nothing => (PipeState::Idle, Poll::Ready(Ok(()))),
            Step::Failed(e) => (PipeState::Idle, Poll::Ready(Err(e))),
        };
        self.pipes[i].state = state;
        result
    }

    fn clear_halt_impl(&mut self, pipe: &Pipe) -> Result<(), UsbError> {
        self.check_pipe(pipe, pipe.direction)?;
        let slot = self
            .pipes
            .iter()
            .position(|s| s.pipe.as_ref().is_some_and(|p| same_endpoint(p, pipe)));
        if let Some(i) = slot {
            if let PipeState::Running(_) = self.pipes[i].state {
                return Err(UsbError::Busy);
            }
        }
        self.control_out_impl(pipe.device, clear_halt_request(pipe), &[])?;
        if let Some(i) = slot {
            self.pipes[i].toggle = PID_DATA0;
        }
        log::info!(
            "dwc2: endpoint {} {:?} halt cleared",
            pipe.endpoint,
            pipe.direction
        );
        Ok(())
    }
}

impl<R: RegisterBlock, D: Dma, T: DelayNs> UsbHost for Dwc2Host<R, D, T> {
    fn control_in(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &mut [u8],
    ) -> Result<usize, UsbError> {
        self.control_in_impl(device, setup, data)
    }

    fn control_out(
        &mut self,
        device: DeviceAddress,
        setup: SetupPacket,
        data: &[u8],
    ) -> Result<(), UsbError> {
        self.control_out_impl(device, setup, data)
    }

    fn poll_in(&mut self, pipe: &Pipe, buf: &mut [u8]) -> Poll<Result<usize, UsbError>> {
        self.poll_in_impl(pipe, buf)
    }

    fn submit_out(&mut self, pipe: &Pipe, data: &[u8]) -> Result<(), UsbError> {
        self.submit_out_impl(pipe, data)
    }

    fn poll_out(&mut self, pipe: &Pipe) -> Poll<Result<(), UsbError>> {
        self.poll_out_impl(pipe)
    }

    fn clear_halt(&mut self, pipe: Pipe) -> Result<(), UsbError> {
        self.clear_halt_impl(&pipe)
    }
}
