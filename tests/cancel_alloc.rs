//! Cancelling a tree of tokens allocates nothing (issue 3: "cancelling a
//! subtree costs time linear in its size with no allocation"), measured with
//! a counting global allocator. Only allocations made by the test's own
//! thread while counting is on are counted, so tests running in parallel do
//! not disturb each other.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::CountingWaker;
use taskscope::{CancelReason, CancelToken, OnCancel, WhenCancelled};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// const-initialised thread locals without destructors, which allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|count| count.set(count.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|count| count.set(count.get() + 1));
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The allocations `f` makes on this thread.
fn count_allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|count| count.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(Cell::get)
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
