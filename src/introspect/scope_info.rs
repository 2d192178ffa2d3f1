//! What a scope's shared part keeps for snapshots and tracing.

use std::borrow::Cow;
use std::panic::Location;
use std::time::Instant;

use crate::cancel::CancelToken;
use crate::scope::cell::TaskRef;
use crate::sync::{Ordering, StatBool, StatU64};

/// Scope ids are unique in the process; 0 is never handed out.
static NEXT_SCOPE_ID: StatU64 = StatU64::new(1);

/// The diagnostic part of a [`ScopeShared`](crate::scope::shared::ScopeShared).
pub(crate) struct ScopeInfo {
    id: u64,
    name: Option<Cow<'static, str>>,
    /// Where the scope was made: the line that called `scope`, `par_scope`,
    /// a `Builder`'s method, ...
    location: &'static Location<'static>,
    /// Poll times of the scope's tasks are stored relative to this.
    epoch: Instant,
    /// The task that was being polled when the scope was created: the
    /// scope shows under it. A strong link upwards (tasks link down weakly).
    parent: Option<TaskRef>,
    /// The scope finished or was dropped: no longer part of any tree, even
    /// if stray wakers keep this shared part alive.
    retired: StatBool,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl ScopeInfo {
    pub(crate) fn new(
        name: Option<Cow<'static, str>>,
        parent: Option<TaskRef>,
        location: &'static Location<'static>,
    ) -> Self {
        // Relaxed: only uniqueness matters, which the read-modify-write gives.
        let id = NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(
            "taskscope.scope",
            id,
            name = name.as_deref(),
            at = %location
        );
        ScopeInfo {
            id,
            name,
            location,
            epoch: Instant::now(),
            parent,
            retired: StatBool::new(false),
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// A scope with no name and no parent (unit tests).
    #[cfg(test)]
    #[track_caller]
    pub(crate) fn root() -> Self {
        ScopeInfo::new(None, None, Location::caller())
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&Cow<'static, str>> {
        self.name.as_ref()
    }

    /// The `scope` and `name` fields of the events about this scope.
    #[cfg(feature = "tracing")]
    pub(crate) fn event_fields(&self) -> (u64, Option<&str>) {
        (self.id, self.name.as_deref())
    }

    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.location
    }

    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    pub(crate) fn parent(&self) -> Option<&TaskRef> {
        self.parent.as_ref()
    }

    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    pub(crate) fn retire(&self) {
        // Relaxed: a snapshot racing with the end of the scope may show it
        // once more; nothing else depends on the flag.
        self.retired.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_retired(&self) -> bool {
        // Relaxed: see `retire`.
        self.retired.load(Ordering::Relaxed)
    }

    /// With `tracing`: an event when the scope's token is cancelled, with
    /// the reason. The callback holds the span only, never the scope, so
    /// the token does not keep the scope's shared part alive.
    #[cfg(feature = "tracing")]
    pub(crate) fn trace_cancellation(&self, token: &CancelToken) -> Option<crate::OnCancel> {
        if !tracing::enabled!(tracing::Level::INFO) {
            return None;
        }
        let span = self.span.clone();
        let (id, name) = (self.id, self.name.clone());
        Some(token.on_cancel(move |reason| {
            let name = name.as_deref();
            super::in_span::info_in_span!(&span, scope = id, name, %reason, "taskscope: scope cancelled");
        }))
    }

    #[cfg(not(feature = "tracing"))]
    pub(crate) fn trace_cancellation(&self, _token: &CancelToken) -> Option<crate::OnCancel> {
        None
    }
}
