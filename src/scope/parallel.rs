//! The batch runner of [`par_scope`](crate::par_scope): a batch of ready
//! children polled across rayon's pool, fork-join, inside one `poll` of the
//! scope future.
//!
//! # When it fans out
//!
//! Waking a pool thread costs microseconds, and a fan-out from outside the
//! pool cannot return before every job it spawned has run, so fanning out a
//! batch of cheap polls (children that mostly wait on I/O) would make a
//! `par_scope` slower than a [`scope`](crate::scope). The runner therefore
//! polls the batch on the calling thread, one stretch of up to [`STRETCH`]
//! children after the other, timing each stretch, and fans the rest of the
//! batch out only once at least two children remain, their expected cost
//! (how many remain times the scope's running estimate of one poll) reaches
//! [`FAN_OUT_NANOS`], and one poll is expected to cost at least
//! [`MIN_FAN_OUT_POLL_NANOS`] (cheaper polls lose more to the hand-over
//! between threads than they gain from a second core). A single ready child
//! is always polled inline, and untimed once the scope has a sample of its
//! own: a trickle of single light wake-ups between heavy batches must not
//! talk the estimate down. (Until then it is timed, so that a scope whose
//! children are only ever ready one at a time still leaves its own estimate
//! for the next scope, not the one it borrowed.) The estimate lives
//! in the driver across batches. A new scope starts from the estimate its
//! thread's last parallel scope left, if that one was heavy, so that a
//! scope of two heavy children (a divide-and-conquer step) runs both at
//! once; otherwise its first poll of a child is timed alone, and a scope of
//! CPU-heavy children fans out from its second ready child on. The scope's
//! first own sample replaces a borrowed estimate.
//!
//! # Who polls what
//!
//! Once fanned out, the calling thread and up to one helper job per other
//! pool thread claim the remaining children of the batch through a shared
//! cursor, each exactly once; when the batch is used up they take children
//! woken meanwhile (or left over) from the scope's ready queue (never the
//! body, see
//! [`ScopeShared::take_ready_children`](super::shared::ScopeShared::take_ready_children)),
//! until it is empty or the budget is used up: [`POLL_BUDGET`](crate::POLL_BUDGET)
//! polls per participant, so the scope's `poll` keeps its thread about as
//! long as a serial one. A body woken meanwhile is polled by the calling
//! thread (the only one that may) at its next claim from the queue, so it
//! waits for that thread's bite in hand, not for the rest of the budget:
//! with children that keep waking, a body waited for the whole budget
//! (500 polls), and a nested `par_scope`'s for seconds. The participants
//! share that budget as one pool: whoever is free takes the next bite, so when a helper comes late the
//! calling thread may make up to `participants ×` [`POLL_BUDGET`](crate::POLL_BUDGET)
//! polls itself. A cap per participant would bound that, but it left the
//! first thread to reach its cap idle while the other finished its share:
//! workload 4 fell from 1.67x to 1.45x (design/performance.md). Each claim
//! is a bite of several children, a share of what is left that shrinks to
//! one child at the end (`FanOut::share`),
//! taken out of the slab under one lock and put back under one more.
//! From a pool thread the helpers are jobs of `rayon_core::in_place_scope`,
//! which returns only when every one of them has returned; from outside the
//! pool they pass the admission gate (`gate`), and the fan-out returns once
//! every helper admitted in time has left. Either way no poll outlives the
//! call; see design/soundness.md, "The parallel scope". The gate is the
//! scope's (`BatchRun::helpers`): a helper that leaves one fan-out lingers
//! a moment for the next, so a fan-out offers new jobs only for the helpers
//! no lingering one covers; a job still queued in a busy pool joins
//! whichever fan-out is open when it starts.
//!
//! # The body's poll
//!
//! The body is polled on the calling thread only. When it is ready with
//! the batch, and the batch plus the children its poll is expected to spawn
//! (as many as its last poll spawned; for a scope's first poll, as many as
//! the first poll of its thread's last parallel scope did) are worth a
//! fan-out by the rule above, its poll is the calling thread's first share
//! of a fan-out: helpers poll the batch, and the children the body spawns,
//! while the body runs (its spawn loop, or its handles taking outputs), as
//! the other half of a `rayon::join` runs while the first does. Otherwise
//! the body is polled before the batch, alone.

use std::cell::Cell;
use std::time::Instant;

use super::core::Core;
use super::driver::{BatchRun, Body, BodyPoll};
use super::gate::{self, Job, Shared};
use super::handle::SendTask;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering, mutant};

/// The expected work, in nanoseconds, for which a batch is fanned out.
///
/// A few times the cost of waking a parked pool thread and joining it, so
/// that fanning out a batch that turns out lighter than expected costs
/// little, and a batch worth this much gains close to the full speed-up.
pub(crate) const FAN_OUT_NANOS: u64 = 50_000;

/// The average poll, in nanoseconds, below which a batch is never fanned
/// out, however many children it has.
///
/// Participants hand children back and forth under the core's lock, a few
/// hundred nanoseconds per poll when two threads contend for it; polls
/// cheaper than a few times that (children that mostly wait on I/O) run
/// faster on one thread than on two (benches/, workload 5).
pub(crate) const MIN_FAN_OUT_POLL_NANOS: u64 = 2_000;

/// How many inline polls are timed together, at most: a scope whose
/// children turn heavy fans out after at most this many of their polls.
pub(crate) const STRETCH: usize = 32;

