use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use super::*;

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the small trees below cover the same code"
)]
fn cancelling_a_parent_reaches_every_descendant_at_depth_1000() {
    let root = CancelToken::new();
    let mut chain = vec![root.child()];
    for _ in 0..1000 {
        let next = chain.last().unwrap().child();
        chain.push(next);
    }
    root.cancel();
    assert!(chain.iter().all(CancelToken::is_cancelled));
    let deepest = chain.last().unwrap().reason().unwrap();
    assert!(matches!(deepest, CancelReason::Parent(_)));
    assert!(matches!(deepest.origin(), CancelReason::Requested));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the small trees below cover the same code"
)]
fn cancelling_a_parent_reaches_100_000_children() {
    let root = CancelToken::new();
    let children: Vec<_> = (0..100_000).map(|_| root.child()).collect();
    root.cancel_with(CancelReason::Deadline);
    assert!(children.iter().all(CancelToken::is_cancelled));
    assert!(matches!(
        children[99_999].reason().unwrap().origin(),
        CancelReason::Deadline
    ));
}

#[test]
fn cancelling_a_child_leaves_parent_and_siblings_alone() {
    let root = CancelToken::new();
    let (a, b) = (root.child(), root.child());
    let a_child = a.child();
    a.cancel();
    assert!(a.is_cancelled() && a_child.is_cancelled());
    assert!(!root.is_cancelled() && !b.is_cancelled());
}

#[test]
fn children_of_a_cancelled_token_are_born_cancelled() {
    let root = CancelToken::new();
    root.cancel_with(CancelReason::ScopeDropped);
    let late = root.child().child();
    assert!(late.is_cancelled());
    assert!(matches!(
        late.reason().unwrap().origin(),
        CancelReason::ScopeDropped
    ));
    assert_eq!(root.linked_children(), 0);
}

#[test]
fn the_first_reason_wins() {
    let token = CancelToken::new();
    token.cancel_with(CancelReason::LostRace);
    token.cancel_with(CancelReason::Deadline);
    assert!(matches!(token.reason(), Some(CancelReason::LostRace)));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the small trees below cover the same code"
)]
fn a_million_short_lived_children_leave_no_residue() {
    let root = CancelToken::new();
    for _ in 0..1_000_000 {
        let child = root.child();
        drop(child.child());
    }
    assert_eq!(root.linked_children(), 0);
}

#[test]
fn a_child_without_handles_stays_linked_while_its_own_children_live() {
    let root = CancelToken::new();
    let grandchild = root.child().child();
    assert_eq!(
        root.linked_children(),
        1,
        "the handle-less middle node keeps the path"
    );
    root.cancel();
    assert!(grandchild.is_cancelled());
    drop(grandchild);
    assert_eq!(root.linked_children(), 0);
}

#[test]
fn dropping_the_last_grandchild_unlinks_the_handle_less_chain() {
    let root = CancelToken::new();
    let grandchild = root.child().child().child();
    assert_eq!(root.linked_children(), 1);
    drop(grandchild);
    assert_eq!(root.linked_children(), 0);
}

#[test]
fn removing_a_middle_child_keeps_the_others_reachable() {
    let root = CancelToken::new();
    let mut children: Vec<_> = (0..5).map(|_| root.child()).collect();
    children.remove(1);
    children.remove(0);
    assert_eq!(root.linked_children(), 3);
    root.cancel();
    assert!(children.iter().all(CancelToken::is_cancelled));
}

#[test]
fn callbacks_run_once_and_may_cancel_other_tokens() {
    let root = CancelToken::new();
    let other = CancelToken::new();
    let runs = StdArc::new(AtomicUsize::new(0));
    let (other2, runs2) = (other.clone(), runs.clone());
    let _registration = root.on_cancel(move |reason| {
        assert!(matches!(reason, CancelReason::Requested));
        runs2.fetch_add(1, StdOrdering::SeqCst);
        other2.cancel();
    });
    root.cancel();
    root.cancel();
    assert_eq!(runs.load(StdOrdering::SeqCst), 1);
    assert!(other.is_cancelled());
}

#[test]
fn a_callback_may_create_children_of_its_own_token() {
    let root = CancelToken::new();
    let seen = StdArc::new(AtomicUsize::new(0));
    let (root2, seen2) = (root.clone(), seen.clone());
    root.on_cancel(move |_| {
        if root2.child().is_cancelled() {
            seen2.fetch_add(1, StdOrdering::SeqCst);
        }
    })
    .forget();
    root.cancel();
    assert_eq!(seen.load(StdOrdering::SeqCst), 1);
}

#[test]
fn a_dropped_registration_never_runs() {
    let token = CancelToken::new();
    let runs = StdArc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    drop(token.on_cancel(move |_| {
        runs2.fetch_add(1, StdOrdering::SeqCst);
    }));
    token.cancel();
    assert_eq!(runs.load(StdOrdering::SeqCst), 0);
    assert_eq!(token.registered_waiters(), 0);
}

