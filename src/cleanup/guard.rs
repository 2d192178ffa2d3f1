//! What [`Adopted`](crate::Adopted) and [`LocalAdopted`](crate::LocalAdopted)
//! share: the value, its slot on the clean-up stack and the way back to it.

use std::fmt;

/// How a guard gives its value back to the scope that adopted it.
///
/// Implemented by the two scope handles; the guards hold it as a trait
/// object so that their only type parameter is the value's type.
pub(crate) trait HandBack<V> {
    /// The guard was dropped: the scope runs `prepare_drop`, then drops `value`.
    fn hand_back(&self, slot: u64, value: V);
    /// The value was closed in place: its slot on the stack goes.
    fn release(&self, slot: u64);
}

pub(crate) struct Guard<'a, V, S: ?Sized + HandBack<V>> {
    /// The value's place on the clean-up stack, reserved by `adopt`.
    slot: u64,
    /// `None` only while the guard is being dismantled.
    value: Option<V>,
    scope: &'a S,
}

impl<'a, V, S: ?Sized + HandBack<V>> Guard<'a, V, S> {
    pub(crate) fn new(slot: u64, value: V, scope: &'a S) -> Self {
        Guard {
            slot,
            value: Some(value),
            scope,
        }
    }

    pub(crate) fn get(&self) -> &V {
        self.value.as_ref().expect("an adopted value is present until its guard goes")
    }

    pub(crate) fn get_mut(&mut self) -> &mut V {
        self.value.as_mut().expect("an adopted value is present until its guard goes")
    }

    /// `prepare_drop` completed in place: drop the value now and free its slot.
    pub(crate) fn finish(mut self) {
        let value = self.value.take();
        self.scope.release(self.slot);
        drop(value);
    }
}

impl<V, S: ?Sized + HandBack<V>> Drop for Guard<'_, V, S> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.scope.hand_back(self.slot, value);
        }
    }
}

impl<V: fmt::Debug, S: ?Sized + HandBack<V>> fmt::Debug for Guard<'_, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => value.fmt(f),
            None => f.write_str("<closed>"),
        }
    }
}
