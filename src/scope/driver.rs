//! The engine inside every scope future: polls the body and the woken children.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::cell::TaskRef;
use super::core::Core;
use super::poller_link::PollerLink;
use super::shared::ScopeShared;
use super::task::{BODY, PanicBox, TaskExit, TaskHeader, drop_after_panic};
use crate::cancel::CancelReason;
use crate::cancel::ambient::{self, Ambient};
use crate::sync::{Arc, mutant};

/// How many polls (body and children together) one `poll` of a scope makes
/// before it yields to the executor, so that a scope with many ready
/// children cannot starve the other tasks of its runtime.
///
/// A `par_scope` counts it per thread that takes part in a fan-out: its
/// `poll` keeps the executor's thread about as long as a `scope`'s does.
/// The threads share their budgets, so when the pool is slow to take a
/// helper up, the executor's thread may make that helper's polls too.
/// While the body's own poll runs inside a fan-out, the helpers' polls of
/// the children it spawns are not counted: the executor's thread is held
/// by the body's poll for that long anyway.
pub const POLL_BUDGET: usize = 128;

/// Polls a batch of ready children: one after the other, or fanned out.
/// The runner also gets the body's poll, to make on the scope's own
/// thread: when the body is ready ([`Body::ready`]), before the children's
/// or (the parallel runner) while helpers poll them; and the parallel
/// runner again whenever the body is woken during a fan-out.
pub(crate) type RunBatch<T> = fn(&Core<T>, &[usize], &mut BatchRun, Body<'_>);

/// One poll of the scope's body. Only the scope's own thread may call it:
/// the body is neither `Send` nor reachable from a helper.
pub(crate) type BodyPoll<'a> = &'a mut dyn FnMut();

/// What a batch runner gets of the body.
pub(crate) struct Body<'a> {
    /// Polls the body (a finished body: nothing).
    pub(crate) poll: BodyPoll<'a>,
    /// The body was woken before the batch was taken: poll it with the
    /// batch. Otherwise poll it only once it is taken from the ready
    /// queue (`ScopeShared::take_ready_children`).
    pub(crate) ready: bool,
}

/// What the driver hands a batch runner besides the batch itself.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
pub(crate) struct BatchRun {
    /// How many more polls the runner may make for children woken while the
    /// batch runs (the parallel runner picks them up at once); the runner
    /// lowers it by the polls it made, so [`POLL_BUDGET`] still bounds a poll.
    pub(crate) spare: usize,
    /// The runner's memory across the batches of one scope: the parallel
    /// runner's estimate of one child poll, in nanoseconds (0: not known yet).
    pub(crate) poll_nanos: u64,
    /// `poll_nanos` is another scope's (the parallel runner's prior): the
    /// scope's first own sample replaces it rather than blending with it.
    pub(crate) prior: bool,
    /// How many children the body's last poll spawned: the parallel
    /// runner's guess of what its next poll spawns.
    pub(crate) body_spawns: u64,
    /// The body has been polled once (`body_spawns` is this scope's own).
    pub(crate) body_polled: bool,
    /// The parallel runner's helpers from outside the pool: the gate that
    /// the scope's fan-outs share, the helpers lingering between them and
    /// the jobs a busy pool has not started yet.
    #[cfg(feature = "parallel")]
    pub(crate) helpers: super::gate::Helpers,
}

pin_project! {
    pub(crate) struct Driver<Fut: Future, T: ?Sized> {
        #[pin]
        body: Option<Fut>,
        output: Option<Fut::Output>,
        core: Arc<Core<T>>,
        body_header: TaskRef,
        batch: Vec<usize>,
        run_batch: RunBatch<T>,
        run: BatchRun,
        finished: bool,
        poller_link: PollerLink,
    }

    impl<Fut: Future, T: ?Sized> PinnedDrop for Driver<Fut, T> {
        fn drop(this: Pin<&mut Self>) {
            if !this.finished {
                let this = this.project();
                let mut body = this.body;
                let output = this.output;
                let body_header = this.body_header;
                // A finished body's output goes with it, while the scope can
                // still take what its destructor adopts, defers or spawns.
                this.core.shutdown(|| {
                    body.set(None);
                    // Snapshots taken from here on (a child's destructor,
                    // another thread) no longer show the body.
                    body_header.mark_dead();
                    drop(output.take());
                });
            }
        }
    }
}

