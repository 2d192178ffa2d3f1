//! Per-branch wakers for the fixed-arity combinators, without allocation.
//!
//! A fixed form (`join`, `race!`, ..) wants to poll only the branches whose
//! waker fired, so each branch needs a waker of its own that says "branch
//! `i` of this combinator". Safe code gets a distinct waker only from an
//! `Arc` (an allocation per branch), and a waker pointing into the
//! combinator itself would dangle once the combinator moves or is dropped
//! while a clone of the waker lives on (wakers are `'static`).
//!
//! So the shared state lives in a process-wide table of [`Slot`]s, and a
//! branch's waker carries no pointer at all, only an integer: which slot,
//! which generation of it, which branch. The combinator leases a slot at
//! its first poll and gives it back when it completes or is dropped.
//!
//! # Invariants
//!
//! - **W1.** A branch waker's data is an integer, never dereferenced: a waker
//!   that outlives its combinator, its slot lease or its thread refers to
//!   nothing that can dangle. This is the whole safety argument of the one
//!   `unsafe` block below (design/soundness.md, "Branch wakers").
//! - **W2.** A slot's `state` is even while free and odd while leased; it only
//!   grows. Leasing moves it from even to odd by compare-and-swap, so a slot
//!   has one lessee at a time; giving it back moves it to the next even.
//! - **W3.** A waker fires only if its generation equals the slot's current
//!   state. Once a lease ends, the wakers made under it are inert.
//! - **W4.** No lost wake-up. A pass of the lessee registers its task's
//!   waker, then takes the bits and sets [`POLLING`] in one swap, polls the
//!   woken branches, and clears [`POLLING`]. A wake's `fetch_or` lands before
//!   the swap (the swap takes its bit), between swap and clear (W6: the clear
//!   finds it), or after the clear; then the registration happened before
//!   its `fetch_or`, and the mutex makes the new waker the one it reads.
//! - **W5.** Every mistake the integer encoding can make is a spurious wake,
//!   never a missed one: a generation truncated to fit a `usize` may match a
//!   later lease of the same slot (ABA), and branches whose index is equal
//!   modulo [`BRANCHES_PER_WORD`] share a bit. Futures tolerate spurious polls.
//! - **W6.** Only a wake that finds `ready` empty wakes the registered waker.
//!   Any other finds either bits that no take has cleared yet, set by a wake
//!   that is waking the task (the take that follows it takes this bit too,
//!   by W4), or the [`POLLING`] bit: the lessee is polling its branches right
//!   now, and when it clears that bit it finds this one and wakes its own
//!   task. Both are single read-modify-writes of the one word, so they are
//!   totally ordered: a wake lands before the clear (and is found by it) or
//!   after it (and finds `ready` empty, or another wake's bit).
//!
//! A combinator that finds no free slot near its thread's cursor (more than
//! [`SLOTS`] fixed forms alive at once, or a crowded neighbourhood) falls back
//! to polling every branch on every poll: slower, never wrong. A leaked
//! (`mem::forget`) combinator keeps its slot leased forever: one slot fewer,
//! nothing unsound.

use std::cell::Cell;
use std::fmt;
use std::ptr;
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

use crate::sync::{AtomicUsize, Mutex, Ordering, mutant};

/// How many slots the table holds. A slot is one cache line, so the table
/// is 256 KiB of zeroed static memory; pages are touched only as threads'
/// cursors reach them.
#[cfg(not(loom))]
pub(crate) const SLOTS: usize = 4096;
#[cfg(loom)]
pub(crate) const SLOTS: usize = 4;

/// How many slots a lease looks at before it falls back to polling all.
const PROBES: usize = 32;

/// Bits of a waker's data: `generation | slot | branch`, low bits last.
const BRANCH_BITS: u32 = usize::BITS.trailing_zeros();
/// The bit of `ready` that says the lessee is polling its branches (W6);
/// the branches share the others, modulo [`BRANCHES_PER_WORD`].
const POLLING: usize = 1 << (usize::BITS - 1);
const BRANCHES_PER_WORD: usize = usize::BITS as usize - 1;
const SLOT_BITS: u32 = SLOTS.trailing_zeros();
const GENERATION_SHIFT: u32 = BRANCH_BITS + SLOT_BITS;

