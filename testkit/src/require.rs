//! Tests that need what a machine may lack: they skip with a message (`<test>: SKIPPED (why)`),
//! or fail when the need's `K230_REQUIRE_*` variable is `1` (set by CI, where nothing may be
//! skipped).

/// What a test may need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Root (network namespaces, TAP devices, QEMU's TAP networking).
    Root,
    /// The pinned MicroPython library (or its source distribution).
    MicroPython,
    /// Cross compilers, QEMU user mode, CMake.
    BuildTools,
}

impl Need {
    /// The variable that makes the need's absence a failure.
    pub const fn env(self) -> &'static str {
        match self {
            Need::Root => "K230_REQUIRE_ROOT_TESTS",
            Need::MicroPython => "K230_REQUIRE_UPY",
            Need::BuildTools => "K230_REQUIRE_BUILD_TOOLS",
        }
    }

    /// Whether the need's absence fails tests here.
    pub fn required(self) -> bool {
        std::env::var(self.env()).as_deref() == Ok("1")
    }
}

/// `test` cannot run because `why` (what `need` lacks): panics when `need` is required, else
/// prints the skip.
pub fn skip(need: Need, test: &str, why: &str) {
    report(need, need.required(), test, why);
}

/// The skip, or the failure when `required`.
fn report(need: Need, required: bool, test: &str, why: &str) {
    if required {
        panic!("{test}: {why} (and {}=1)", need.env());
    }
    println!("{test}: SKIPPED ({why})");
}

/// Whether the process runs as root; when not, [`skip`]s `test`.
pub fn have_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(Need::Root, test, "needs root");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_need_has_its_variable() {
        assert_eq!(Need::Root.env(), "K230_REQUIRE_ROOT_TESTS");
        assert_eq!(Need::MicroPython.env(), "K230_REQUIRE_UPY");
        assert_eq!(Need::BuildTools.env(), "K230_REQUIRE_BUILD_TOOLS");
    }

    #[test]
    fn a_missing_need_skips_unless_required_then_fails_naming_the_variable() {
        report(Need::Root, false, "t", "needs root");
        let failed = std::panic::catch_unwind(|| report(Need::Root, true, "t", "needs root"));
        let message = failed.expect_err("required: a failure");
        let message = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert_eq!(message, "t: needs root (and K230_REQUIRE_ROOT_TESTS=1)");
    }
}
