//! The workspace's test kit, written once for every crate's tests (and `cargo xtask sim` /
//! `bench`, which build the same rigs):
//!
//! - [`require`]: the one rule for tests that need what a machine may lack (root, the
//!   MicroPython library, cross build tools): skip with a message, or fail when the matching
//!   `K230_REQUIRE_*` variable is `1` (CI sets them all);
//! - [`netns`]: network namespaces, the links into them (TAP devices, addresses) and peers run
//!   inside them, created with unique names and removed on drop, even when the test fails.
//!
//! It depends on nothing of the workspace, so that every crate, `k230-hal` included, can use it
//! as a dev-dependency.

pub mod netns;
pub mod require;