/// One combinator's shared state (invariants W2 to W4).
#[repr(align(64))]
pub(crate) struct Slot {
    state: AtomicUsize,
    ready: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Slot {
    #[cfg(not(loom))]
    const fn new() -> Self {
        Slot {
            state: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            waker: Mutex::new(None),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        Slot {
            state: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            waker: Mutex::new(None),
        }
    }

    /// W2: even to odd. `Acquire` pairs with the `Release` of the previous
    /// lessee's [`Slot::give_back`], so its clearing of `ready` and of the
    /// waker happened before this lease starts.
    fn try_lease(&self) -> Option<usize> {
        let free = self.state.load(Ordering::Relaxed);
        if free % 2 == 1 {
            return None;
        }
        self.state
            .compare_exchange(free, free + 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| free + 1)
    }

    /// W2, W3: odd to the next even, after clearing what the lease left, so
    /// the next lessee starts clean. `Release`: see [`Slot::try_lease`].
    fn give_back(&self, generation: usize) {
        let waker = self.waker.lock().take();
        self.ready.store(0, Ordering::Relaxed);
        self.state.store(generation + 1, Ordering::Release);
        drop(waker); // outside the lock: dropping a waker runs executor code
    }

    /// The lessee's half of W4: register, then take the bits, setting
    /// [`POLLING`] in the same swap (W6).
    fn begin_pass(&self, waker: &Waker, registered: &mut Option<Waker>) -> usize {
        self.register(waker, registered);
        // `Acquire` pairs with the `Release` in `wake`: not needed for W4,
        // but it makes what a waking thread wrote before its wake visible to
        // the branch polled because of it.
        self.ready.swap(POLLING, Ordering::Acquire) & !POLLING
    }

    /// W6: clears [`POLLING`]; true if a branch woke during the pass, whose
    /// wake found the bit and left the waking of the task to us.
    fn end_pass(&self) -> bool {
        // Relaxed: whoever polls because of these bits takes them with the
        // `Acquire` swap of `begin_pass`.
        let woken = self.ready.fetch_and(!POLLING, Ordering::Relaxed) & !POLLING != 0;
        woken && !mutant("branch_wakers_pass_forgets_wakes")
    }

    /// Stores the caller's waker unless the stored one would wake the same
    /// task; `registered` is the lessee's own copy, so the common case
    /// takes no lock.
    fn register(&self, waker: &Waker, registered: &mut Option<Waker>) {
        if registered.as_ref().is_some_and(|old| old.will_wake(waker))
            || (registered.is_some() && mutant("branch_wakers_keep_first_waker"))
        {
            return;
        }
        // Both clones first: a clone that panics (executor code) then
        // changes neither copy, so the next pass registers again.
        let for_slot = waker.clone();
        let for_lessee = waker.clone();
        let old = self.waker.lock().replace(for_slot);
        *registered = Some(for_lessee);
        // Outside the lock: dropping a waker runs executor code, which may
        // wake one of this combinator's branches, and that locks this slot.
        drop(old);
    }

    /// W3, W4, the waker's half: check the generation, set the bit, then
    /// read the waker.
    fn wake(&self, generation: usize, bit: usize) {
        if self.state.load(Ordering::Relaxed) & GENERATION_MASK != generation {
            return; // W3: a waker of an ended lease
        }
        // `Release`: see `register_and_take`.
        if self.ready.fetch_or(1 << bit, Ordering::Release) != 0 {
            return; // W6: someone else wakes the task
        }
        // The clone (executor code) runs under the lock. A clone that wakes a
        // branch of this slot cannot deadlock: that wake finds our bit in
        // `ready` and returns above (W6). Only polling or dropping the
        // combinator itself from inside a clone of its task's waker would
        // take this lock again; taking the waker out instead would let a
        // wake meanwhile find none and be lost (W4).
        let waker = self.waker.lock().clone();
        if let Some(waker) = waker {
            waker.wake(); // outside the lock: it runs executor code
        }
    }
}

const GENERATION_MASK: usize = usize::MAX >> GENERATION_SHIFT;

#[cfg(not(loom))]
fn table() -> &'static [Slot] {
    static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
    &TABLE
}

#[cfg(loom)]
fn table() -> &'static [Slot] {
    // loom's atomics cannot live in a `static`; its `lazy_static` makes a
    // fresh table for every execution of a model.
    loom::lazy_static! {
        static ref TABLE: [Slot; SLOTS] = std::array::from_fn(|_| Slot::new());
    }
    &*TABLE
}

