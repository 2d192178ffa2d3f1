//! [`Builder`]: a scope with explicit settings (its parent token).

use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;

use super::core::Core;
use super::driver::{Driver, RunBatch, call_body, run_serial};
use super::first_error::FirstError;
use super::handle::{Scope, SendTask};
use super::local::LocalScope;
use super::local_scope_future::LocalScopeFuture;
use super::local_try_scope::LocalTryScope;
use super::local_try_scope_future::LocalTryScopeFuture;
use super::scope_future::ScopeFuture;
use super::shared::ScopeShared;
use super::try_scope::TryScope;
use super::try_scope_future::{RecordBody, TryScopeFuture};
use crate::cancel::{CancelToken, ambient};
use crate::cleanup::CleanupTimeout;
use crate::cleanup::enclosing;
use crate::introspect::ScopeInfo;
use crate::sync::{Arc, WakerArc};

/// Configures a scope before it starts.
///
/// By default a scope's token is a child of the ambient token (the one of
/// the task that creates the scope), so cancelling an outer scope reaches
/// inner ones without passing anything; a scope future first polled under
/// another ambient token (a combinator's branch, a child task) follows that
/// one too. [`parent`](Self::parent) hangs the scope under a token of your
/// choice instead, e.g. an application's shutdown token:
///
/// ```
/// use taskscope::{Builder, CancelToken};
///
/// # futures::executor::block_on(async {
/// let shutdown = CancelToken::new();
/// shutdown.cancel();
/// let saw_it = Builder::new()
///     .parent(&shutdown)
///     .scope(|s| async move { s.token().is_cancelled() })
///     .await;
/// assert!(saw_it);
/// # });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    parent: Option<CancelToken>,
    /// Shown in snapshots and tracing spans.
    name: Option<Cow<'static, str>>,
    /// Set in src/cleanup/timeout.rs.
    pub(crate) cleanup_timeout: CleanupTimeout,
}

impl Builder {
    /// A builder with the defaults of [`scope`](crate::scope).
    pub fn new() -> Self {
        Builder::default()
    }

    /// Makes the scope's token a child of `token` rather than of the ambient
    /// one, where the scope is made and where it is first polled alike.
    pub fn parent(mut self, token: &CancelToken) -> Self {
        self.parent = Some(token.clone());
        self
    }

