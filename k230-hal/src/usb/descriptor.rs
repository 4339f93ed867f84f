//! Zero-copy views of USB standard and class descriptors.
