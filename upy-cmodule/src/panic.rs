//! The panic handler of the bare-metal library: the message goes to the firmware's fatal-error
//! hook (`k230net_panic`, which ends in `nlr_jump_fail`); nothing unwinds.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::hooks;
use crate::message::Message;

/// Longest panic message passed on.
const MESSAGE_BYTES: usize = 192;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut message = Message::<MESSAGE_BYTES>::new();
    // A message that does not fit is cut; writing to `Message` never fails.
    let _ = write!(message, "{info}");
    hooks::panic(message.as_bytes())
}
