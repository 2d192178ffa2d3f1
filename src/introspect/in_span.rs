//! [`info_in_span!`]: an INFO event in a span that may be disabled.

/// An INFO event in `span` while that span is enabled, else in the current
/// span. The scope and task spans are DEBUG, so a subscriber at INFO
/// disables them, and an event whose explicit parent is a disabled span
/// belongs to no span at all (it would lose the caller's, a request's say).
macro_rules! info_in_span {
    ($span:expr, $($event:tt)+) => {{
        let span: &tracing::Span = $span;
        if span.is_disabled() {
            tracing::info!($($event)+);
        } else {
            tracing::info!(parent: span, $($event)+);
        }
    }};
}

pub(crate) use info_in_span;