impl<Fut, T> Driver<Fut, T>
where
    Fut: Future,
    T: ?Sized + Future<Output = TaskExit>,
{
    pub(crate) fn new(body: Fut, core: Arc<Core<T>>, run_batch: RunBatch<T>) -> Self {
        let shared = core.shared();
        let made_at = shared.info().location();
        let body_header = TaskRef::body(TaskHeader::new(shared.clone(), BODY, 0, None, made_at));
        // The body's first poll, as for a freshly spawned child.
        core.shared().body_started(body_header.clone());
        let poller_link = PollerLink::new(core.shared().follows_poller());
        Driver {
            body: Some(body),
            output: None,
            core,
            body_header,
            batch: Vec::new(),
            run_batch,
            run: BatchRun::default(),
            finished: false,
            poller_link,
        }
    }
}

impl<Fut: Future, T: ?Sized> Driver<Fut, T> {
    /// The scope's token.
    pub(crate) fn token(&self) -> &crate::cancel::CancelToken {
        self.core.shared().token()
    }
}

impl<Fut, T> Future for Driver<Fut, T>
where
    Fut: Future,
    T: ?Sized + Future<Output = TaskExit>,
{
    type Output = Fut::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        let mut this = self.project();
        assert!(
            !*this.finished,
            "taskscope: scope future polled after it completed; await a scope once"
        );
        let shared = this.core.shared();
        this.poller_link.first_poll(shared.token());
        // The scope's span is entered around the body and the clean-up
        // only, not around the batch runner: a parallel runner's thread may
        // run unrelated pool work while it waits for its helpers, which must
        // not be attributed to this scope. (Children enter their own spans,
        // whose parent is the scope's.)
        shared.begin_poll(cx.waker());
        let mut budget = POLL_BUDGET;
        loop {
            this.batch.clear();
            shared.take_ready(this.batch, budget);
            if this.batch.is_empty() {
                if shared.try_end_poll() {
                    break;
                }
                continue;
            }
            budget -= this.batch.len();
            this.run.spare = budget;
            // `take_ready` puts the body first; the children keep the order
            // they were woken in (the runner times the first ones alone).
            let (ready, children) = match this.batch.as_slice() {
                [BODY, children @ ..] => (true, children),
                children => (false, children),
            };
            let (body, output, header) = (&mut this.body, &mut *this.output, &*this.body_header);
            let mut poll_it =
                || shared.in_span(|| poll_body(body.as_mut(), output, header, shared));
            let body = Body {
                poll: &mut poll_it,
                ready,
            };
            (this.run_batch)(this.core, children, this.run, body);
            budget = this.run.spare;
            if budget == 0 {
                // Yield: the rest of the queue waits for the next poll.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        // Checked and closed under one lock: a spawn from another thread
        // (through a handle clone) either lands before and is joined, or
        // after and panics; it is never left unpolled.
        if this.body.is_none() && (this.core.close_if_empty() || mutant("finish_ignores_children"))
        {
            // Every child was joined and spawns are refused: run the clean-up
            // stack (adopted values, deferred futures) before returning.
            if shared
                .in_span(|| this.core.cleanup().poll_run(cx, shared))
                .is_pending()
            {
                return Poll::Pending;
            }
            *this.finished = true;
            shared.retire();
            if let Some(payload) = shared.take_unraised_panic() {
                panic::resume_unwind(payload);
            }
            let output = this.output.take();
            return Poll::Ready(output.expect("a finished body left its output"));
        }
        Poll::Pending
    }
}

/// Polls the body with its waker and the scope's token made current.
fn poll_body<Fut: Future>(
    mut body: Pin<&mut Option<Fut>>,
    output: &mut Option<Fut::Output>,
    header: &TaskRef,
    shared: &ScopeShared,
) {
    header.clear_queued();
    let Some(future) = body.as_mut().as_pin_mut() else {
        return;
    };
    let waker = header.waker();
    header.info().begin_poll(shared.info().epoch());
    let token = Ambient::Token(shared.token().clone());
    let (_, polled) = ambient::run_as_task(header.clone(), token, || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            future.poll(&mut Context::from_waker(&waker))
        }))
    });
    header.info().end_poll();
    let outcome = match polled {
        Ok(Poll::Pending) => return,
        Ok(Poll::Ready(value)) => Ok(value),
        Err(payload) => Err(payload),
    };
    // Gone from snapshots, and stray wakes no longer queue it.
    header.mark_dead();
    #[cfg(feature = "tracing")]
    if let Err(payload) = &outcome {
        let reason = CancelReason::from_panic(&**payload);
        let (scope, name) = shared.info().event_fields();
        shared.traced(|| tracing::error!(scope, name, %reason, "taskscope: scope body panicked"));
    }
    // The body finished: drop it now, so the scope handle it held goes too.
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| body.set(None)));
    match (outcome, dropped) {
        (Ok(value), Ok(())) => *output = Some(value),
        (Ok(value), Err(payload)) => {
            // The destructor's panic is raised; the output goes quietly.
            drop_after_panic(value);
            shared.record_panic(PanicBox::new(payload));
        }
        (Err(payload), second) => {
            drop_after_panic(second);
            shared.record_panic(PanicBox::new(payload));
        }
    }
}

