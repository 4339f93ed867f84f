//! Shared helpers for the workspace integration tests (network namespaces, TAP devices, peers,
//! hand-made frames).
pub mod netns;
pub mod rawframe;
