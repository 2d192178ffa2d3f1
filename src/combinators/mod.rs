//! Combinators that run several futures and finish all of them before they
//! return, each as a branch with its own child token. See
//! design/combinators.md.

mod branch;
mod dynamic;
mod engine;
mod join;
mod join_all;
mod macros;
mod race;
mod race_all;
mod race_ok;
mod select;
#[cfg(test)]
mod test_support;
mod try_join;
mod try_join_all;
mod wake_slots;

pub use join::{Join, join};
pub use join_all::{JoinAll, join_all};
pub use race::{Race, race};
pub use race_all::{RaceAll, race_all};
pub use race_ok::{RaceOk, race_ok};
pub use select::{Select, select};
pub use try_join::{TryJoin, try_join};
pub use try_join_all::{TryJoinAll, try_join_all};

/// What the exported macros expand to; not part of the API.
#[doc(hidden)]
pub mod private {
    pub use super::branch::{
        Branch, BranchDyn, BranchParent, Step, err_if_won, is_err, is_ok, never, ok, output,
    };
    pub use super::engine::{Engine, Mode, poll_fixed};
    pub use crate::cancel::branch::BranchToken;
}