/// Polls `batch` inline or across rayon's pool; see the module docs.
pub(crate) fn run_parallel(
    core: &Core<SendTask<'_>>,
    batch: &[usize],
    run: &mut BatchRun,
    body: Body<'_>,
) {
    if run.poll_nanos == 0 {
        borrow_recent_estimate(run);
    }
    if body.ready && poll_body(core, batch, run, &mut *body.poll) {
        return;
    }
    if batch.len() == 1 && run.poll_nanos != 0 && !run.prior {
        // Nothing to decide; see the module docs.
        core.run_serial(batch);
        return;
    }
    let mut next = 0;
    while next < batch.len() {
        let remaining = batch.len() - next;
        if remaining >= 2 && worth_fanning_out(remaining, run.poll_nanos) {
            let rest = &batch[next..];
            let helpers = free_threads().min(rest.len() - 1);
            if helpers > 0 {
                fan_out(core, rest, helpers, run, body.poll, false);
                return;
            }
        }
        // Polled in stretches, each timed as a whole: reading the clock
        // costs about as much as a cheap poll, and an average is less
        // thrown by one preempted poll. While the estimate is unknown, one
        // poll is enough to learn whether the batch is heavy.
        let stretch = if run.poll_nanos == 0 {
            1
        } else {
            remaining.min(STRETCH)
        };
        let started = Instant::now();
        core.run_serial(&batch[next..next + stretch]);
        learn(run, elapsed_nanos(started), stretch as u64);
        next += stretch;
    }
}

std::thread_local! {
    /// The estimate the last parallel scope polled on this thread left.
    static RECENT_POLL_NANOS: Cell<u64> = const { Cell::new(0) };
    /// How many children the first poll of the body of the last parallel
    /// scope polled on this thread spawned.
    static RECENT_FIRST_SPAWNS: Cell<u64> = const { Cell::new(0) };
}

/// Polls the body, fanned out with `batch` if the children it is expected
/// to spawn and `batch` are worth it, so that helpers poll them while the
/// body still runs (its spawn loop, or its handles taking outputs); returns
/// whether it fanned out, and so polled `batch` too.
fn poll_body(
    core: &Core<SendTask<'_>>,
    batch: &[usize],
    run: &mut BatchRun,
    body: BodyPoll<'_>,
) -> bool {
    // The pool is asked for its size only once a fan-out pays: a scope
    // that never fans out never starts rayon's global pool.
    let helpers = if body_worth_fanning_out(batch.len(), run) {
        free_threads()
    } else {
        0
    };
    let fanned = helpers > 0;
    let before = core.spawns();
    if fanned {
        fan_out(core, batch, helpers, run, body, true);
    } else {
        body();
    }
    run.body_spawns = core.spawns() - before;
    if !run.body_polled {
        run.body_polled = true;
        RECENT_FIRST_SPAWNS.with(|recent| recent.set(run.body_spawns));
    }
    fanned
}

/// The rule for batches, applied to `batch` children plus those the
/// body's poll is expected to spawn: as many as its last poll did, or for a
/// scope's first poll, as the first poll of its thread's last parallel
/// scope did (a scope that spawns its children from a loop spawns them all
/// in its first poll, and is often run again). At least two, as for a
/// batch: a single ready child is polled inline. A scope of a few children
/// thus never pays for a helper its body's poll cannot use.
fn body_worth_fanning_out(batch: usize, run: &BatchRun) -> bool {
    let expected = if run.body_polled {
        run.body_spawns
    } else {
        RECENT_FIRST_SPAWNS.with(Cell::get)
    };
    let children = batch.saturating_add(usize::try_from(expected).unwrap_or(usize::MAX));
    children >= 2 && worth_fanning_out(children, run.poll_nanos)
}

/// Starts a scope from its thread's recent estimate, if that was heavy
/// enough to fan out; a light one would only let the first stretch of a
/// heavy scope run inline, where timing one poll first costs one poll.
fn borrow_recent_estimate(run: &mut BatchRun) {
    let recent = RECENT_POLL_NANOS.with(Cell::get);
    if recent >= MIN_FAN_OUT_POLL_NANOS {
        run.poll_nanos = recent;
        run.prior = true;
    }
}

/// Folds a sample of `polls` polls that took `nanos` into the scope's
/// estimate, and leaves the result for the thread's next scope.
fn learn(run: &mut BatchRun, nanos: u64, polls: u64) {
    let estimate = if run.prior { 0 } else { run.poll_nanos };
    run.prior = false;
    run.poll_nanos = blend(estimate, nanos, polls);
    RECENT_POLL_NANOS.with(|recent| recent.set(run.poll_nanos));
}

fn worth_fanning_out(remaining: usize, poll_nanos: u64) -> bool {
    let remaining = u64::try_from(remaining).unwrap_or(u64::MAX);
    poll_nanos >= MIN_FAN_OUT_POLL_NANOS && remaining.saturating_mul(poll_nanos) >= FAN_OUT_NANOS
}

/// How many helper jobs to spawn besides the calling thread's own share.
///
/// One fewer than the pool has threads, wherever the caller is: a pool
/// thread counts itself, and a thread outside the pool takes the place of
/// one pool thread, so that a fan-out keeps as many threads busy as the pool
/// has (its size is the number of cores by default) rather than one more,
/// which would only make the threads take turns on the cores.
fn free_threads() -> usize {
    rayon_core::current_num_threads().saturating_sub(1)
}

/// Folds `polls` polls that took `nanos` together into the running estimate.
fn blend(estimate: u64, nanos: u64, polls: u64) -> u64 {
    let sample = nanos / polls.max(1);
    let blended = if estimate == 0 {
        sample
    } else {
        // Half weight to the past: a scope whose children change from heavy
        // to light (or back) changes mode within a few samples.
        estimate / 2 + sample / 2
    };
    // Never 0 again, which means "not known yet".
    blended.max(1)
}

