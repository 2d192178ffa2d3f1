//! One module per workload of the issue; each measures its contenders and
//! adds its lines to the report.

pub mod cancel;
pub mod combinators;
pub mod overhead;
pub mod parallel;
pub mod pipeline;
pub mod spawn_join;
