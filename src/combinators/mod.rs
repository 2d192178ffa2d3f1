//! Combinators that run several futures and finish all of them before they
//! return, each as a branch with its own child token. See
//! design/combinators.md.

mod array;
mod branch;
mod dynamic;
mod engine;
mod join;
mod join_all;
mod join_array;
mod macros;
mod once;
mod race;
mod race_all;
mod race_array;
mod race_ok;
mod select;
mod try_join;
mod try_join_all;
mod try_join_array;
mod wake_slots;

pub use array::ArrayForm;
pub use join::{Join, join};
pub use join_all::{JoinAll, join_all};
pub use join_array::{JoinArray, join_array};
pub use race::{Race, race};
pub use race_all::{RaceAll, race_all};
pub use race_array::{RaceArray, race_array};
pub use race_ok::{RaceOk, race_ok};
pub use select::{Select, select};
pub use try_join::{TryJoin, try_join};
pub use try_join_all::{TryJoinAll, try_join_all};
pub use try_join_array::{TryJoinArray, try_join_array};

/// What the exported macros expand to; not part of the API.
#[doc(hidden)]
pub mod private {
    pub use super::array::ArrayKind;
    pub use super::branch::{
        Branch, BranchDyn, BranchParent, Step, err_if_won, is_err, is_ok, never, ok, output,
    };
    pub use super::engine::{Engine, Mode, poll_fixed};
    pub use super::join_array::JoinKind;
    pub use super::once::Once;
    pub use super::race_array::RaceKind;
    pub use super::try_join_array::TryJoinKind;
    pub use crate::cancel::branch::BranchToken;
}