fn elapsed_nanos(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What the participants of one fan-out share.
struct FanOut<'a, 'env> {
    core: &'a Core<SendTask<'env>>,
    batch: &'a [usize],
    /// The next unclaimed position in `batch`.
    next: AtomicUsize,
    /// Polls still allowed beyond the batch (the driver's budget).
    spare: AtomicUsize,
    /// How many threads take part: bites are sized by it.
    participants: usize,
    /// The calling thread is still polling the body: helpers that find
    /// nothing to claim look again rather than leave, for as long as their
    /// [`Patience`] lasts, and claim from the ready queue beyond the budget
    /// (the poll lasts as long as the body's anyway).
    body_running: AtomicBool,
    /// How many children the scope had spawned when the fan-out began: a
    /// helper's [`Patience`] starts once the body's poll spawned one more.
    spawns_before: u64,
    /// Total nanoseconds and count of the polls made, for the estimate.
    timing: Mutex<(u64, u64)>,
    /// The tokio runtime whose context the calling thread is in, if any:
    /// entered by every participant, so that a child that makes a timer or
    /// a socket on a pool thread finds the runtime it would find inline.
    #[cfg(feature = "tokio")]
    runtime: Option<tokio::runtime::Handle>,
}

impl<'a, 'env> FanOut<'a, 'env> {
    /// The state of a fan-out of `batch` among `participants` threads
    /// (the calling one included), within the budget `run` has left.
    fn new(
        core: &'a Core<SendTask<'env>>,
        batch: &'a [usize],
        participants: usize,
        run: &BatchRun,
        body: bool,
    ) -> Self {
        // The budget counts per participant (see `POLL_BUDGET`): together
        // they may make `participants` times what is left of it for this
        // batch, so a scope with many queued children joins its helpers that
        // much less often.
        let allowed = run
            .spare
            .saturating_add(batch.len())
            .saturating_mul(participants);
        let spare = allowed - batch.len();
        FanOut {
            core,
            batch,
            next: AtomicUsize::new(0),
            spare: AtomicUsize::new(spare),
            participants,
            body_running: AtomicBool::new(body),
            spawns_before: core.spawns(),
            timing: Mutex::new((0, 0)),
            #[cfg(feature = "tokio")]
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Once every participant has returned: what is left of the budget and
    /// the new estimate of one poll go back to the driver.
    fn finish(&self, participants: usize, run: &mut BatchRun) {
        // Relaxed: every participant has returned; the join ordered their writes.
        run.spare = self.spare.load(Ordering::Relaxed) / participants;
        let (nanos, polls) = *self.timing.lock();
        // A fan-out of the body's poll may poll no child at all (the body
        // spawned none this time): that is no sample of a child's cost.
        if polls > 0 {
            learn(run, nanos, polls);
        }
    }

    /// One participant: polls claimed children until none is left and
    /// the body's poll (if this fan-out makes one) has returned, or the
    /// participant's [`Patience`] with that poll ran out.
    /// `body`: the calling thread's, which polls the body whenever it finds
    /// it woken at a claim (a helper has none).
    fn work(&self, mut body: Option<BodyPoll<'_>>) {
        #[cfg(feature = "tokio")]
        let _runtime = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
        let (mut nanos, mut polls) = (0, 0);
        let mut patience = Patience::new(self.spawns_before);
        loop {
            // Timed as a whole: a participant only polls from start to end, so
            // its time per poll is the estimate's sample (lock costs included).
            // Stretches without a poll (waiting for the body to spawn) are
            // left out of it.
            let started = Instant::now();
            let polled = self
                .core
                .run_claimed(|bite| self.claim(bite, body.as_deref_mut()));
            if polled > 0 {
                nanos += elapsed_nanos(started);
                polls += polled;
            }
            if !self.body_running() || patience.run_out(polled > 0, self.core.spawns()) {
                break;
            }
            pause();
        }
        let mut timing = self.timing.lock();
        timing.0 = timing.0.saturating_add(nanos);
        timing.1 += polls;
    }

    /// The calling thread's share: the body's poll first, if this fan-out
    /// starts with one, then [`FanOut::work`] with the body at hand.
    fn work_after(&self, body: BodyPoll<'_>, poll_first: bool) {
        if poll_first {
            let _done = BodyDone(&self.body_running);
            body();
        }
        self.work(Some(body));
    }

    fn body_running(&self) -> bool {
        // Relaxed: a hint to look again; children are handed over by the
        // ready queue's lock, not by this flag. A stale `true` costs one
        // more look; a helper that sees `false` early leaves the rest to
        // the calling thread, which claims after its body's poll.
        self.body_running.load(Ordering::Relaxed)
    }

    /// Fills `bite` with this participant's next children: a share of what
    /// is left of the batch, or else of the ready queue within the spare
    /// budget; leaves it empty when there is nothing left to claim.
    ///
    /// The calling thread (`body` is `Some`) is called here between bites,
    /// holding no child, which is when it may poll a woken body.
    fn claim<'b>(&self, bite: &mut Vec<usize>, mut body: Option<&mut (dyn FnMut() + 'b)>) {
        if self.claim_from_batch(bite) {
            return;
        }
        while !self.claim_from_queue(bite, body.is_some()) {
            if let Some(body) = body.as_deref_mut() {
                if !mutant("fan_out_drops_the_body_wake") {
                    body();
                }
                // A poll like any other: a body that keeps waking itself
                // ends the fan-out once the budget is spent. Relaxed: as
                // in `claim_from_queue`.
                let _ = (self.spare).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |spare| {
                    spare.checked_sub(1)
                });
            }
        }
    }

    /// Guided self-scheduling: a participant takes `1 / (2 × participants)`
    /// of what remains, at most [`MAX_BITE`]. Bites start large (a claim
    /// and a lock for many children, where one per child had the threads
    /// trading cache lines more than polling) and shrink to one child at
    /// the end, so no thread idles while another holds several it has not
    /// started. At least 1 when `remaining` is.
    fn share(&self, remaining: usize) -> usize {
        remaining.div_ceil(2 * self.participants).min(MAX_BITE)
    }

    fn claim_from_batch(&self, bite: &mut Vec<usize>) -> bool {
        // Relaxed: the read-modify-write alone hands each position to one
        // participant; the batch itself was published to the helpers by the
        // spawn that started them.
        let mut next = self.next.load(Ordering::Relaxed);
        loop {
            let remaining = self.batch.len().saturating_sub(next);
            if remaining == 0 {
                return false;
            }
            let end = next + self.share(remaining);
            if mutant("claim_reclaims_position") {
                // Broken on purpose (loom models only): two participants may
                // read the same position, and both claim it.
                self.next.store(end, Ordering::Relaxed);
            } else if let Err(moved) =
                self.next
                    .compare_exchange(next, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                next = moved;
                continue;
            }
            bite.extend_from_slice(&self.batch[next..end]);
            return true;
        }
    }

    /// False, with nothing claimed, if `owner` is to poll the woken body
    /// first (`ScopeShared::take_ready_children`).
    fn claim_from_queue(&self, bite: &mut Vec<usize>, owner: bool) -> bool {
        if self.body_running() {
            let taken = self.core.shared().take_ready_children(
                bite,
                MAX_BITE,
                2 * self.participants,
                owner,
            );
            return taken.is_some();
        }
        // Relaxed: a plain counter; nothing is published through it, and the
        // driver reads the final value after the join, which orders it.
        let Ok(spare) = self
            .spare
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |spare| {
                (spare > 0).then(|| spare - self.share(spare))
            })
        else {
            return true;
        };
        let granted = self.share(spare);
        let taken =
            self.core
                .shared()
                .take_ready_children(bite, granted, 2 * self.participants, owner);
        let got = taken.unwrap_or(0);
        if got < granted {
            // Relaxed: as above.
            self.spare.fetch_add(granted - got, Ordering::Relaxed);
        }
        taken.is_some()
    }
}

