//! What [`Adopted`](crate::Adopted) and [`LocalAdopted`](crate::LocalAdopted)
//! share: the value, its slot on the clean-up stack and the way back to it.

use std::fmt;

/// How a guard gives its value back to the scope that adopted it.
///
/// Implemented by the two scope handles; each guard owns a clone of its
/// scope's handle, so it may move wherever the scope's children may go.
pub(crate) trait HandBack<V> {
    /// The guard was dropped: the scope runs `prepare_drop`, then drops `value`.
    fn hand_back(&self, slot: u64, value: V);
    /// The value was closed in place: its slot on the stack goes.
    fn release(&self, slot: u64);
}

pub(crate) struct Guard<V, S: HandBack<V>> {
    /// The value's place on the clean-up stack, reserved by `adopt`.
    slot: u64,
    /// `None` only while the guard is being dismantled.
    value: Option<V>,
    scope: S,
}

impl<V, S: HandBack<V>> Guard<V, S> {
    pub(crate) fn new(slot: u64, value: V, scope: S) -> Self {
        Guard {
            slot,
            value: Some(value),
            scope,
        }
    }

    pub(crate) fn get(&self) -> &V {
        self.value
            .as_ref()
            .expect("an adopted value is present until its guard goes")
    }

    pub(crate) fn get_mut(&mut self) -> &mut V {
        self.value
            .as_mut()
            .expect("an adopted value is present until its guard goes")
    }

    /// `prepare_drop` completed in place: drop the value now and free its slot.
    pub(crate) fn finish(mut self) {
        let value = self.value.take();
        self.scope.release(self.slot);
        drop(value);
    }
}

impl<V, S: HandBack<V>> Drop for Guard<V, S> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.scope.hand_back(self.slot, value);
        }
    }
}

impl<V: fmt::Debug, S: HandBack<V>> fmt::Debug for Guard<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => value.fmt(f),
            None => f.write_str("<closed>"),
        }
    }
}
