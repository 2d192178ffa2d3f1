//! Why a token was cancelled, and the error a cancelled task returns.

use std::any::Any;
use std::fmt;

// Payloads are shared immutable data, not synchronisation: std's `Arc` even
// under loom (loom's `Arc` cannot hold `str` or `dyn Any`).
use std::sync::Arc;

/// Why a [`CancelToken`](crate::CancelToken) was cancelled.
///
/// Cloning is cheap: payloads sit behind `Arc`s, so handing a reason to every
/// node of a cancelled subtree allocates nothing per node.
#[derive(Clone)]
#[non_exhaustive]
pub enum CancelReason {
    /// Someone asked: [`CancelToken::cancel`](crate::CancelToken::cancel),
    /// [`Scope::cancel`](crate::Scope::cancel) (and `LocalScope`'s),
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel), or a stream
    /// adapter ([`buffered_in`](crate::ScopedStreamExt::buffered_in) and its
    /// siblings) cancelling the children it no longer wants, when it is
    /// cancelled or dropped.
    Requested,
    /// A deadline passed: [`cancel_when`](crate::cancel_when) and friends,
    /// or a scope's clean-up timeout
    /// ([`Builder::cleanup_timeout_when`](crate::Builder::cleanup_timeout_when),
    /// `cleanup_timeout`) cancelling the clean-ups still running.
    Deadline,
    /// The body of a [`try_scope`](crate::try_scope), one of its children or
    /// one of its [`defer_try`](crate::TryScope::defer_try) clean-ups returned an error; the text is the
    /// error's `Debug` rendering.
    Failed(Arc<str>),
    /// A scope's body or child, or a combinator's branch, panicked; the text
    /// is the panic message, where it was a string.
    Panicked(Arc<str>),
    /// The future lost a race to a sibling: a loser of
    /// [`race`](crate::race()), [`race!`](crate::race!),
    /// [`race_all`](crate::race_all), [`race_array`](crate::race_array) or
    /// [`race_ok`](crate::race_ok). (`select`'s losers are dropped, not
    /// cancelled.)
    LostRace,
    /// A sibling failed in [`try_join`](crate::try_join()),
    /// [`try_join!`](crate::try_join!), [`try_join_all`](crate::try_join_all)
    /// or [`try_join_array`](crate::try_join_array).
    SiblingFailed,
    /// The scope future was dropped before it finished, or the scope's body
    /// closure panicked before it returned the body's future.
    ScopeDropped,
    /// An ancestor token was cancelled; this is the reason it was given.
    Parent(Arc<CancelReason>),
    /// A value supplied by the user; see [`CancelReason::user`].
    User(Arc<dyn Any + Send + Sync>),
}

impl CancelReason {
    /// A reason carrying a value of the caller's choosing.
    ///
    /// ```
    /// use taskscope::{CancelReason, CancelToken};
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct Shutdown { grace_ms: u64 }
    ///
    /// let token = CancelToken::new();
    /// token.cancel_with(CancelReason::user(Shutdown { grace_ms: 500 }));
    /// let reason = token.reason().unwrap();
    /// assert_eq!(reason.user_value::<Shutdown>(), Some(&Shutdown { grace_ms: 500 }));
    /// ```
    ///
    /// A text value (`&'static str` or `String`) shows in the reason's
    /// `Display` and `Debug`, so that log lines keep it; other values show
    /// as `User(..)`:
    ///
    /// ```
    /// let reason = taskscope::CancelReason::user("SIGTERM");
    /// assert_eq!(reason.to_string(), "cancelled with a user-supplied reason: SIGTERM");
    /// assert_eq!(format!("{reason:?}"), r#"User("SIGTERM")"#);
    /// ```
    pub fn user<T: Any + Send + Sync>(value: T) -> Self {
        CancelReason::User(Arc::new(value))
    }

    /// The user value of a [`User`](CancelReason::User) reason, at any depth
    /// of [`Parent`](CancelReason::Parent) wrapping, if it has type `T`.
    pub fn user_value<T: Any>(&self) -> Option<&T> {
        match self.origin() {
            CancelReason::User(value) => (**value).downcast_ref(),
            _ => None,
        }
    }

    /// The reason the cancellation started with: `self`, or for a
    /// [`Parent`](CancelReason::Parent) reason, the ancestor's.
    pub fn origin(&self) -> &CancelReason {
        match self {
            CancelReason::Parent(inner) => inner.origin(),
            other => other,
        }
    }

    /// The form a descendant receives when `self` cancels an ancestor.
    ///
    /// Inheriting an inherited reason reuses its `Arc`. Allocates for any
    /// other reason; the token's cancel walk avoids even that by filling an
    /// allocation set aside beforehand (token.rs, I7).
    pub(crate) fn inherited(&self) -> CancelReason {
        match self {
            CancelReason::Parent(_) => self.clone(),
            other => CancelReason::Parent(Arc::new(other.clone())),
        }
    }

    /// The reason a [`try_scope`](crate::try_scope) is cancelled with when
    /// `error` is its first error: [`Failed`](CancelReason::Failed) with the
    /// error's `Debug` rendering.
    pub(crate) fn from_error(error: &dyn fmt::Debug) -> CancelReason {
        CancelReason::Failed(Arc::from(format!("{error:?}")))
    }

