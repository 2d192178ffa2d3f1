//! The refusal of a scope handle used after its scope ended: one message for
//! spawn, defer and adopt, saying how the scope ended.

/// How a scope ended, for the message that refuses late use of its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gone {
    /// The scope future returned its output.
    Returned,
    /// The scope future was dropped before it finished.
    Dropped,
}

impl Gone {
    /// Panics with what was wrong and what to do instead.
    #[track_caller]
    pub(crate) fn refuse(self, what: &str) -> ! {
        let how = match self {
            Gone::Returned => "has already finished (its scope returned)",
            Gone::Dropped => "was dropped before it finished",
        };
        panic!(
            "taskscope: {what} on a scope that {how}; a scope handle must not be used \
             after its scope ended ({what} from the scope's body or its children instead)"
        )
    }
}