/// Clears the fan-out's `body_running` when the body's poll returns or
/// unwinds: helpers waiting for the body to spawn leave at once, not when
/// their [`Patience`] runs out.
struct BodyDone<'a>(&'a AtomicBool);

impl Drop for BodyDone<'_> {
    fn drop(&mut self) {
        // Relaxed: see `FanOut::body_running`.
        self.0.store(false, Ordering::Relaxed);
    }
}

/// How long a helper keeps looking for children while the body's poll
/// runs, once that poll has spawned one and has neither spawned another
/// nor left one to claim since.
///
/// The body may be between two spawns, or it may have gone on to long work
/// of its own (a body that spawns its children and then computes), through
/// which a helper would only hold a pool thread spinning. As long as a
/// helper lingers between fan-outs, for the same trade: longer than the gap between two spawns of a body that reads its
/// items from somewhere, short beside what a pool thread costs to wake.
/// Until the body's poll spawns its first child the helper waits longer,
/// [`FIRST_SPAWN_PATIENCE`]. Children the body spawns after its helpers
/// left are polled by the calling thread once the body's poll returns, or
/// by the next fan-out.
#[cfg(not(loom))]
const BODY_PATIENCE: std::time::Duration = super::gate::LINGER;

/// How long a helper waits for the first spawn of a body's poll.
///
/// Long: the poll was fanned out because it is expected to spawn, and a
/// body that reads its first item slowly must not lose its helper. But
/// bounded: a body that needs the pool before it spawns (a `rayon::join` or
/// a `par_iter` preparing its items) waits for a free pool thread, and the
/// helper spinning here may be the only one; it must give its thread back
/// (`tests/par_scope_body_needs_the_pool.rs`).
#[cfg(not(loom))]
const FIRST_SPAWN_PATIENCE: std::time::Duration = std::time::Duration::from_millis(10);

/// A helper's patience with the body's poll; see [`BODY_PATIENCE`] and
/// [`FIRST_SPAWN_PATIENCE`].
struct Patience {
    /// The scope's spawn count at the helper's last look.
    seen: u64,
    /// Whether the body's poll has spawned a child since the fan-out began.
    spawned: bool,
    /// Counted from the last spawn or claim (or the helper's start).
    left: Budget,
}

impl Patience {
    fn new(spawns_before: u64) -> Self {
        Patience {
            seen: spawns_before,
            spawned: false,
            left: Budget::full(),
        }
    }

    /// Whether the helper leaves, after a look that claimed children or
    /// not, the scope having spawned `spawns` children by now.
    fn run_out(&mut self, claimed: bool, spawns: u64) -> bool {
        if spawns != self.seen || claimed {
            self.spawned |= spawns != self.seen;
            self.seen = spawns;
            self.left = Budget::full();
            return false;
        }
        self.left.spend(if self.spawned {
            Wait::NextSpawn
        } else {
            Wait::FirstSpawn
        })
    }
}

/// Which wait a [`Budget`] is spent on.
#[derive(Clone, Copy)]
enum Wait {
    FirstSpawn,
    NextSpawn,
}

/// What is left of a helper's patience, from a moment on.
#[cfg(not(loom))]
struct Budget {
    since: Instant,
}

#[cfg(not(loom))]
impl Budget {
    fn full() -> Self {
        Budget {
            since: Instant::now(),
        }
    }

    /// Whether it ran out, after one more empty look.
    fn spend(&mut self, wait: Wait) -> bool {
        let patience = match wait {
            Wait::FirstSpawn => FIRST_SPAWN_PATIENCE,
            Wait::NextSpawn => BODY_PATIENCE,
        };
        self.since.elapsed() >= patience
    }
}

/// In loom builds nothing may depend on the clock: a helper's patience is a
/// number of empty looks, enough for a model to see it both wait for a
/// spawn and give up.
#[cfg(loom)]
struct Budget {
    looks: u32,
}

