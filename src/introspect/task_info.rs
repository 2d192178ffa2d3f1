//! What a task's header keeps for snapshots and tracing.

use std::borrow::Cow;
use std::panic::Location;
use std::time::Instant;

use super::poll_times;
use super::scope_info::ScopeInfo;
use crate::sync::{Ordering, StatBool, StatU64};

/// The diagnostic part of a [`TaskHeader`](crate::scope::task::TaskHeader).
///
/// Counters are written by the task's poller only: a task is polled by one
/// thread at a time and handed between pollers under the scope's lock, so a
/// plain load and store suffices where a read-modify-write would cost a
/// locked instruction per poll.
pub(crate) struct TaskInfo {
    /// The task's number inside its scope: 0 is the body, children count from 1.
    seq: u64,
    name: Option<Cow<'static, str>>,
    /// Where the task was spawned; for a body, where its scope was made.
    location: &'static Location<'static>,
    polls: StatU64,
    /// When the last poll started, in nanoseconds since the scope's epoch,
    /// plus one; 0 when no poll recorded a time (see `poll_times`).
    last_poll: StatU64,
    polling: StatBool,
    /// The task's `JoinHandle` took the output or was dropped: once
    /// finished, the task is no longer worth showing.
    released: StatBool,
    /// The scope future was dropped before the task finished: it is being
    /// dropped unfinished, not finished.
    abandoned: StatBool,
    /// The task finished by a panic of its own (not of its handle's
    /// waker) that its handle has not re-raised. Set by its poller before
    /// the task is marked dead, which publishes it.
    panicked: StatBool,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl TaskInfo {
    pub(crate) fn new(
        seq: u64,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        scope: &ScopeInfo,
    ) -> Self {
        #[cfg(feature = "tracing")]
        let span = if seq == 0 {
            // The body runs inside the scope's own span.
            tracing::Span::none()
        } else {
            tracing::debug_span!(
                parent: scope.span(),
                "taskscope.task",
                id = %format_args!("{}.{seq}", scope.id()),
                name = name.as_deref(),
                at = %location,
            )
        };
        #[cfg(not(feature = "tracing"))]
        let _ = scope;
        TaskInfo {
            seq,
            name,
            location,
            polls: StatU64::new(0),
            last_poll: StatU64::new(0),
            polling: StatBool::new(false),
            released: StatBool::new(false),
            abandoned: StatBool::new(false),
            panicked: StatBool::new(false),
            #[cfg(feature = "tracing")]
            span,
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn name(&self) -> Option<&Cow<'static, str>> {
        self.name.as_ref()
    }

    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.location
    }

    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Reports a cancel through the task's handle at INFO, naming the task
    /// in fields, inside the task's span if it is enabled (`info_in_span!`).
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_cancel_through_handle(&self, scope: &ScopeInfo) {
        let (id, seq, name) = (scope.id(), self.seq, self.name.as_deref());
        let reason = crate::CancelReason::Requested;
        super::in_span::info_in_span!(
            &self.span,
            task = %format_args!("{id}.{seq}"),
            name,
            %reason,
            "taskscope: task cancelled through its handle"
        );
    }

    /// Reports the task's panic at ERROR, naming the task in fields: called
    /// inside the task's span, if it is enabled, else in the poller's.
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_panic(&self, scope: &ScopeInfo, reason: &dyn std::fmt::Display) {
        let (id, seq, name) = (scope.id(), self.seq, self.name.as_deref());
        tracing::error!(task = %format_args!("{id}.{seq}"), name, %reason, "taskscope: task panicked");
    }

    /// Called by the poller right before it polls the task.
    #[inline]
    pub(crate) fn begin_poll(&self, epoch: Instant) {
        // Relaxed, and not a read-modify-write: only the poller writes (see
        // the type's docs); snapshots read best-effort values.
        self.polls
            .store(self.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.polling.store(true, Ordering::Relaxed);
        if poll_times::enabled() {
            let since = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            // Relaxed: a diagnostic value; nothing else is published with it.
            self.last_poll.store(since + 1, Ordering::Relaxed);
        }
    }

    /// Called by the poller right after the poll returned.
    #[inline]
    pub(crate) fn end_poll(&self) {
        // Relaxed: a diagnostic flag, see `begin_poll`.
        self.polling.store(false, Ordering::Relaxed);
    }

    /// The task's handle took its output or was dropped.
    pub(crate) fn release(&self) {
        // Relaxed: a snapshot that misses it shows a finished task once more.
        self.released.store(true, Ordering::Relaxed);
    }

    /// The scope's shutdown drops the task unfinished. Set before the
    /// header is marked dead, which publishes it.
    pub(crate) fn abandon(&self) {
        // Relaxed: the `Release` store of `mark_dead` that follows publishes
        // it to a snapshot that sees the task dead (with an `Acquire` load).
        self.abandoned.store(true, Ordering::Relaxed);
    }

    /// The task's last poll panicked.
    pub(crate) fn mark_panicked(&self) {
        // Relaxed: as for `abandon`, the `Release` store that marks the task
        // dead afterwards publishes it.
        self.panicked.store(true, Ordering::Relaxed);
    }

    /// The task's handle re-raised its panic: nothing is left to show.
    pub(crate) fn panic_reraised(&self) {
        // Relaxed: a snapshot racing with the re-raise may show the panic
        // once more.
        self.panicked.store(false, Ordering::Relaxed);
    }

    pub(crate) fn has_panicked(&self) -> bool {
        // Relaxed: read after the `Acquire` load that saw the task dead.
        self.panicked.load(Ordering::Relaxed)
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        // Relaxed: read after the `Acquire` load that saw the task dead.
        self.abandoned.load(Ordering::Relaxed)
    }

    pub(crate) fn polls(&self) -> u64 {
        // Relaxed: best-effort diagnostics (see the type's docs).
        self.polls.load(Ordering::Relaxed)
    }

    pub(crate) fn is_polling(&self) -> bool {
        // Relaxed: best-effort diagnostics.
        self.polling.load(Ordering::Relaxed)
    }

    pub(crate) fn is_released(&self) -> bool {
        // Relaxed: best-effort diagnostics.
        self.released.load(Ordering::Relaxed)
    }

    /// When the last poll started, if a time was recorded.
    pub(crate) fn last_poll(&self, epoch: Instant) -> Option<Instant> {
        // Relaxed: best-effort diagnostics.
        let stored = self.last_poll.load(Ordering::Relaxed);
        let nanos = stored.checked_sub(1)?;
        epoch.checked_add(std::time::Duration::from_nanos(nanos))
    }
}
