//! Shared helpers of the benchmark harnesses.
