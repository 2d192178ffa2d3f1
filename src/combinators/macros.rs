//! `join!`, `try_join!`, `race!` and `select!`: the fixed-arity forms for
//! any number of futures, with no allocation.
//!
//! Each macro evaluates its futures where it is written, wraps each in a
//! branch, and returns an `async` block that pins the branches on its own
//! state (no box) and drives them through one engine by `dyn` references.
//! The helper macros below are an implementation detail: they are exported
//! only because the public macros expand to them.

/// Runs any number of futures, of any types, concurrently; evaluates to a
/// future of the tuple of their outputs.
///
/// The macro form of [`join`](fn@crate::join), with the same behaviour: each
/// future is a branch with its own child token of the ambient token.
///
/// ```
/// # futures::executor::block_on(async {
/// let (a, b, c) = taskscope::join!(async { 1 }, async { 'b' }, async { "c" }).await;
/// assert_eq!((a, b, c), (1, 'b', "c"));
/// # });
/// ```
///
/// # Allocation
///
/// None (see [`join`](fn@crate::join)).
///
/// # Fairness
///
/// Each branch has its own waker; a poll polls only the branches woken
/// since the last one, starting one branch further along each time.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the future drops every branch where it is.
///
/// # Panics
///
/// A branch's panic cancels the others, waits for them, and is resumed.
/// Polling the future again after it completed (or panicked) panics.
#[macro_export]
macro_rules! join {
    ($($future:expr),+ $(,)?) => {
        $crate::__taskscope_bind!(join [] $($future,)+)
    };
}

/// Runs any number of futures returning `Result`s with one error type; on
/// the first `Err` the others are cancelled with
/// [`CancelReason::SiblingFailed`](crate::CancelReason::SiblingFailed) and
/// awaited, and that first error is returned. Evaluates to a future of
/// `Result<(T1, T2, ..), E>`.
///
/// ```
/// # futures::executor::block_on(async {
/// let all = taskscope::try_join!(async { Ok::<_, String>(1) }, async { Ok("two") }).await;
/// assert_eq!(all, Ok((1, "two")));
/// # });
/// ```
///
/// # Allocation
///
/// None (see [`try_join`](fn@crate::try_join)).
///
/// # Fairness
///
/// As [`join!`](crate::join!); of errors within one poll, the one polled
/// first is returned.
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the future drops every branch where it is.
///
/// # Panics
///
/// A branch's panic cancels the others, waits for them, and is resumed.
/// Polling the future again after it completed (or panicked) panics.
#[macro_export]
macro_rules! try_join {
    ($($future:expr),+ $(,)?) => {
        $crate::__taskscope_bind!(try_join [] $($future,)+)
    };
}

/// Runs any number of futures with one output type; evaluates to a future of
/// the first output, which completes once every loser has finished.
///
/// The macro form of [`race`](fn@crate::race): the losers' tokens are cancelled
/// with [`CancelReason::LostRace`](crate::CancelReason::LostRace), they are
/// polled until they return, and their outputs are dropped.
///
/// ```
/// # futures::executor::block_on(async {
/// let winner = taskscope::race!(
///     async { taskscope::cancelled().await; 1 },
///     async { 2 },
///     async { taskscope::cancelled().await; 3 },
/// )
/// .await;
/// assert_eq!(winner, 2);
/// # });
/// ```
///
/// # Allocation
///
/// None (see [`race`](fn@crate::race)).
///
/// # Fairness
///
/// Each branch has its own waker; a poll polls only the branches woken
/// since the last one (and every loser once, when the race cancels it),
/// starting one branch further along each time (a new `race!` at a
/// pseudo-random branch); of branches finishing within one poll, the one
/// polled first wins. A cancellation from outside reaches a branch only
/// through its token's wakers, as for [`race`](fn@crate::race#fairness).
///
/// # Cancel safety
///
/// Not cancel-safe: dropping the future drops every branch where it is.
///
/// # Panics
///
/// A branch's panic cancels the others, waits for them, and is resumed.
/// Polling the future again after it completed (or panicked) panics.
#[macro_export]
macro_rules! race {
    ($($future:expr),+ $(,)?) => {
        $crate::__taskscope_bind!(race [] $($future,)+)
    };
}

