//! The process-wide switch for poll timestamps.
//!
//! Reading the clock costs about 20 ns, close to a tenth of a whole spawn
//! and join, so polls record their start time only once somebody showed
//! interest: a first snapshot, or [`record_poll_times`].

use crate::sync::{Ordering, StatBool};

static POLL_TIMES: StatBool = StatBool::new(false);

/// Makes every poll of every scope's task record when it started, so that
/// snapshots can show how long ago each task was last polled.
///
/// Off by default, because reading the clock on every poll costs about as
/// much as a tenth of a spawn and join. The first snapshot
/// ([`snapshot`](crate::snapshot), [`Scope::snapshot`](crate::Scope::snapshot),
/// ...) turns it on too, but a task that is stuck was last polled *before*
/// that, so its time since last poll stays unknown; a service that wants to
/// debug hangs should call this once at start-up.
///
/// ```
/// taskscope::record_poll_times();
/// # futures::executor::block_on(async {
/// taskscope::scope(|s| async move {
///     s.spawn_named("worker", async {});
///     let snapshot = s.snapshot();
///     assert!(snapshot.scopes[0].body.as_ref().unwrap().since_last_poll.is_some());
/// })
/// .await;
/// # });
/// ```
pub fn record_poll_times() {
    // Relaxed: a poll that misses the switch records nothing, which a
    // snapshot shows as "unknown"; no other data hangs on the flag.
    POLL_TIMES.store(true, Ordering::Relaxed);
}

/// Whether polls should read the clock.
#[inline]
pub(crate) fn enabled() -> bool {
    // Relaxed: see `record_poll_times`.
    POLL_TIMES.load(Ordering::Relaxed)
}