#[cfg(loom)]
impl Budget {
    fn full() -> Self {
        Budget { looks: 0 }
    }

    fn spend(&mut self, wait: Wait) -> bool {
        self.looks += 1;
        let patience = match wait {
            Wait::FirstSpawn => 4,
            Wait::NextSpawn => 2,
        };
        self.looks >= patience
    }
}

/// A moment's wait before a helper looks at the ready queue again while
/// the body runs: long enough not to take the queue's lock from under the
/// body's spawns at every turn.
#[cfg(not(loom))]
fn pause() {
    for _ in 0..16 {
        std::hint::spin_loop();
    }
}

/// Loom replays interleavings: a helper waiting for the body yields to it.
#[cfg(loom)]
fn pause() {
    loom::thread::yield_now();
}

/// The most children a participant claims at once: bounds how long a child
/// woken while another participant holds it waits for its next poll.
const MAX_BITE: usize = 32;

/// Polls `rest` on this thread and offers a share to `helpers` pool
/// threads; returns when this thread found nothing left to claim and every
/// helper that took part has returned (or re-raises the first panic of one
/// of them, after the others finished).
///
/// From a pool thread, through rayon's fork-join, whose wait runs pool work
/// (the helper jobs of nested fan-outs among it) and takes the fan-out's
/// own helper jobs back when no other thread took them. From outside the
/// pool, whose threads may all be busy with long jobs (or with jobs that
/// wait for this very executor), through the admission gate: the fan-out
/// waits only for the helpers that started in time (`gate`). So too from a
/// pool thread that is a helper of such a fan-out (a nested scope in a
/// child it polls): rayon's wait might run a pool job that waits for the
/// executor whose thread owns the outer fan-out, which waits for this
/// helper (`tests/par_scope_nested_beside_blocking_jobs.rs`).
fn fan_out(
    core: &Core<SendTask<'_>>,
    rest: &[usize],
    helpers: usize,
    run: &mut BatchRun,
    body: BodyPoll<'_>,
    poll_body_first: bool,
) {
    if rayon_core::current_thread_index().is_some() && !gate::serving_a_fan_out() {
        fan_out_in_pool(core, rest, helpers, run, body, poll_body_first);
    } else {
        fan_out_with(
            core,
            rest,
            helpers,
            run,
            rayon_core::spawn,
            body,
            poll_body_first,
        );
    }
}

/// [`fan_out`] from a thread of the pool: a fork-join in rayon's scope.
fn fan_out_in_pool(
    core: &Core<SendTask<'_>>,
    rest: &[usize],
    helpers: usize,
    run: &mut BatchRun,
    body: BodyPoll<'_>,
    poll_body_first: bool,
) {
    let participants = helpers + 1;
    let fan = FanOut::new(core, rest, participants, run, poll_body_first);
    // While this thread waits for its helpers it may run other pool work,
    // which must not see the task polling this scope as current.
    let detached = crate::cancel::ambient::detach();
    let hidden = crate::cleanup::enclosing::hide();
    rayon_core::in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| fan.work(None));
        }
        fan.work_after(body, poll_body_first);
    });
    drop((hidden, detached));
    fan.finish(participants, run);
}

/// [`fan_out`], with the helper jobs handed to `spawn`: rayon's pool, or
/// loom's threads in the loom build.
fn fan_out_with(
    core: &Core<SendTask<'_>>,
    rest: &[usize],
    helpers: usize,
    run: &mut BatchRun,
    spawn: impl Fn(Job),
    body: BodyPoll<'_>,
    poll_body_first: bool,
) {
    let participants = helpers + 1;
    let fan = FanOut::new(core, rest, participants, run, poll_body_first);
    run.helpers.run_with(&fan, helpers, spawn, || {
        fan.work_after(body, poll_body_first)
    });
    fan.finish(participants, run);
}

impl Shared for FanOut<'_, '_> {
    fn work(&self) {
        FanOut::work(self, None);
    }
}

/// The loom build's fan-out: the same `fan_out_with` (gate, claims, takes,
/// puts back, hand-backs), its helpers on loom threads instead of rayon's.
///
/// Loom cannot see rayon's threads. Its threads are `'static`, like the
/// helper jobs handed to rayon, so the gate's lifetime erasure is the one
/// the models check. The scopes they build have `'static` children only
/// ([`loom_par_scope`]), which the models do not need to borrow. See
/// design/loom.md.
#[cfg(loom)]
pub(crate) mod on_loom_threads {
    use std::future::Future;

    use super::{FAN_OUT_NANOS, Job, fan_out_with};
    use crate::scope::builder::Builder;
    use crate::scope::core::Core;
    use crate::scope::driver::{BatchRun, Body, Driver, RunBatch};
    use crate::scope::handle::{Scope, SendTask};
    use crate::scope::scope_future::ScopeFuture;
    use crate::sync::Arc;

    /// Helpers per fan-out. Loom allows four spawned threads per execution
    /// in all; here helpers do not linger, so every fan-out spawns its
    /// helper afresh (a late one may still join the next fan-out).
    const HELPERS: usize = 1;