#[test]
fn registering_on_a_cancelled_token_runs_the_callback_at_once() {
    let token = CancelToken::new();
    token.cancel();
    let runs = StdArc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    let _registration = token.on_cancel(move |_| {
        runs2.fetch_add(1, StdOrdering::SeqCst);
    });
    assert_eq!(runs.load(StdOrdering::SeqCst), 1);
}

#[test]
fn a_panicking_callback_does_not_stop_the_others_or_poison_the_token() {
    let root = CancelToken::new();
    let child = root.child();
    let runs = StdArc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    root.on_cancel(|_| panic!("callback failed")).forget();
    root.on_cancel(move |_| {
        runs2.fetch_add(1, StdOrdering::SeqCst);
    })
    .forget();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| root.cancel()));
    let payload = outcome.expect_err("the callback's panic is resumed from cancel");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback failed"));
    assert_eq!(runs.load(StdOrdering::SeqCst), 1);
    assert!(
        child.is_cancelled(),
        "the subtree is cancelled despite the panic"
    );
    assert!(root.child().is_cancelled(), "the token still works");
}

#[test]
fn a_drop_guard_dropped_while_unwinding_drops_a_callback_panic_rather_than_aborting() {
    let token = CancelToken::new();
    token.on_cancel(|_| panic!("callback")).forget();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let _guard = token.clone().drop_guard();
        panic!("the first panic");
    }));
    let payload = caught.expect_err("the first panic goes on");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the first panic"));
    assert!(token.is_cancelled());
}

#[test]
fn a_drop_guard_raises_a_callback_panic_when_not_unwinding() {
    let token = CancelToken::new();
    token.on_cancel(|_| panic!("callback")).forget();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| drop(token.clone().drop_guard())));
    let payload = caught.expect_err("the callback's panic comes out of the drop");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback"));
    assert!(token.is_cancelled());
}

#[test]
fn drop_guard_cancels_unless_disarmed() {
    let token = CancelToken::new();
    drop(token.clone().drop_guard());
    assert!(token.is_cancelled());

    let token = CancelToken::new();
    let back = token.clone().drop_guard().disarm();
    drop(back);
    assert!(!token.is_cancelled());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the small trees below cover the same code"
)]
fn cancel_racing_with_child_creation_on_other_threads_misses_no_child() {
    for _ in 0..50 {
        let root = CancelToken::new();
        let made: Vec<_> = std::thread::scope(|s| {
            let makers: Vec<_> = (0..3)
                .map(|_| s.spawn(|| (0..200).map(|_| root.child().child()).collect::<Vec<_>>()))
                .collect();
            s.spawn(|| root.cancel());
            makers.into_iter().flat_map(|m| m.join().unwrap()).collect()
        });
        assert!(made.iter().all(CancelToken::is_cancelled));
    }
}

/// The `Arc` inside a `Parent` reason.
fn parent_arc(reason: Option<CancelReason>) -> StdArc<CancelReason> {
    match reason {
        Some(CancelReason::Parent(inner)) => inner,
        other => panic!("expected a Parent reason, got {other:?}"),
    }
}

#[test]
fn descendants_and_late_children_share_one_parent_reason() {
    let root = CancelToken::new();
    let child = root.child();
    let grandchild = child.child();
    root.cancel_with(CancelReason::Deadline);
    let shared = parent_arc(child.reason());
    assert!(matches!(*shared, CancelReason::Deadline));
    assert!(StdArc::ptr_eq(&shared, &parent_arc(grandchild.reason())));
    let late = root.child();
    assert!(StdArc::ptr_eq(&shared, &parent_arc(late.reason())));
    assert!(StdArc::ptr_eq(
        &shared,
        &parent_arc(grandchild.child().reason())
    ));
}

#[test]
fn a_parent_reason_is_handed_down_unwrapped() {
    let root = CancelToken::new();
    let child = root.child();
    let given = StdArc::new(CancelReason::LostRace);
    root.cancel_with(CancelReason::Parent(given.clone()));
    assert!(StdArc::ptr_eq(&given, &parent_arc(child.reason())));
    assert!(StdArc::ptr_eq(&given, &parent_arc(root.child().reason())));
}

#[test]
fn the_spare_is_filled_even_when_every_child_is_gone() {
    let root = CancelToken::new();
    drop(root.child()); // sets the spare aside, then unlinks
    let middle = root.child();
    drop(middle.child());
    root.cancel_with(CancelReason::ScopeDropped);
    for late in [root.child(), middle.child()] {
        assert!(matches!(
            *parent_arc(late.reason()),
            CancelReason::ScopeDropped
        ));
    }
    middle.cancel_with(CancelReason::Deadline);
    assert!(matches!(middle.reason(), Some(CancelReason::Parent(_))));
}

