//! A counting global allocator for the allocation tests. Only allocations
//! made by the calling thread inside `counted` are counted, so tests running
//! in parallel do not disturb each other. Include it once per test binary
//! (`mod counting_alloc;`): it installs itself as the global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    if COUNTING.with(Cell::get) {
        COUNT.with(|count| count.set(count.get() + 1));
        LARGEST.with(|largest| largest.set(largest.get().max(size)));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// const-initialised thread locals without destructors, which allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning how many allocations (and reallocations) this thread
/// made meanwhile, and `f`'s result.
pub(crate) fn counted<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|count| count.set(0));
    LARGEST.with(|largest| largest.set(0));
    COUNTING.with(|on| on.set(true));
    let output = f();
    COUNTING.with(|on| on.set(false));
    (COUNT.with(Cell::get), output)
}

/// Runs `f`, returning the size in bytes of the largest single allocation
/// (or reallocation) this thread made meanwhile, and `f`'s result.
#[allow(dead_code)] // not every test binary asks
pub(crate) fn largest<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let (_, output) = counted(f);
    (LARGEST.with(Cell::get), output)
}
