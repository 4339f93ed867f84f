//! Two wire ends connected in-process.

use super::Wire;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// One direction: a bounded frame queue.
#[derive(Debug)]
struct Channel {
    frames: Mutex<VecDeque<Vec<u8>>>,
    capacity: usize,
}

/// One end of a [`pair`].
#[derive(Debug)]
pub struct PairEnd {
    outbound: Arc<Channel>,
    inbound: Arc<Channel>,
}

/// Two connected ends; each direction holds up to `capacity` frames in flight, beyond which
/// `send` fails with `WouldBlock` (a full link backs up instead of dropping).
pub fn pair(capacity: usize) -> (PairEnd, PairEnd) {
    let a_to_b = Arc::new(Channel {
        frames: Mutex::new(VecDeque::new()),
        capacity,
    });
    let b_to_a = Arc::new(Channel {
        frames: Mutex::new(VecDeque::new()),
        capacity,
    });
    (
        PairEnd {
            outbound: a_to_b.clone(),
            inbound: b_to_a.clone(),
        },
        PairEnd {
            outbound: b_to_a,
            inbound: a_to_b,
        },
    )
}

impl Wire for PairEnd {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let mut q = self
            .outbound
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if q.len() >= self.outbound.capacity {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        q.push_back(frame.to_vec());
        Ok(())
    }

    fn recv_into(&mut self, into: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let frame = self
            .inbound
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        Ok(frame.map(|f| {
            into.extend_from_slice(&f);
            f.len()
        }))
    }
}
