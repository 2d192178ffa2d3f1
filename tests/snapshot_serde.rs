//! The `serde` feature: snapshots serialize, reasons as their text.
#![cfg(feature = "serde")]

use futures::executor::block_on;
use taskscope::{Builder, CancelReason};

#[test]
fn a_snapshot_serializes_with_names_states_and_reasons_as_text() {
    let snapshot = block_on(Builder::new().name("serialized").scope(|s| async move {
        s.spawn_named("worker", taskscope::cancelled());
        s.token().cancel_with(CancelReason::Deadline);
        s.snapshot()
    }));
    let value = serde_json::to_value(&snapshot).unwrap();
    let scope = &value["scopes"][0];
    assert_eq!(scope["name"], "serialized");
    assert_eq!(scope["cancelled"], "the deadline passed");
    assert_eq!(scope["body"]["id"], 0);
    assert_eq!(scope["body"]["state"], "Polling");
    let worker = &scope["tasks"][0];
    assert_eq!(worker["name"], "worker");
    assert_eq!(worker["state"], "Pending");
    assert_eq!(worker["polls"], 0);
    assert_eq!(
        worker["cancelled"],
        "a parent was cancelled: the deadline passed"
    );
    assert!(worker["scopes"].as_array().unwrap().is_empty());
}

#[test]
fn locations_serialize_as_file_line_column() {
    let made = line!() + 1;
    let snapshot = block_on(taskscope::scope(|s| async move {
        let snapshot = s.snapshot();
        s.cancel();
        snapshot
    }));
    let value = serde_json::to_value(&snapshot).unwrap();
    let location = value["scopes"][0]["location"].as_str().unwrap();
    let prefix = format!("{}:{made}:", file!());
    assert!(location.starts_with(&prefix), "{location}");
    let column = &location[prefix.len()..];
    assert!(column.parse::<u32>().is_ok(), "{location}");
    assert_eq!(value["scopes"][0]["body"]["location"], location);
}

#[test]
fn times_serialize_as_serde_durations_and_ids_as_numbers_in_their_scope() {
    taskscope::record_poll_times();
    let snapshot = block_on(taskscope::scope(|s| async move {
        s.spawn(taskscope::cancelled());
        let snapshot = s.snapshot();
        s.cancel();
        snapshot
    }));
    let value = serde_json::to_value(&snapshot).unwrap();
    let body = &value["scopes"][0]["body"];
    assert!(body["since_last_poll"]["secs"].is_u64(), "{body}");
    assert!(body["since_last_poll"]["nanos"].is_u64(), "{body}");
    assert_eq!(value["scopes"][0]["tasks"][0]["id"], 1);
}