    /// Names the scope, for [snapshots](crate::snapshot) and, with the
    /// `tracing` feature, its span.
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let name = taskscope::Builder::new()
    ///     .name("requests")
    ///     .scope(|s| async move { s.snapshot().scopes[0].name.clone() })
    ///     .await;
    /// assert_eq!(name.as_deref(), Some("requests"));
    /// # });
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Starts a [`scope`](crate::scope) with these settings.
    ///
    /// # Cancel safety
    ///
    /// As for [`scope`](crate::scope): dropping the returned future before
    /// it completes cancels the scope's token with
    /// [`CancelReason::ScopeDropped`](crate::CancelReason::ScopeDropped),
    /// then drops the body and every unfinished child.
    ///
    /// # Panics
    ///
    /// `body` is called here, before the future exists: if the closure
    /// itself panics (rather than the future it returns), the panic
    /// propagates from this call once the children it spawned are dropped
    /// unpolled. Otherwise as for [`scope`](crate::scope).
    #[track_caller]
    pub fn scope<'env, F, Fut>(self, body: F) -> ScopeFuture<'env, Fut>
    where
        F: FnOnce(Scope<'env>) -> Fut,
        Fut: Future,
    {
        let core = Arc::new(self.core());
        let body = call_body(&core, || body(Scope::new(core.clone())));
        ScopeFuture::new(Driver::new(body, core, run_serial))
    }

    /// Starts a [`par_scope`](crate::par_scope) with these settings.
    ///
    /// # Cancel safety
    ///
    /// As for [`par_scope`](crate::par_scope#cancel-safety).
    ///
    /// # Panics
    ///
    /// `body` is called here, before the future exists: if the closure
    /// itself panics (rather than the future it returns), the panic
    /// propagates from this call once the children it spawned are dropped
    /// unpolled. Otherwise as for
    /// [`par_scope`](crate::par_scope#panics).
    #[cfg(feature = "parallel")]
    #[track_caller]
    pub fn par_scope<'env, F, Fut>(self, body: F) -> ScopeFuture<'env, Fut>
    where
        F: FnOnce(Scope<'env>) -> Fut,
        Fut: Future,
    {
        let core = Arc::new(self.core());
        let body = call_body(&core, || body(Scope::new(core.clone())));
        ScopeFuture::new(Driver::new(body, core, super::parallel::run_parallel))
    }

    /// Starts a [`try_scope`](crate::try_scope) with these settings.
    ///
    /// # Cancel safety
    ///
    /// As for [`TryScopeFuture`](crate::TryScopeFuture#cancel-safety).
    ///
    /// # Panics
    ///
    /// `body` is called here, before the future exists: if the closure
    /// itself panics (rather than the future it returns), the panic
    /// propagates from this call once the children it spawned are dropped
    /// unpolled. Otherwise as for
    /// [`try_scope`](crate::try_scope#panics).
    #[track_caller]
    pub fn try_scope<'env, F, Fut, R, E>(self, body: F) -> TryScopeFuture<'env, Fut, R, E>
    where
        F: FnOnce(TryScope<'env, E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: std::fmt::Debug,
    {
        self.try_scope_with(body, run_serial)
    }

    /// Starts a [`try_par_scope`](crate::try_par_scope) with these settings.
    ///
    /// # Cancel safety
    ///
    /// As for [`TryScopeFuture`](crate::TryScopeFuture#cancel-safety).
    ///
    /// # Panics
    ///
    /// `body` is called here, before the future exists: if the closure
    /// itself panics (rather than the future it returns), the panic
    /// propagates from this call once the children it spawned are dropped
    /// unpolled. Otherwise as for
    /// [`try_par_scope`](crate::try_par_scope#panics).
    #[cfg(feature = "parallel")]
    #[track_caller]
    pub fn try_par_scope<'env, F, Fut, R, E>(self, body: F) -> TryScopeFuture<'env, Fut, R, E>
    where
        F: FnOnce(TryScope<'env, E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: std::fmt::Debug,
    {
        self.try_scope_with(body, super::parallel::run_parallel)
    }

    /// A try scope whose ready children `run_batch` polls.
    #[track_caller]
    fn try_scope_with<'env, F, Fut, R, E>(
        self,
        body: F,
        run_batch: RunBatch<SendTask<'env>>,
    ) -> TryScopeFuture<'env, Fut, R, E>
    where
        F: FnOnce(TryScope<'env, E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: std::fmt::Debug,
    {
        let core = Arc::new(self.core());
        let (body, errors) = call_try_body(&core, |errors| {
            body(TryScope::new(Scope::new(core.clone()), errors))
        });
        let inner = ScopeFuture::new(Driver::new(body, core, run_batch));
        TryScopeFuture::new(inner, errors)
    }

    /// Starts a [`local_try_scope`](crate::local_try_scope) with these
    /// settings.
    ///
    /// # Cancel safety
    ///
    /// As for [`TryScopeFuture`](crate::TryScopeFuture#cancel-safety).
    ///
    /// # Panics
    ///
    /// `body` is called here, before the future exists: if the closure
    /// itself panics (rather than the future it returns), the panic
    /// propagates from this call once the children it spawned are dropped
    /// unpolled. Otherwise as for
    /// [`try_scope`](crate::try_scope#panics).
    #[track_caller]
    pub fn local_try_scope<'env, F, Fut, R, E>(
        self,
        body: F,
    ) -> LocalTryScopeFuture<'env, Fut, R, E>
    where
        F: FnOnce(LocalTryScope<'env, E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
        E: std::fmt::Debug,
    {
        // As in `local_scope`: the core never crosses a thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let core = Arc::new(self.core());
        let (body, errors) = call_try_body(&core, |errors| {
            body(LocalTryScope::new(LocalScope::new(core.clone()), errors))
        });
        let inner = LocalScopeFuture::new(Driver::new(body, core, run_serial));
        LocalTryScopeFuture::new(inner, errors)
    }

    /// Starts a [`local_scope`](crate::local_scope) with these settings.
    ///
    /// # Cancel safety
    ///
    /// As for [`scope`](crate::scope): dropping the returned future before
    /// it completes cancels the scope's token with
    /// [`CancelReason::ScopeDropped`](crate::CancelReason::ScopeDropped),
    /// then drops the body and every unfinished child.
    ///
    /// # Panics
    ///
    /// `body` is called here, before the future exists: if the closure
    /// itself panics (rather than the future it returns), the panic
    /// propagates from this call once the children it spawned are dropped
    /// unpolled. Otherwise as for [`scope`](crate::scope).
    #[track_caller]
    pub fn local_scope<'env, F, Fut>(self, body: F) -> LocalScopeFuture<'env, Fut>
    where
        F: FnOnce(LocalScope<'env>) -> Fut,
        Fut: Future,
    {
        // One core type serves both flavours; with `!Send` children it is
        // `!Sync`, so this `Arc` never crosses a thread (an `Rc` would need
        // a second core).
        #[allow(clippy::arc_with_non_send_sync)]
        let core = Arc::new(self.core());
        let body = call_body(&core, || body(LocalScope::new(core.clone())));
        LocalScopeFuture::new(Driver::new(body, core, run_serial))
    }

    #[track_caller]
    pub(crate) fn core<T: ?Sized>(&self) -> Core<T> {
        Core::new(self.shared()).with_cleanup_timeout(self.cleanup_timeout.clone())
    }

    #[track_caller]
    pub(crate) fn shared(&self) -> WakerArc<ScopeShared> {
        let parent = self.parent.clone().or_else(ambient::current_token_in_task);
        let token = parent.map_or_else(CancelToken::new, |parent| parent.child());
        // In the tree, the scope belongs to the task that creates it, even
        // when its token hangs under another one (`parent`).
        let task = ambient::current_task();
        let info = ScopeInfo::new(self.name.clone(), task.clone(), Location::caller());
        let cleanup = enclosing::enclosing_cleanup(task.as_ref());
        let shared = ScopeShared::new(token, info)
            .following_its_poller(self.parent.is_none())
            .inside_cleanup(cleanup);
        let shared = WakerArc::new(shared);
        if let Some(task) = task {
            task.shared().adopt_scope(&shared);
        }
        shared
    }
}

/// Calls a try scope's body closure with the scope's new first-error slot;
/// returns its future, wrapped to record its `Err`, and the slot.
fn call_try_body<T: ?Sized, Fut, R, E>(
    core: &Core<T>,
    body: impl FnOnce(Arc<FirstError<E>>) -> Fut,
) -> (RecordBody<Fut, E>, Arc<FirstError<E>>)
where
    Fut: Future<Output = Result<R, E>>,
    E: std::fmt::Debug,
{
    let errors = Arc::new(FirstError::new(core.shared().token().clone()));
    let body = call_body(core, || body(errors.clone()));
    (RecordBody::new(body, errors.clone()), errors)
}