#[test]
fn a_child_check_without_the_child_shares_the_parent_reason() {
    let root = CancelToken::new();
    assert!(root.check_as_child().is_ok());
    root.cancel_with(CancelReason::Deadline);
    let reason = |r: Result<(), Cancelled>| Some(r.unwrap_err().into_reason());
    let first = parent_arc(reason(root.check_as_child()));
    assert!(matches!(*first, CancelReason::Deadline));
    assert!(StdArc::ptr_eq(
        &first,
        &parent_arc(reason(root.check_as_child()))
    ));
    assert!(StdArc::ptr_eq(&first, &parent_arc(root.child().reason())));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "too slow under Miri; the small trees above cover the same code"
)]
fn dropping_a_chain_of_a_million_does_not_overflow_the_stack() {
    let mut leaf = CancelToken::new();
    for _ in 0..1_000_000 {
        leaf = leaf.child();
    }
    drop(leaf);

    // Cancelled, the chain is held together by `parent` links alone (I8).
    let root = CancelToken::new();
    let mut leaf = root.child();
    for _ in 0..1_000_000 {
        leaf = leaf.child();
    }
    root.cancel();
    drop(root);
    assert!(leaf.is_cancelled());
    drop(leaf);
}

/// Runs `f` on a thread of its own and says whether it returned: a test of
/// a deadlock then fails instead of hanging the suite.
fn returns(f: impl FnOnce() + Send + 'static) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    // A bound for a hang, not a timing: the work takes microseconds.
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .is_ok()
}

/// A waker that owns the last handle of another token.
struct OwnsToken(#[allow(dead_code)] CancelToken);

impl std::task::Wake for OwnsToken {
    fn wake(self: StdArc<Self>) {}
}

#[test]
fn a_dropped_registration_drops_its_callback_outside_the_tokens_lock() {
    // The callback owns the only handle of a child: dropping it unlinks the
    // child from `token`, which takes `token`'s lock (I6).
    assert!(returns(|| {
        let token = CancelToken::new();
        let child = token.child();
        let registration = token.on_cancel(move |_| child.cancel());
        drop(registration);
        assert_eq!(token.linked_children(), 0, "the child was unlinked");
    }));
}

/// `token.cancelled()`, registered with a waker whose only other copy is
/// gone: the registration holds the last handle of a child of `token`.
fn waiting_with_the_last_handle_of_a_child(
    token: &CancelToken,
) -> std::pin::Pin<Box<WhenCancelled>> {
    let waker = std::task::Waker::from(StdArc::new(OwnsToken(token.child())));
    let mut cancelled = Box::pin(token.cancelled());
    let polled = cancelled
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(polled.is_pending());
    cancelled
}

#[test]
fn a_replaced_waker_is_dropped_outside_the_tokens_lock() {
    assert!(returns(|| {
        let token = CancelToken::new();
        let mut cancelled = waiting_with_the_last_handle_of_a_child(&token);
        let polled = cancelled
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        assert!(polled.is_pending());
        assert_eq!(token.linked_children(), 0, "the child was unlinked");
    }));
}

#[test]
fn a_dropped_waiters_waker_is_dropped_outside_the_tokens_lock() {
    assert!(returns(|| {
        let token = CancelToken::new();
        drop(waiting_with_the_last_handle_of_a_child(&token));
        assert_eq!(token.registered_waiters(), 0);
        assert_eq!(token.linked_children(), 0, "the child was unlinked");
    }));
}

#[test]
fn a_child_moved_into_a_dropped_siblings_place_still_unlinks_when_dropped() {
    let parent = CancelToken::new();
    let first = parent.child();
    let _middle = parent.child();
    let last = parent.child();
    drop(first); // `last` moves into its place (I4)
    drop(last);
    assert_eq!(parent.linked_children(), 1, "only the middle child is left");
}

#[test]
fn the_first_panicking_callback_is_the_one_raised() {
    let token = CancelToken::new();
    token.on_cancel(|_| panic!("first")).forget();
    token.on_cancel(|_| panic!("second")).forget();
    let raised = panic::catch_unwind(AssertUnwindSafe(|| token.cancel()));
    let payload = raised.expect_err("a callback panicked");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"first"));
}

#[test]
fn a_callback_on_a_cancelled_token_gets_its_reason() {
    let token = CancelToken::new();
    token.cancel_with(CancelReason::Deadline);
    let seen = StdArc::new(std::sync::Mutex::new(None));
    let into = seen.clone();
    token
        .on_cancel(move |reason| *into.lock().unwrap() = Some(reason.clone()))
        .forget();
    assert!(matches!(
        *seen.lock().unwrap(),
        Some(CancelReason::Deadline)
    ));
}