impl<T: ?Sized> Core<T> {
    /// The scope future is dropped unfinished: tell the children through
    /// their tokens, then drop them (the only cancellation a destructor can do).
    ///
    /// `drop_body` drops the body first: its destructors may still spawn,
    /// defer or adopt through the scope's handle, which must land while the
    /// scope takes them (the children dropped next, the clean-up abandoned
    /// last) rather than panic as a use after the scope's end.
    fn shutdown(&self, drop_body: impl FnOnce()) {
        let cancel = AssertUnwindSafe(|| {
            self.shared()
                .token()
                .cancel_with(CancelReason::ScopeDropped)
        });
        let panicked = panic::catch_unwind(cancel);
        let body_dropped = panic::catch_unwind(AssertUnwindSafe(drop_body));
        // Retired after the children are gone (their destructors may still
        // spawn, and register), and also if one of those destructors panics.
        let _retire = RetireOnDrop(self.shared());
        let children = self.drop_children().map_or(Ok(()), Err);
        // No async clean-up can run now: sync drops only, counted as skipped.
        let abandoned = panic::catch_unwind(AssertUnwindSafe(|| self.cleanup().abandon()));
        if let Err(payload) = panicked.and(body_dropped).and(children).and(abandoned) {
            // A callback panicked; re-raise it unless we are already unwinding
            // (a second panic would abort the process).
            if !std::thread::panicking() {
                panic::resume_unwind(payload);
            }
        }
    }
}

/// Calls a scope's body closure. If the closure panics, the scope is shut
/// down as if its future had been dropped (children told, then dropped; the
/// shared part retired) before the panic goes on: otherwise the headers
/// registered by its spawns and the shared part would keep each other alive.
pub(crate) fn call_body<T: ?Sized, R>(core: &Core<T>, body: impl FnOnce() -> R) -> R {
    let guard = ShutdownOnUnwind(core);
    let body = body();
    std::mem::forget(guard); // holds only a reference: nothing to free
    body
}

/// Shuts a scope down when dropped: only dropped while unwinding.
struct ShutdownOnUnwind<'a, T: ?Sized>(&'a Core<T>);

impl<T: ?Sized> Drop for ShutdownOnUnwind<'_, T> {
    fn drop(&mut self) {
        // The body closure panicked: there is no body future to drop.
        self.0.shutdown(|| {});
    }
}

/// Retires a scope's shared part when dropped, also on unwind.
struct RetireOnDrop<'a>(&'a ScopeShared);

impl Drop for RetireOnDrop<'_> {
    fn drop(&mut self) {
        self.0.retire();
    }
}

/// Polls the body, if it is ready, then the children of `batch` one after
/// the other on this thread; the children woken meanwhile wait for the
/// driver's next batch.
pub(crate) fn run_serial<T: ?Sized + Future<Output = TaskExit>>(
    core: &Core<T>,
    batch: &[usize],
    _run: &mut BatchRun,
    body: Body<'_>,
) {
    if body.ready {
        (body.poll)();
    }
    core.run_serial(batch);
}

impl<Fut: Future, T: ?Sized> Driver<Fut, T> {
    /// The `Debug` of the scope future that holds this driver, under that
    /// future's type name.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("body_finished", &self.body.is_none())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