// Where this thread's next lease starts looking: the slot of its last
// lease, so a thread reuses the slots it gave back and touches few pages of
// the table. `usize::MAX` until the first lease.
crate::sync::const_thread_local! {
    static CURSOR: Cell<usize> = Cell::new(usize::MAX);
}

/// Spreads threads' first cursors over the table.
static NEXT_REGION: crate::sync::StaticCounter = crate::sync::StaticCounter::new(0);

/// A combinator's lease of one slot; gives it back when dropped.
pub(crate) struct Lease {
    index: usize,
    generation: usize,
    /// The waker last registered, so re-registering the same one is free.
    registered: Option<Waker>,
}

impl Lease {
    /// A free slot near this thread's cursor, or `None` if the
    /// [`PROBES`] slots there are all leased.
    pub(crate) fn acquire() -> Option<Lease> {
        let start = CURSOR.with(|cursor| {
            if cursor.get() == usize::MAX {
                // Relaxed: only spreads threads apart; any value is correct.
                cursor.set(NEXT_REGION.fetch_add(PROBES, Ordering::Relaxed) % SLOTS);
            }
            cursor.get()
        });
        let slots = table();
        (0..PROBES.min(SLOTS)).find_map(|probe| {
            let index = (start + probe) % SLOTS;
            let generation = slots[index].try_lease()?;
            CURSOR.with(|cursor| cursor.set(index));
            Some(Lease {
                index,
                generation,
                registered: None,
            })
        })
    }

    /// Registers `cx`'s waker as the one branch wakes reach, and returns
    /// the branches woken since the last pass, with the guard of this one.
    pub(crate) fn begin_pass<'a>(&mut self, cx: &'a Context<'_>) -> (ReadyMask, Pass<'a>) {
        let slot = &table()[self.index];
        let ready = ReadyMask(slot.begin_pass(cx.waker(), &mut self.registered));
        let pass = Pass {
            slot,
            waker: cx.waker(),
        };
        (ready, pass)
    }

    /// The waker of branch `index`. Allocates nothing.
    #[allow(unsafe_code)] // the branch wakers' `unsafe` block (W1)
    pub(crate) fn branch_waker(&self, index: usize) -> Waker {
        let data = ((self.generation & GENERATION_MASK) << GENERATION_SHIFT)
            | (self.index << BRANCH_BITS)
            | (index % BRANCHES_PER_WORD);
        let raw = RawWaker::new(ptr::without_provenance(data), &VTABLE);
        // SAFETY: `Waker::from_raw` requires the vtable's functions to be
        // thread-safe and `data` to stay valid for them for as long as any
        // clone of the waker lives. `data` is an integer that no function
        // dereferences (W1): it is decoded into a slot index below `SLOTS`
        // and a generation checked against the slot (W3), and the table is
        // a `static` that lives forever. The functions touch only atomics
        // and a mutex, so any thread may call them.
        unsafe { Waker::from_raw(raw) }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        table()[self.index].give_back(self.generation);
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("slot", &self.index)
            .field("generation", &self.generation)
            .finish()
    }
}

/// The pass over a combinator's woken branches (W6). Ends when dropped,
/// also when a branch's destructor unwinds out of the pass: then it wakes
/// the task if a branch woke meanwhile, since that wake left it to us.
#[must_use = "the pass ends when the guard is dropped"]
pub(crate) struct Pass<'a> {
    slot: &'static Slot,
    waker: &'a Waker,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.slot.end_pass() {
            self.waker.wake_by_ref();
        }
    }
}

impl fmt::Debug for Pass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pass { .. }")
    }
}

/// Which branches to poll: bit `i % BRANCHES_PER_WORD` stands for branch
/// `i` (W5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadyMask(usize);

impl ReadyMask {
    pub(crate) const ALL: ReadyMask = ReadyMask(usize::MAX);

    pub(crate) fn contains(self, index: usize) -> bool {
        self.0 & 1 << (index % BRANCHES_PER_WORD) != 0
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);

fn clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    let data = data.addr();
    let bit = data % (1 << BRANCH_BITS);
    let index = (data >> BRANCH_BITS) % SLOTS;
    let generation = data >> GENERATION_SHIFT;
    table()[index].wake(generation, bit);
}

fn drop_waker(_: *const ()) {}
