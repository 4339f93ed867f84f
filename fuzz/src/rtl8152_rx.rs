//! The RTL8152 RX aggregate parser (`k230_hal::eth::rtl8152::rx`) on arbitrary bulk-IN buffers.
//!
//! Invariants: every frame range lies inside the transfer, after its descriptor and past the
//! previous item; frame lengths are within the Ethernet limits; an error ends the aggregate;
//! the walk ends after at most one item per descriptor that fits; [`RxQueue`] hands out the
//! frames the cursor finds, in order, but those whose checksums the descriptor or the driver
//! finds wrong, and counts both in its [`Counters`].

use k230_hal::eth::driver::Counters;
use k230_hal::eth::rtl8152::rx::{
    Aggregate, RxItem, RxQueue, CRC_LEN, MAX_FRAME, MIN_LEN, RX_BUF_SIZE, RX_DESC_LEN,
};

/// Runs the parser over `data` as one bulk-IN transfer.
pub fn run(data: &[u8]) {
    let data = &data[..data.len().min(RX_BUF_SIZE)];
    let most = data.len() / RX_DESC_LEN + 1;
    let mut agg = Aggregate::new(data, 0);
    let mut frames = Vec::new();
    let mut oversize = 0u64;
    let mut errors = 0u64;
    let mut items = 0;
    let mut before = 0;
    while let Some(item) = agg.next() {
        items += 1;
        assert!(
            items <= most,
            "more items than descriptors fit in {} bytes",
            data.len()
        );
        match item {
            Ok(RxItem::Frame(r)) => {
                assert!(
                    r.start >= before + RX_DESC_LEN && r.end <= data.len(),
                    "{r:?}"
                );
                assert!((MIN_LEN - CRC_LEN..=MAX_FRAME).contains(&r.len()), "{r:?}");
                frames.push(r);
            }
            Ok(RxItem::Oversize(n)) => {
                assert!(n > MAX_FRAME);
                oversize += 1;
            }
            Err(_) => {
                errors += 1;
                assert_eq!(agg.position(), data.len(), "an error ends the aggregate");
            }
        }
        assert!(agg.position() > before, "the cursor must advance");
        before = agg.position();
    }
    assert!(errors <= 1);

    let mut queue = Box::new(RxQueue::new());
    queue.buf[..data.len()].copy_from_slice(data);
    queue.load(data.len());
    let mut stats = Counters::default();
    let mut got = Vec::new();
    while let Some(r) = queue.next_frame(&mut stats) {
        got.push(r);
        assert!(got.len() <= frames.len());
    }
    assert!(queue.is_empty());
    let mut rest = frames.iter();
    for r in &got {
        assert!(
            rest.any(|f| f == r),
            "the queue hands out what the cursor finds, in order"
        );
    }
    assert_eq!(
        got.len() as u64 + stats.rx_bad_checksum,
        frames.len() as u64,
        "every frame found is handed out or counted as a bad checksum"
    );
    assert_eq!(stats.rx_frames, got.len() as u64);
    assert_eq!(
        stats.rx_bytes,
        got.iter().map(|r| r.len() as u64).sum::<u64>()
    );
    assert_eq!((stats.rx_dropped, stats.rx_malformed), (oversize, errors));
}