    /// A [`par_scope`](crate::par_scope) for loom models: children must be
    /// `'static`, and every batch of two or more ready children is fanned
    /// out to the calling thread and one loom thread.
    ///
    /// Only in loom builds (`--cfg loom`); not part of the API.
    pub fn loom_par_scope<F, Fut>(body: F) -> ScopeFuture<'static, Fut>
    where
        F: FnOnce(Scope<'static>) -> Fut,
        Fut: Future,
    {
        with_runner(body, run_on_loom_threads)
    }

    /// [`loom_par_scope`], but every poll of the body is fanned out with
    /// its batch, so the helper claims children while the body spawns them.
    ///
    /// Only in loom builds (`--cfg loom`); not part of the API.
    pub fn loom_par_scope_fanning_out_the_body<F, Fut>(body: F) -> ScopeFuture<'static, Fut>
    where
        F: FnOnce(Scope<'static>) -> Fut,
        Fut: Future,
    {
        with_runner(body, fan_out_the_body)
    }

    fn with_runner<F, Fut>(
        body: F,
        runner: RunBatch<SendTask<'static>>,
    ) -> ScopeFuture<'static, Fut>
    where
        F: FnOnce(Scope<'static>) -> Fut,
        Fut: Future,
    {
        let core = Arc::new(Builder::new().core());
        let body = body(Scope::new(core.clone()));
        ScopeFuture::new(Driver::new(body, core, runner))
    }

    fn fan_out_the_body(
        core: &Core<SendTask<'static>>,
        batch: &[usize],
        run: &mut BatchRun,
        body: Body<'_>,
    ) {
        if !body.ready {
            return run_on_loom_threads(core, batch, run, body);
        }
        run.poll_nanos = FAN_OUT_NANOS;
        run.helpers.stop_lingering();
        fan_out_with(
            core,
            batch,
            HELPERS,
            run,
            spawn_on_loom_thread,
            body.poll,
            true,
        );
    }

    fn spawn_on_loom_thread(job: Job) {
        // Detached, as a rayon job: only the gate orders its end.
        loom::thread::spawn(job);
    }

    fn run_on_loom_threads(
        core: &Core<SendTask<'static>>,
        batch: &[usize],
        run: &mut BatchRun,
        body: Body<'_>,
    ) {
        // The body first, as `run_parallel` does when it does not fan out
        // the body's poll (`loom_par_scope_fanning_out_the_body` does).
        if body.ready {
            (body.poll)();
        }
        // As in `run_parallel`: a single ready child is polled inline.
        if batch.len() < 2 {
            core.run_serial(batch);
            return;
        }
        // Loom replays interleavings, so nothing may depend on the clock:
        // every batch of two fans out. With so few children every bite is
        // one child, which makes the most claims race.
        run.poll_nanos = FAN_OUT_NANOS;
        // Lingering helpers are the gate models' subject; here they took
        // one model from 1.3 to 3.5 million interleavings (design/loom.md).
        run.helpers.stop_lingering();
        let helpers = HELPERS.min(batch.len() - 1);
        fan_out_with(
            core,
            batch,
            helpers,
            run,
            spawn_on_loom_thread,
            body.poll,
            false,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::gate::MAX_QUEUED_PER_HELPER;
    use crate::sync::Arc;
    use std::panic::Location;

    #[test]
    fn a_batch_fans_out_only_when_its_expected_work_pays_for_it() {
        assert!(!worth_fanning_out(1_000, 0), "unknown cost: measure first");
        assert!(!worth_fanning_out(10, 1_000), "10 µs of work stays inline");
        assert!(worth_fanning_out(2, 1_000_000), "two 1 ms polls fan out");
        assert!(worth_fanning_out(usize::MAX, u64::MAX), "no overflow");
    }

    #[test]
    fn bites_shrink_with_what_remains_down_to_one_child() {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let batch: Vec<usize> = (0..200).collect();
        let fan = FanOut::new(&core, &batch[..], 2, &BatchRun::default(), false);
        let mut sizes = Vec::new();
        loop {
            let mut bite = Vec::new();
            fan.claim(&mut bite, None);
            if bite.is_empty() {
                break;
            }
            sizes.push(bite.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), 200, "every position once");
        assert_eq!(sizes[0], MAX_BITE, "a long batch starts at the cap");
        assert!(
            sizes.windows(2).all(|w| w[0] >= w[1]),
            "never growing: {sizes:?}"
        );
        assert_eq!(sizes[sizes.len() - 1], 1, "the last bite is one child");
    }

    #[test]
    fn the_estimate_follows_new_samples_within_a_few_batches() {
        assert_eq!(blend(0, 8_000, 4), 2_000, "the first sample is taken as is");
        let mut estimate = 1_000_000;
        for _ in 0..20 {
            estimate = blend(estimate, 1_000, 1);
        }
        assert!(estimate < 2_000, "heavy to light: {estimate}");
        assert_eq!(blend(5, 0, 0), 2, "no polls counts as a zero sample");
        assert_eq!(blend(0, 0, 1), 1, "a known estimate is never 0");
    }

    #[test]
    fn a_scope_that_borrowed_an_estimate_leaves_its_own_even_from_single_children() {
        const BORROWED: u64 = u64::MAX / 4;
        // A heavy estimate left by an earlier scope on this thread.
        RECENT_POLL_NANOS.with(|recent| recent.set(BORROWED));
        let core = Arc::new(crate::scope::builder::Builder::new().core());
        let _handle = core.insert(async {}, None, Location::caller());
        let mut batch = Vec::new();
        core.shared().take_ready(&mut batch, 16);
        batch.retain(|&index| index != crate::scope::task::BODY);
        assert_eq!(batch.len(), 1, "one ready child");
        let mut run = BatchRun::default();
        run_parallel(
            &core,
            &batch,
            &mut run,
            Body {
                poll: &mut || {},
                ready: false,
            },
        );
        assert!(
            !run.prior,
            "the scope's own sample replaced the borrowed one"
        );
        assert_ne!(
            RECENT_POLL_NANOS.with(Cell::get),
            BORROWED,
            "the next scope on this thread starts from this one's estimate"
        );
        // As the driver does when a scope ends: the registered headers point
        // back at the scope, which would leak it.
        core.shared().retire();
    }

    #[test]
    fn a_scope_stops_offering_helpers_to_a_pool_that_started_none_of_its_last_ones() {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let _handles: Vec<_> = (0..2)
            .map(|_| core.insert(async {}, None, Location::caller()))
            .collect();
        let mut batch = Vec::new();
        core.shared().take_ready(&mut batch, 16);
        batch.retain(|&index| index != crate::scope::task::BODY);
        let pool = std::cell::RefCell::new(Vec::<Job>::new());
        let mut run = BatchRun::default();
        for _ in 0..=MAX_QUEUED_PER_HELPER {
            // Finished children are skipped: the batch can be fanned out again.
            let offer = |job| pool.borrow_mut().push(job);
            fan_out_with(&core, &batch, 1, &mut run, offer, &mut || {}, false);
        }
        assert_eq!(
            pool.borrow().len(),
            MAX_QUEUED_PER_HELPER,
            "the last fan-out offered none"
        );
        assert_eq!(run.helpers.still_queued(), MAX_QUEUED_PER_HELPER);
        // As the driver does when a scope ends: the lingering helpers go.
        drop(run);
        pool.borrow_mut().drain(..).for_each(|job| job());
        // As the driver does when a scope ends: the registered headers point
        // back at the scope, which would leak it.
        core.shared().retire();
    }

    #[test]
    fn the_body_is_fanned_out_only_when_the_children_it_should_spawn_pay_for_it() {
        let mut run = BatchRun {
            poll_nanos: 5_000,
            body_polled: true,
            body_spawns: 3,
            ..BatchRun::default()
        };
        assert!(!body_worth_fanning_out(0, &run), "3 × 5 µs stays inline");
        let single = BatchRun {
            poll_nanos: 1_000_000,
            body_polled: true,
            body_spawns: 1,
            ..BatchRun::default()
        };
        assert!(
            !body_worth_fanning_out(0, &single),
            "a single child, however heavy, is polled inline"
        );
        run.body_spawns = 20;
        assert!(body_worth_fanning_out(0, &run), "20 × 5 µs fans out");
        run.body_spawns = 0;
        assert!(body_worth_fanning_out(20, &run), "a ready batch counts too");
        run.poll_nanos = 0;
        assert!(!body_worth_fanning_out(1_000, &run), "unknown cost: inline");
        RECENT_FIRST_SPAWNS.with(|recent| recent.set(1_000));
        let first = BatchRun {
            poll_nanos: 5_000,
            ..BatchRun::default()
        };
        assert!(
            body_worth_fanning_out(0, &first),
            "a scope's first poll goes by its thread's last scope"
        );
    }

    /// Fans a body's poll out, with its helper on a std thread: the body
    /// computes for `computing_first`, spawns `child`, then stays in its
    /// poll until `until` is set (and fails with `waiting_for` after a
    /// minute). `helper_done` runs on the helper's thread once its job
    /// returned. Returns whether the child finished.
    fn fan_out_a_body_that_spawns_and_waits(
        computing_first: std::time::Duration,
        child: impl Future<Output = ()> + Send + 'static,
        until: &std::sync::atomic::AtomicBool,
        waiting_for: &str,
        helper_done: impl Fn() + Sync,
    ) -> bool {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let mut child = Some(child);
        let mut handle = None;
        let mut body = || {
            let computing = Instant::now();
            while computing.elapsed() < computing_first {
                std::hint::spin_loop();
            }
            handle = child
                .take()
                .map(|child| core.insert(child, None, Location::caller()));
            let started = Instant::now();
            while !until.load(Ordering::SeqCst) {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "{waiting_for}"
                );
                std::thread::yield_now();
            }
        };
        let mut run = BatchRun {
            poll_nanos: FAN_OUT_NANOS,
            helpers: crate::scope::gate::Helpers::not_lingering(),
            ..BatchRun::default()
        };
        std::thread::scope(|threads| {
            let spawn = |job: Job| {
                let helper_done = &helper_done;
                threads.spawn(move || {
                    job();
                    helper_done();
                });
            };
            fan_out_with(&core, &[], 1, &mut run, spawn, &mut body, true);
        });
        let finished = handle.is_some_and(|handle| handle.is_finished());
        // As the driver does when a scope ends: the registered headers point
        // back at the scope, which would leak it.
        core.shared().retire();
        finished
    }

    /// [`fan_out_a_body_that_spawns_and_waits`] with a child that sets the
    /// flag the body waits for: the body stays in its poll until the child
    /// ran, so only a helper can poll it.
    fn a_helper_polls_the_child_spawned_after(
        computing_first: std::time::Duration,
        waiting_for: &str,
    ) -> bool {
        let polled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = polled.clone();
        fan_out_a_body_that_spawns_and_waits(
            computing_first,
            async move { flag.store(true, Ordering::SeqCst) },
            &polled,
            waiting_for,
            || {},
        )
    }

    #[test]
    fn a_helper_polls_the_children_the_body_spawns_while_the_body_is_still_in_its_poll() {
        assert!(a_helper_polls_the_child_spawned_after(
            std::time::Duration::ZERO,
            "no helper polled the child while the body was in its poll",
        ));
    }

    #[test]
    fn a_helper_leaves_a_body_poll_that_goes_on_without_spawning() {
        let helper_left = std::sync::atomic::AtomicBool::new(false);
        // The body computes on in its poll and spawns nothing more: its
        // helper must give the pool its thread back meanwhile.
        let finished = fan_out_a_body_that_spawns_and_waits(
            std::time::Duration::ZERO,
            async {},
            &helper_left,
            "the helper kept waiting for the body's poll, which spawned nothing more",
            || helper_left.store(true, Ordering::SeqCst),
        );
        assert!(finished);
    }

    #[test]
    fn a_helper_waits_for_the_first_spawn_of_a_body_that_computes_before_it() {
        // 40 times the helper's patience passes before the body spawns: a
        // helper that counted it from its own start would be gone by then.
        assert!(a_helper_polls_the_child_spawned_after(
            40 * super::BODY_PATIENCE,
            "the helper left before the body's first spawn",
        ));
    }

    #[test]
    fn a_fan_out_of_the_body_that_polled_no_child_leaves_the_estimate_alone() {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let mut run = BatchRun {
            poll_nanos: 5_000,
            helpers: crate::scope::gate::Helpers::not_lingering(),
            ..BatchRun::default()
        };
        // The body spawns nothing, and the pool never starts its helper.
        fan_out_with(&core, &[], 1, &mut run, drop, &mut || {}, true);
        assert_eq!(run.poll_nanos, 5_000);
    }

    #[test]
    fn a_panic_cancels_the_scope_before_the_next_child_of_its_bite_is_polled() {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let saw_cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = saw_cancel.clone();
        let panics = core.insert(
            async { panic!("the first child of the bite panics") },
            None,
            Location::caller(),
        );
        let sibling = core.insert(
            async move { seen.store(crate::is_cancelled(), Ordering::SeqCst) },
            None,
            Location::caller(),
        );
        let mut bites = vec![vec![0, 1]];
        let polled = core.run_claimed(|bite| bite.extend(bites.pop().unwrap_or_default()));
        assert_eq!(polled, 2);
        assert!(
            saw_cancel.load(Ordering::SeqCst),
            "the sibling polled after the panic in the same bite ran uncancelled"
        );
        assert!(core.shared().token().is_cancelled());
        drop((panics, sibling));
        core.shared().retire();
    }

    /// Spins (yielding, for Miri's scheduler) until `flag` is set.
    fn wait_for(flag: &std::sync::atomic::AtomicBool) {
        while !flag.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_child_woken_during_its_poll_and_claimed_meanwhile_is_scheduled_again() {
        use std::sync::atomic::AtomicBool;
        let core: Arc<Core<SendTask<'static>>> =
            Arc::new(crate::scope::builder::Builder::new().core());
        let (inside, claimed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (inside2, claimed2) = (inside.clone(), claimed.clone());
        let mut first = true;
        let child = core.insert(
            std::future::poll_fn(move |cx| {
                if !std::mem::take(&mut first) {
                    return std::task::Poll::Ready(());
                }
                // Woken during its own poll, while another participant
                // takes the wake and finds the child out of the slab.
                cx.waker().wake_by_ref();
                inside2.store(true, Ordering::SeqCst);
                wait_for(&claimed2);
                std::task::Poll::Pending
            }),
            None,
            Location::caller(),
        );
        let mut batch = Vec::new();
        core.shared().take_ready(&mut batch, usize::MAX); // the first poll's
        assert_eq!(batch, [0]);
        let polling = std::thread::spawn({
            let core = core.clone();
            move || core.run_claimed(|bite| bite.append(&mut batch))
        });
        wait_for(&inside);
        let mut woken = Vec::new();
        core.shared().take_ready(&mut woken, usize::MAX);
        assert_eq!(woken, [0], "the wake during the poll");
        let polled = core.run_claimed(|bite| bite.append(&mut woken));
        assert_eq!(polled, 0, "the child was out being polled");
        claimed.store(true, Ordering::SeqCst);
        assert_eq!(polling.join().unwrap(), 1);
        let mut again = Vec::new();
        core.shared().take_ready(&mut again, usize::MAX);
        assert_eq!(
            again,
            [0],
            "put back and queued again: the wake was not lost"
        );
        assert_eq!(core.run_claimed(|bite| bite.append(&mut again)), 1);
        drop(child);
        assert!(core.close_if_empty(), "the child finished");
        core.shared().retire();
    }

    #[test]
    fn the_calling_thread_polls_a_body_woken_during_a_fan_out_before_its_next_claim() {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let children: Vec<_> = (0..4)
            .map(|_| core.insert(async {}, None, Location::caller()))
            .collect();
        let run = BatchRun {
            spare: crate::POLL_BUDGET,
            ..BatchRun::default()
        };
        // An empty batch: every claim goes to the queue, where the four are.
        let fan = FanOut::new(&core, &[], 2, &run, false);
        let body_polls = std::cell::Cell::new(0);
        let mut body = || body_polls.set(body_polls.get() + 1);
        let mut bite = Vec::new();
        fan.claim(&mut bite, Some(&mut body));
        assert_eq!((bite.len(), body_polls.get()), (1, 0), "the body sleeps");
        core.shared().schedule(crate::scope::task::BODY);
        bite.clear();
        fan.claim(&mut bite, None);
        assert_eq!(
            (bite.len(), body_polls.get()),
            (1, 0),
            "a helper leaves the body alone"
        );
        bite.clear();
        fan.claim(&mut bite, Some(&mut body));
        assert_eq!(body_polls.get(), 1, "the woken body was polled first");
        assert_eq!(bite.len(), 1, "then the claim went on");
        drop(children);
        core.shared().retire();
    }

    #[test]
    fn the_spare_budget_goes_back_to_the_driver_per_participant() {
        let core: Core<SendTask<'static>> = crate::scope::builder::Builder::new().core();
        let batch: Vec<usize> = (0..4).collect();
        let before = BatchRun {
            spare: 10,
            ..BatchRun::default()
        };
        let fan = FanOut::new(&core, &batch[..], 2, &before, false);
        let mut bite = Vec::new();
        while {
            bite.clear();
            fan.claim(&mut bite, None);
            !bite.is_empty()
        } {}
        let mut after = BatchRun::default();
        fan.finish(2, &mut after);
        // Two threads shared 2 × (4 + 10) polls; the batch used 4 of them,
        // 2 per thread, so each has 14 - 2 = 12 left, as if it had polled
        // its half of the batch alone.
        assert_eq!(after.spare, 12);
    }
}