    /// A reason built from a panic payload, keeping its message if it has one.
    pub(crate) fn from_panic(payload: &(dyn Any + Send)) -> CancelReason {
        let message = if let Some(text) = payload.downcast_ref::<&'static str>() {
            *text
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.as_str()
        } else {
            "a panic with a non-string payload"
        };
        CancelReason::Panicked(Arc::from(message))
    }
}

impl fmt::Debug for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Requested => f.write_str("Requested"),
            CancelReason::Deadline => f.write_str("Deadline"),
            CancelReason::Failed(text) => f.debug_tuple("Failed").field(text).finish(),
            CancelReason::Panicked(text) => f.debug_tuple("Panicked").field(text).finish(),
            CancelReason::LostRace => f.write_str("LostRace"),
            CancelReason::SiblingFailed => f.write_str("SiblingFailed"),
            CancelReason::ScopeDropped => f.write_str("ScopeDropped"),
            CancelReason::Parent(inner) => f.debug_tuple("Parent").field(inner).finish(),
            CancelReason::User(value) => match user_text(value) {
                Some(text) => f.debug_tuple("User").field(&text).finish(),
                None => f.write_str("User(..)"),
            },
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Requested => f.write_str("cancellation was requested"),
            CancelReason::Deadline => f.write_str("the deadline passed"),
            CancelReason::Failed(text) => write!(f, "a task in the scope failed: {text}"),
            CancelReason::Panicked(text) => write!(f, "a task in the scope panicked: {text}"),
            CancelReason::LostRace => f.write_str("the future lost a race"),
            CancelReason::SiblingFailed => f.write_str("a sibling failed"),
            CancelReason::ScopeDropped => f.write_str("the scope was dropped before it finished"),
            CancelReason::Parent(inner) => write!(f, "a parent was cancelled: {inner}"),
            CancelReason::User(value) => {
                f.write_str("cancelled with a user-supplied reason")?;
                match user_text(value) {
                    Some(text) => write!(f, ": {text}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The text of a user value that is one (see [`CancelReason::user`]).
fn user_text(value: &Arc<dyn Any + Send + Sync>) -> Option<&str> {
    let value: &(dyn Any + Send + Sync) = &**value;
    (value.downcast_ref::<&'static str>().copied())
        .or_else(|| value.downcast_ref::<String>().map(String::as_str))
}

/// The error of an operation stopped by cancellation; carries the reason.
///
/// Tasks observe cancellation through ordinary error paths: `checkpoint()?`,
/// `token.cancelled().await`, or an I/O error wrapping this value.
///
/// ```
/// use taskscope::{CancelReason, CancelToken};
///
/// let token = CancelToken::new();
/// token.cancel_with(CancelReason::Deadline);
/// let error = token.check().unwrap_err();
/// assert!(matches!(error.reason(), CancelReason::Deadline));
/// assert_eq!(error.to_string(), "cancelled: the deadline passed");
/// ```
#[derive(Clone, Debug)]
pub struct Cancelled {
    reason: CancelReason,
}

impl Cancelled {
    /// An error carrying `reason`.
    pub fn new(reason: CancelReason) -> Self {
        Cancelled { reason }
    }

    /// Why the operation was cancelled.
    pub fn reason(&self) -> &CancelReason {
        &self.reason
    }

    /// The reason, by value.
    pub fn into_reason(self) -> CancelReason {
        self.reason
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled: {}", self.reason)
    }
}

impl std::error::Error for Cancelled {}

/// An I/O error of kind [`Other`](std::io::ErrorKind::Other) wrapping the
/// [`Cancelled`] value (reach it with `error.get_ref()` and `downcast_ref`).
///
/// Not `Interrupted`: that kind means "retry the call", and retry loops such
/// as `std::io::Read::read_exact` would spin forever on an operation that
/// keeps failing because its token stays cancelled.
impl From<Cancelled> for std::io::Error {
    fn from(cancelled: Cancelled) -> Self {
        std::io::Error::other(cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inheriting_twice_reuses_the_first_wrapping() {
        let first = CancelReason::Deadline.inherited();
        let second = first.inherited();
        match (&first, &second) {
            (CancelReason::Parent(a), CancelReason::Parent(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("inherited reasons must be Parent: {first:?} {second:?}"),
        }
        assert!(matches!(second.origin(), CancelReason::Deadline));
    }

    #[test]
    fn lost_race_says_so() {
        let error = Cancelled::new(CancelReason::LostRace);
        assert_eq!(error.to_string(), "cancelled: the future lost a race");
    }

    #[test]
    fn panic_reason_keeps_string_messages() {
        let payload: Box<dyn Any + Send> = Box::new(String::from("boom"));
        let reason = CancelReason::from_panic(&*payload);
        assert_eq!(reason.to_string(), "a task in the scope panicked: boom");
    }

    #[test]
    fn error_reason_is_the_debug_rendering() {
        let reason = CancelReason::from_error(&"disk full");
        assert!(matches!(&reason, CancelReason::Failed(text) if &**text == "\"disk full\""));
    }

    #[test]
    fn cancelled_converts_into_an_io_error_that_is_not_retried() {
        let io: std::io::Error = Cancelled::new(CancelReason::Requested).into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        let inner = io.get_ref().and_then(|e| e.downcast_ref::<Cancelled>());
        assert!(matches!(
            inner.map(Cancelled::reason),
            Some(CancelReason::Requested)
        ));
    }
}
