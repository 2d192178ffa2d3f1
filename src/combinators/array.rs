//! The future behind the array forms (`join_array`, `race_array`,
//! `try_join_array`): the branches inline, one per element, so that nothing
//! is allocated.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::branch::{Branch, BranchDyn};
use super::engine::{Engine, Mode, poll_fixed};

/// A combinator over an array of futures of one type; `K` says which
/// ([`JoinArray`](crate::JoinArray), [`RaceArray`](crate::RaceArray),
/// [`TryJoinArray`](crate::TryJoinArray)).
#[must_use = "futures do nothing unless polled"]
pub struct ArrayForm<F: Future, const N: usize, K> {
    /// Structurally pinned: see `project`.
    branches: [Branch<F>; N],
    engine: Engine,
    _kind: PhantomData<K>,
}

/// What differs between the array forms: the engine mode and the output.
#[doc(hidden)]
pub trait ArrayKind<F: Future, const N: usize>: sealed::Sealed {
    type Output;
    const MODE: Mode;
    const NAME: &'static str;
    /// Builds the output from the finished branches and the engine's verdict.
    fn finish(branches: [Pin<&mut Branch<F>>; N], chosen: Option<usize>) -> Self::Output;
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

impl<F: Future, const N: usize, K: ArrayKind<F, N>> ArrayForm<F, N, K> {
    pub(crate) fn new(futures: [F; N], flag: fn(&F::Output) -> bool) -> Self {
        ArrayForm {
            branches: futures.map(|future| Branch::new(future, flag)),
            engine: Engine::new(K::MODE, K::NAME),
            _kind: PhantomData,
        }
    }

    /// Pinned access to each branch, and the engine.
    ///
    /// pin-project-lite cannot express a const generic, and safe Rust has no
    /// projection from a pinned array to its elements, hence the crate's
    /// second `unsafe` block.
    #[allow(unsafe_code)] // the array forms' pin projection (design/soundness.md, "Array forms")
    fn project(self: Pin<&mut Self>) -> ([Pin<&mut Branch<F>>; N], &mut Engine) {
        // SAFETY: `branches` and its elements are structurally pinned
        // (design/soundness.md, "Array forms", A1-A4): A1 `ArrayForm` is
        // `Unpin` only when `Branch<F>` is (auto trait, no manual impl);
        // A2 it has no `Drop` impl, so nothing moves a branch while dropping;
        // A3 no code moves, swaps or replaces a branch or the array through
        // the `&mut` this gives (outputs are taken out *of* a branch, in
        // place); A4 the struct is not `repr(packed)`. So every branch stays
        // where it is until it is dropped in place, as `Pin` requires. The
        // engine is not pinned, and handing out `&mut Engine` is fine.
        unsafe {
            let this = self.get_unchecked_mut();
            let branches = this
                .branches
                .each_mut()
                .map(|branch| Pin::new_unchecked(branch));
            (branches, &mut this.engine)
        }
    }
}

impl<F: Future, const N: usize, K: ArrayKind<F, N>> Future for ArrayForm<F, N, K> {
    type Output = K::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<K::Output> {
        let (mut branches, engine) = self.project();
        let mut list = branches
            .each_mut()
            .map(|branch| branch.as_mut() as Pin<&mut dyn BranchDyn>);
        let chosen = ready!(poll_fixed(engine, &mut list, cx));
        Poll::Ready(K::finish(branches, chosen))
    }
}

impl<F: Future, const N: usize, K: ArrayKind<F, N>> fmt::Debug for ArrayForm<F, N, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("branches", &self.branches)
            .field("engine", &self.engine)
            .finish()
    }
}