/// Runs any number of futures with one output type; evaluates to a future of
/// the first output, and **drops the losers at once**.
///
/// The macro form of [`select`](fn@crate::select): only for cancel-safe
/// futures. Where a loser might be half-way through some work, use
/// [`race!`](crate::race!).
///
/// ```
/// use std::future::pending;
///
/// # futures::executor::block_on(async {
/// let first = taskscope::select!(pending(), async { "ready" }, pending()).await;
/// assert_eq!(first, "ready");
/// # });
/// ```
///
/// # Allocation
///
/// None (see [`select`](fn@crate::select)).
///
/// # Fairness
///
/// As [`race!`](crate::race!).
///
/// # Cancel safety
///
/// Cancel-safe exactly when every branch is.
///
/// # Panics
///
/// A branch's panic drops the other branches and is resumed at once.
/// Polling the future again after it completed (or panicked) panics.
#[macro_export]
macro_rules! select {
    ($($future:expr),+ $(,)?) => {
        $crate::__taskscope_bind!(select [] $($future,)+)
    };
}

/// Binds each future to a branch, one nested block per future (each
/// expansion's `branch` is a distinct identifier to the compiler), then
/// builds the `async` block that drives them, wrapped in `Once` so that a
/// poll after completion names the macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __taskscope_bind {
    ($kind:ident [$($done:ident)*] $future:expr, $($rest:expr,)*) => {{
        let branch = $crate::__private::Branch::new($future, $crate::__taskscope_kind!(flag $kind));
        $crate::__taskscope_bind!($kind [$($done)* branch] $($rest,)*)
    }};
    ($kind:ident [$($done:ident)*]) => {
        $crate::__private::Once::new($crate::__taskscope_kind!(name $kind), async move {
            $( let mut $done = ::core::pin::pin!($done); )*
            let mut engine = $crate::__private::Engine::new(
                $crate::__taskscope_kind!(mode $kind),
                $crate::__taskscope_kind!(name $kind),
            );
            let chosen = ::core::future::poll_fn(|cx| {
                let mut list = [$(
                    $done.as_mut() as ::core::pin::Pin<&mut dyn $crate::__private::BranchDyn>,
                )*];
                $crate::__private::poll_fixed(&mut engine, &mut list, cx)
            })
            .await;
            $crate::__taskscope_finish!($kind chosen [$($done)*])
        })
    };
}

/// What differs between the macros: the branch flag, the engine mode, the
/// name in messages.
#[doc(hidden)]
#[macro_export]
macro_rules! __taskscope_kind {
    (flag join) => {
        $crate::__private::never
    };
    (flag try_join) => {
        $crate::__private::is_err
    };
    (flag race) => {
        $crate::__private::never
    };
    (flag select) => {
        $crate::__private::never
    };
    (mode join) => {
        $crate::__private::Mode::Join
    };
    (mode try_join) => {
        $crate::__private::Mode::TryJoin
    };
    (mode race) => {
        $crate::__private::Mode::Race
    };
    (mode select) => {
        $crate::__private::Mode::Select
    };
    (name join) => {
        "join!"
    };
    (name try_join) => {
        "try_join!"
    };
    (name race) => {
        "race!"
    };
    (name select) => {
        "select!"
    };
}

/// The output of a finished macro combinator, taken from its branches.
#[doc(hidden)]
#[macro_export]
macro_rules! __taskscope_finish {
    (join $chosen:ident [$($done:ident)*]) => {{
        let _ = $chosen;
        ($( $crate::__private::output($done.as_mut()), )*)
    }};
    (try_join $chosen:ident [$($done:ident)*]) => {
        match $chosen {
            ::core::option::Option::Some(_) => {
                let mut error = ::core::option::Option::None;
                $(
                    if error.is_none() {
                        error = $crate::__private::err_if_won($done.as_mut());
                    }
                )*
                ::core::result::Result::Err(
                    error.expect("taskscope: the branch that failed first holds its error"),
                )
            }
            ::core::option::Option::None => {
                ::core::result::Result::Ok(($( $crate::__private::ok($done.as_mut()), )*))
            }
        }
    };
    ($kind:ident $chosen:ident [$($done:ident)*]) => {{
        let _ = $chosen;
        let mut output = ::core::option::Option::None;
        $(
            if output.is_none() {
                output = $done.as_mut().take_if_won();
            }
        )*
        output.expect("taskscope: the winner holds its output")
    }};
}
