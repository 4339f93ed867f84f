//! Register access: volatile MMIO on the target, a model on the host.
