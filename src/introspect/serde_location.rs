//! Source locations in serialized snapshots: `file:line:column`.

use std::panic::Location;

use serde::Serializer;

/// Serializes a location as its `Display` text, the form editors and
/// terminals turn into a link (`Location` has no `Serialize` of its own).
pub(crate) fn serialize<S: Serializer>(
    location: &&'static Location<'static>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(location)
}
