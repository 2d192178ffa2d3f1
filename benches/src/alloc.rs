//! A global allocator that counts allocations while asked to.
//!
//! The bench binary installs [`CountingAlloc`] as its `#[global_allocator]`.
//! Counting is off outside [`count_allocs`], so the timed rounds only pay one
//! relaxed load per allocation, the same for every contender.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, plus a counter of allocations (and reallocations,
/// which are allocations a `Vec` pays while it grows).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

impl CountingAlloc {
    #[inline]
    fn record() {
        // Relaxed is enough: the counter is read after the counted code
        // finished on this thread, and other threads only add to it.
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counting touches only
// two atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::record();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::record();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::record();
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its output with the number of allocations made
/// meanwhile (by every thread), or `None` when [`CountingAlloc`] is not the
/// global allocator of this binary.
pub fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    COUNTING.store(true, Ordering::Relaxed);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    // A probe: if the counter does not move for a box, nobody is counting.
    let probe = std::hint::black_box(Box::new(0_u8));
    let after_probe = ALLOCATIONS.load(Ordering::Relaxed);
    drop(probe);
    let output = f();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.store(false, Ordering::Relaxed);
    if after_probe == before {
        return (output, None);
    }
    (output, Some(after - after_probe))
}
