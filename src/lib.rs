//! Structured concurrency for async Rust.
#![forbid(unsafe_code)]

mod sync;
