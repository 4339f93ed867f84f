//! Shared helpers for the workspace integration tests (network namespaces, TAP devices, peers).
pub mod netns;
