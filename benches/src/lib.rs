//! Shared helpers of the benchmark harnesses: a counting allocator, an
//! interleaving sampler, the report, and one module per workload of the
//! summary bench (`cargo bench -p taskscope-benches --bench summary`).
//!
//! Every figure the summary asserts against a target is a ratio between two
//! contenders measured in the same process, round after round, because these
//! machines drift by 30-50% between runs.

pub mod alloc;
pub mod host;
pub mod measure;
pub mod report;
pub mod util;
pub mod workloads;
