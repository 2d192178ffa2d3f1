//! The one place where the crate's synchronisation primitives are chosen.
//!
//! Under plain `cfg(loom)` (not `cfg(all(test, loom))`: the `loom-tests` crate
//! compiles this library as an ordinary dependency) every primitive is loom's,
//! so loom can explore the interleavings of the code that uses them. Nothing
//! in the crate names `std::sync` or `std::thread_local` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// The `Arc` behind wakers and what they reach.
///
/// `std::task::Wake` is implemented for std's `Arc` only, so everything a
/// waker points at lives in one even under loom. Its reference count is not a
/// synchronisation point we need loom to explore; the atomics and mutexes
/// inside those values are loom's, and loom sees them.
pub(crate) use std::sync::Arc as WakerArc;

/// A process-wide statistic that lives in a `static`. No code synchronises
/// through it, so loom need not see it (and loom's atomics cannot be `static`).
pub(crate) use std::sync::atomic::AtomicUsize as StaticCounter;

/// Diagnostic counters and flags (task snapshots: poll counts, poll times,
/// "being polled"). Only snapshots read them, as best-effort observations; no
/// code synchronises through them, so loom need not explore them (and
/// keeping them out of loom keeps the models' state space unchanged).
pub(crate) use std::sync::atomic::{AtomicBool as StatBool, AtomicU64 as StatU64};

/// The weak form of [`WakerArc`]: a task's link to the scopes created inside
/// it, which must not keep them alive.
pub(crate) use std::sync::Weak as WakerWeak;

/// A `thread_local!` with a `const` initialiser: std's, or under loom
/// loom's, whose `thread_local!` (edition 2018 `expr` fragments) rejects a
/// `const` block, so it gets the plain expression.
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $(#[$attr])* static $name: $ty = const { $init };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $(#[$attr])* static $name: $ty = $init;
        }
    };
}
pub(crate) use const_thread_local;

/// A mutex whose `lock` ignores poisoning.
///
/// The crate never leaves shared state half-updated across a call that can
/// panic while a lock is held (user code always runs outside our locks), so a
/// poisoned lock carries no information we could act on: the data is
/// consistent and the next user may proceed.
#[derive(Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: std::sync::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// `const` outside loom, so a mutex can live in a `static`.
    #[cfg(not(loom))]
    pub(crate) const fn new(value: T) -> Self {
        Self {
            inner: std::sync::Mutex::new(value),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new(value: T) -> Self {
        Self {
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a clone of `waker` in the slot `slot` finds in the guarded
    /// value, unless the stored waker already wakes the same task.
    ///
    /// The clone is made, and the old waker dropped, with no lock held: both
    /// are executor code, which may wake what this lock guards and take it
    /// again. Two short lock sections when the waker changed, one otherwise.
    pub(crate) fn store_waker(
        &self,
        slot: impl Fn(&mut T) -> &mut Option<std::task::Waker>,
        waker: &std::task::Waker,
    ) {
        if slot(&mut self.lock())
            .as_ref()
            .is_some_and(|w| w.will_wake(waker))
        {
            return;
        }
        let new = waker.clone();
        let replaced = slot(&mut self.lock()).replace(new);
        drop(replaced);
    }
}

/// A value alone on its cache lines: two threads that write it and its
/// neighbours in turn do not take each other's lines for nothing (false
/// sharing). 128 bytes, as crossbeam's `CachePadded` on x86-64, whose
/// prefetcher fetches lines in pairs.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A condition variable for [`Mutex`], whose `wait` ignores poisoning as
/// its `lock` does.
pub(crate) struct Condvar {
    #[cfg(not(loom))]
    inner: std::sync::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
}

#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
impl Condvar {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            inner: std::sync::Condvar::new(),
            #[cfg(loom)]
            inner: loom::sync::Condvar::new(),
        }
    }

    /// Releases `guard`'s lock until notified (or spuriously woken), then
    /// takes it again.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.inner
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mutex { .. }")
    }
}

/// Whether the deliberately broken variant `name` of some synchronisation
/// code is switched on.
///
/// Only loom builds with the `loom-mutants` feature read the environment
/// variable `TASKSCOPE_LOOM_MUTANT`; every other build gets a constant
/// `false`, so the broken paths are dead code there. The loom models use it
/// to show that each of them fails when the property it checks is broken.
#[inline]
pub(crate) fn mutant(name: &str) -> bool {
    #[cfg(all(loom, feature = "loom-mutants"))]
    {
        std::env::var_os("TASKSCOPE_LOOM_MUTANT").is_some_and(|chosen| chosen == name)
    }
    #[cfg(not(all(loom, feature = "loom-mutants")))]
    {
        let _ = name;
        false
    }
}
