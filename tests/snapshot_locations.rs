//! Snapshots name the lines that made each scope and spawned each task.

use std::panic::Location;
use std::pin::pin;

use futures::executor::block_on;
use futures::{StreamExt, poll, stream};
use taskscope::{Builder, ScopedStreamExt, Snapshot, TaskSnapshot};

#[track_caller]
fn assert_at(location: &Location<'_>, line: u32) {
    assert_eq!(
        (location.file(), location.line()),
        (file!(), line),
        "{location}"
    );
}

fn child(snapshot: &Snapshot, id: u64) -> &TaskSnapshot {
    let tasks = &snapshot.scopes[0].tasks;
    tasks
        .iter()
        .find(|task| task.id == id)
        .expect("the child runs")
}

#[test]
fn a_scope_shows_where_it_was_made_and_its_children_where_they_were_spawned() {
    let made = line!() + 1;
    let (snapshot, lines) = block_on(taskscope::scope(|s| async move {
        let first = line!() + 1;
        s.spawn(taskscope::cancelled());
        let second = line!() + 1;
        s.spawn_named("second", taskscope::cancelled());
        let snapshot = s.snapshot();
        s.cancel();
        (snapshot, [first, second])
    }));
    let scope = &snapshot.scopes[0];
    assert_at(scope.location, made);
    let body = scope.body.as_ref().expect("the body runs");
    assert_eq!(
        body.location, scope.location,
        "a body starts where its scope was made"
    );
    assert_at(child(&snapshot, 1).location, lines[0]);
    assert_at(child(&snapshot, 2).location, lines[1]);
}

#[test]
fn the_display_shows_the_locations_in_brackets() {
    let text = block_on(Builder::new().name("shown").scope(|s| async move {
        s.spawn(taskscope::cancelled());
        let text = s.snapshot().display().hide_ids().hide_times().to_string();
        s.cancel();
        text
    }));
    let lines: Vec<&str> = text.lines().collect();
    let here = format!("({}:", file!());
    assert!(
        lines[0].starts_with(&format!("scope \"shown\" {here}")),
        "{text}"
    );
    assert_eq!(lines[1], "├─ body: being polled, 1 poll", "{text}");
    assert!(lines[2].starts_with(&format!("└─ task {here}")), "{text}");
}

#[test]
fn builder_scopes_and_try_scopes_record_their_callers_lines() {
    let made = line!() + 1;
    let (snapshot, spawned) = block_on(Builder::new().try_scope(|s| async move {
        let spawned = line!() + 1;
        s.spawn_try(async {
            taskscope::cancelled().await;
            Ok(())
        });
        let snapshot = s.snapshot();
        s.cancel();
        Ok::<_, String>((snapshot, spawned))
    }))
    .expect("the body returns Ok");
    assert_at(snapshot.scopes[0].location, made);
    assert_at(child(&snapshot, 1).location, spawned);
}

#[cfg(feature = "parallel")]
#[test]
fn a_parallel_scope_records_its_callers_lines() {
    let made = line!() + 1;
    let (snapshot, spawned) = block_on(taskscope::par_scope(|s| async move {
        let spawned = line!() + 1;
        s.spawn(taskscope::cancelled());
        let snapshot = s.snapshot();
        s.cancel();
        (snapshot, spawned)
    }));
    assert_at(snapshot.scopes[0].location, made);
    assert_at(child(&snapshot, 1).location, spawned);
}

#[test]
fn a_local_scope_records_its_callers_lines() {
    let made = line!() + 1;
    let (snapshot, spawned) = block_on(taskscope::local_scope(|s| async move {
        let spawned = line!() + 1;
        s.spawn(taskscope::cancelled());
        let snapshot = s.snapshot();
        s.cancel();
        (snapshot, spawned)
    }));
    assert_at(snapshot.scopes[0].location, made);
    assert_at(child(&snapshot, 1).location, spawned);
}

/// The adapters spawn from their polls, inside this crate: their children
/// show the line that made the adapter, where the user asked for them.
#[test]
fn stream_adapters_children_show_the_line_that_made_the_adapter() {
    let lines = block_on(taskscope::scope(|s| async move {
        let items = || stream::iter([(), ()]).map(|()| taskscope::cancelled());
        let made_buffered = line!() + 1;
        let mut buffered = items().buffered_in(2, &s);
        assert!(poll!(buffered.next()).is_pending(), "the items wait");
        let made_unordered = line!() + 1;
        let mut unordered = items().buffer_unordered_in(2, &s);
        assert!(poll!(unordered.next()).is_pending(), "the items wait");
        let made_each = line!() + 1;
        let mut each = pin!(items().for_each_in(2, &s, |cancelled| async move {
            cancelled.await;
        }));
        assert!(poll!(each.as_mut()).is_pending(), "the bodies wait");
        let snapshot = s.snapshot();
        s.cancel();
        each.await;
        let spawned: Vec<u32> = snapshot.scopes[0]
            .tasks
            .iter()
            .map(|task| {
                assert_eq!(task.location.file(), file!());
                task.location.line()
            })
            .collect();
        drop((buffered, unordered));
        (spawned, [made_buffered, made_unordered, made_each])
    }));
    let (spawned, made) = lines;
    let expected: Vec<u32> = made.iter().flat_map(|&line| [line, line]).collect();
    assert_eq!(spawned, expected);
}
