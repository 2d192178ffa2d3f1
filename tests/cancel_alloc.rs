//! Cancelling a tree of tokens allocates nothing (issue 3: "cancelling a
//! subtree costs time linear in its size with no allocation"), measured with
//! a counting global allocator. Only allocations made by the test's own
//! thread while counting is on are counted, so tests running in parallel do
//! not disturb each other.

mod common;
mod counting_alloc;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::CountingWaker;
use taskscope::{CancelReason, CancelToken, OnCancel, WhenCancelled};

/// The allocations `f` makes on this thread.
fn count_allocations(f: impl FnOnce()) -> usize {
    counting_alloc::counted(f).0
}

/// A tree below `root` of the given depth and width; every node has a
/// registered `cancelled()` waker and an `on_cancel` callback that counts
/// the `Parent` reasons it receives.
struct Tree {
    nodes: Vec<CancelToken>,
    waiting: Vec<Pin<Box<WhenCancelled>>>,
    _registrations: Vec<OnCancel>,
    waker: CountingWaker,
    inherited: Arc<AtomicUsize>,
}

impl Tree {
    fn below(root: &CancelToken, depth: usize, width: usize) -> Tree {
        let mut nodes = Vec::new();
        let mut level = vec![root.clone()];
        for _ in 0..depth {
            let next: Vec<_> = level
                .iter()
                .flat_map(|parent| (0..width).map(|_| parent.child()))
                .collect();
            nodes.extend(next.iter().cloned());
            level = next;
        }
        let waker = CountingWaker::new();
        let mut waiting: Vec<_> = nodes.iter().map(|n| Box::pin(n.cancelled())).collect();
        for w in &mut waiting {
            assert!(waker.poll(w.as_mut()).is_pending());
        }
        let inherited = Arc::new(AtomicUsize::new(0));
        let registrations = nodes
            .iter()
            .map(|n| {
                let inherited = inherited.clone();
                n.on_cancel(move |reason| {
                    if matches!(reason, CancelReason::Parent(_)) {
                        inherited.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Tree {
            nodes,
            waiting,
            _registrations: registrations,
            waker,
            inherited,
        }
    }
}

#[test]
fn cancelling_a_tree_with_waiters_allocates_nothing() {
    let root = CancelToken::new();
    let tree = Tree::below(&root, 3, 4);
    let allocations = count_allocations(|| root.cancel_with(CancelReason::Deadline));
    assert_eq!(allocations, 0, "cancel must not allocate");
    let n = tree.nodes.len();
    assert_eq!(tree.waker.count(), n, "every waiter was woken");
    assert_eq!(tree.inherited.load(Ordering::Relaxed), n);
    assert_eq!(tree.waiting.len(), n);
    assert!(tree.nodes.iter().all(|node| matches!(
        node.reason().map(|r| r.origin().clone()),
        Some(CancelReason::Deadline)
    )));
}

#[test]
fn cancelling_an_inner_node_whose_reason_is_inherited_allocates_nothing() {
    let root = CancelToken::new();
    let middle = root.child();
    let tree = Tree::below(&middle, 2, 3);
    // A `Parent` reason is handed down as it is (no spare involved).
    let inherited = CancelReason::Parent(Arc::new(CancelReason::Deadline));
    let allocations = count_allocations(|| middle.cancel_with(inherited));
    assert_eq!(allocations, 0);
    assert_eq!(tree.waker.count(), tree.nodes.len());
    assert!(!root.is_cancelled());
}

#[test]
fn checkpoints_in_a_branch_of_a_child_cancelled_through_its_handle_allocate_once() {
    let allocations = common::run(taskscope::scope(|s| async move {
        let child = s.spawn(async {
            common::yield_once().await; // cancelled through its handle meanwhile
            let (allocations, ()) = taskscope::join(
                async {
                    assert!(taskscope::checkpoint().is_err()); // may make the token
                    count_allocations(|| {
                        for _ in 0..100 {
                            assert!(taskscope::checkpoint().is_err());
                        }
                    })
                },
                async {},
            )
            .await;
            allocations
        });
        child.cancel();
        child.await
    }));
    assert_eq!(allocations, 0, "100 checkpoints after the first");
}
