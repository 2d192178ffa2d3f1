//! [`SnapshotDisplay`]: the snapshot as an indented tree, with options.

use std::fmt::{self, Write};
use std::panic::Location;
use std::time::Duration;

use super::scope_snapshot::ScopeSnapshot;
use super::snapshot::Snapshot;
use super::task_snapshot::TaskSnapshot;
use super::task_state::TaskState;
use crate::cancel::CancelReason;

/// Writes a [`Snapshot`] as an indented tree, one line per scope or task:
///
/// ```text
/// scope 1 "server" (src/main.rs:20:10): cancelling (the deadline passed)
/// ├─ body 1.0: pending, 3 polls, last poll 1.204s ago
/// │  └─ scope 2 "batch" (src/main.rs:31:13): cancelling (a parent was cancelled: the deadline passed)
/// │     └─ task 2.1 "load" (src/main.rs:34:19): pending, 1 poll, last poll 1.203s ago, cancelling (with its scope)
/// └─ task 1.1 "listener" (src/main.rs:22:11): being polled, 7 polls, last poll 0ms ago, cancelling (with its scope)
/// ```
///
/// In brackets, where the scope was made and where the task was spawned
/// ([`ScopeSnapshot::location`], [`TaskSnapshot::location`]); a body's is
/// its scope's, so its line leaves it out. A body is cancelled exactly when
/// its scope is, so its line does not repeat that either; a child cancelled because its scope was says `with its
/// scope`; a child cancelled on its own shows its own reason.
///
/// Made by [`Snapshot::display`]; the options leave out what changes from
/// run to run, to compare the output in tests.
#[derive(Clone, Copy, Debug)]
#[must_use = "a display does nothing until it is formatted"]
pub struct SnapshotDisplay<'a> {
    snapshot: &'a Snapshot,
    ids: bool,
    times: bool,
    locations: bool,
}

impl<'a> SnapshotDisplay<'a> {
    pub(crate) fn new(snapshot: &'a Snapshot) -> Self {
        SnapshotDisplay {
            snapshot,
            ids: true,
            times: true,
            locations: true,
        }
    }

    /// Leaves out scope and task ids.
    pub fn hide_ids(mut self) -> Self {
        self.ids = false;
        self
    }

    /// Leaves out the times since the last polls.
    pub fn hide_times(mut self) -> Self {
        self.times = false;
        self
    }

    /// Leaves out where scopes were made and tasks spawned.
    pub fn hide_locations(mut self) -> Self {
        self.locations = false;
        self
    }

    fn location(&self, f: &mut fmt::Formatter<'_>, location: &Location<'_>) -> fmt::Result {
        if self.locations {
            write!(f, " ({location})")?;
        }
        Ok(())
    }

    fn scope(
        &self,
        f: &mut fmt::Formatter<'_>,
        scope: &ScopeSnapshot,
        prefix: &str,
    ) -> fmt::Result {
        f.write_str("scope")?;
        if self.ids {
            write!(f, " {}", scope.id)?;
        }
        if let Some(name) = &scope.name {
            write!(f, " {name:?}")?;
        }
        self.location(f, scope.location)?;
        if let Some(reason) = &scope.cancelled {
            write!(f, ": cancelling ({})", OneLine(reason))?;
        }
        f.write_char('\n')?;
        let count = scope.all_tasks().count();
        for (position, task) in scope.all_tasks().enumerate() {
            let last = position + 1 == count;
            let (branch, next) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            write!(f, "{prefix}{branch}")?;
            self.task(f, scope, task, &format!("{prefix}{next}"))?;
        }
        Ok(())
    }

    fn task(
        &self,
        f: &mut fmt::Formatter<'_>,
        scope: &ScopeSnapshot,
        task: &TaskSnapshot,
        prefix: &str,
    ) -> fmt::Result {
        f.write_str(if task.is_body() { "body" } else { "task" })?;
        if self.ids {
            write!(f, " {}.{}", scope.id, task.id)?;
        }
        if let Some(name) = &task.name {
            write!(f, " {name:?}")?;
        }
        if !task.is_body() {
            self.location(f, task.location)?;
        }
        let plural = if task.polls == 1 { "" } else { "s" };
        write!(f, ": {}, {} poll{plural}", task.state, task.polls)?;
        if let (true, Some(since)) = (self.times, task.since_last_poll) {
            write!(f, ", last poll {} ago", Millis(since))?;
        }
        // Only a task that still runs can be winding down. What the scope's
        // line already says is not repeated on every task.
        match &task.cancelled {
            _ if matches!(
                task.state,
                TaskState::Finished
                    | TaskState::Panicked
                    | TaskState::Returned
                    | TaskState::Dropped
            ) => {}
            None => {}
            Some(_) if task.is_body() => {}
            Some(CancelReason::Parent(_)) if scope.cancelled.is_some() => {
                f.write_str(", cancelling (with its scope)")?;
            }
            Some(reason) => write!(f, ", cancelling ({})", OneLine(reason))?,
        }
        f.write_char('\n')?;
        let count = task.scopes.len();
        for (position, nested) in task.scopes.iter().enumerate() {
            let last = position + 1 == count;
            let (branch, next) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            write!(f, "{prefix}{branch}")?;
            self.scope(f, nested, &format!("{prefix}{next}"))?;
        }
        Ok(())
    }
}

impl fmt::Display for SnapshotDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.snapshot.is_empty() {
            return f.write_str("(no scope)\n");
        }
        for scope in &self.snapshot.scopes {
            self.scope(f, scope, "")?;
        }
        Ok(())
    }
}

/// A reason on one line: a panic's message or an error's `Debug` may span
/// several (a failed `assert_eq!`), and the tree has one line per entry.
struct OneLine<'a>(&'a CancelReason);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapeBreaks(f), "{}", self.0)
    }
}

/// Writes through to a formatter with line breaks escaped as `\n`, `\r`.
struct EscapeBreaks<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapeBreaks<'_, '_> {
    fn write_str(&mut self, mut text: &str) -> fmt::Result {
        while let Some(at) = text.find(['\n', '\r']) {
            self.0.write_str(&text[..at])?;
            self.0.write_str(if text.as_bytes()[at] == b'\n' {
                "\\n"
            } else {
                "\\r"
            })?;
            text = &text[at + 1..];
        }
        self.0.write_str(text)
    }
}

/// A duration to the millisecond: `412ms`, `3.071s`.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis < 1000 {
            write!(f, "{millis}ms")
        } else {
            write!(f, "{}.{:03}s", millis / 1000, millis % 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::Location;

    fn task(id: u64, name: Option<&'static str>, scopes: Vec<ScopeSnapshot>) -> TaskSnapshot {
        TaskSnapshot {
            id,
            name: name.map(Into::into),
            location: Location::caller(),
            state: TaskState::Pending,
            cancelled: None,
            polls: 1,
            since_last_poll: Some(Duration::from_millis(1500)),
            scopes,
        }
    }

    fn scope(id: u64, body: Option<TaskSnapshot>, tasks: Vec<TaskSnapshot>) -> ScopeSnapshot {
        ScopeSnapshot {
            id,
            name: None,
            location: Location::caller(),
            cancelled: None,
            body,
            tasks,
        }
    }

    #[test]
    fn nested_scopes_are_drawn_under_their_task_with_guides() {
        let inner = scope(2, None, vec![task(1, Some("leaf"), vec![])]);
        let mut outer = scope(
            1,
            Some(task(0, None, vec![inner])),
            vec![task(1, Some("a"), vec![]), task(2, None, vec![])],
        );
        outer.cancelled = Some(CancelReason::Deadline);
        outer.tasks[0].cancelled = Some(CancelReason::Deadline.inherited());
        outer.tasks[1].state = TaskState::Finished;
        outer.tasks[1].cancelled = Some(CancelReason::Deadline);
        let snapshot = Snapshot {
            scopes: vec![outer],
        };
        assert_eq!(
            snapshot.display().hide_locations().to_string(),
            "scope 1: cancelling (the deadline passed)\n\
             ├─ body 1.0: pending, 1 poll, last poll 1.500s ago\n\
             │  └─ scope 2\n\
             │     └─ task 2.1 \"leaf\": pending, 1 poll, last poll 1.500s ago\n\
             ├─ task 1.1 \"a\": pending, 1 poll, last poll 1.500s ago, cancelling (with its scope)\n\
             └─ task 1.2: finished, not joined, 1 poll, last poll 1.500s ago\n"
        );
    }

    #[test]
    fn options_leave_out_ids_and_times() {
        let snapshot = Snapshot {
            scopes: vec![scope(7, None, vec![task(3, Some("x"), vec![])])],
        };
        let text = snapshot
            .display()
            .hide_ids()
            .hide_times()
            .hide_locations()
            .to_string();
        assert_eq!(text, "scope\n└─ task \"x\": pending, 1 poll\n");
    }

    #[test]
    fn locations_show_in_brackets_except_on_bodies() {
        let mut outer = scope(1, Some(task(0, None, vec![])), vec![task(1, None, vec![])]);
        let (made, spawned) = (Location::caller(), Location::caller());
        outer.location = made;
        outer.tasks[0].location = spawned;
        let snapshot = Snapshot {
            scopes: vec![outer],
        };
        let text = snapshot.display().hide_ids().hide_times().to_string();
        assert_eq!(
            text,
            format!(
                "scope ({made})\n├─ body: pending, 1 poll\n└─ task ({spawned}): pending, 1 poll\n"
            )
        );
    }

    #[test]
    fn a_reason_spanning_lines_is_written_on_one() {
        let mut outer = scope(1, None, vec![task(1, None, vec![])]);
        let message = "assertion failed\n  left: 2\r\n right: 3".to_owned();
        outer.cancelled = Some(CancelReason::Panicked(message.into()));
        outer.tasks[0].cancelled = Some(CancelReason::Deadline);
        let snapshot = Snapshot {
            scopes: vec![outer],
        };
        let text = snapshot.display().hide_ids().hide_times().to_string();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.contains("assertion failed\\n  left: 2\\r\\n right: 3"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_snapshot_says_so() {
        assert_eq!(Snapshot::default().to_string(), "(no scope)\n");
    }

    #[test]
    fn durations_read_in_milliseconds() {
        assert_eq!(Millis(Duration::from_micros(412_900)).to_string(), "412ms");
        assert_eq!(Millis(Duration::from_millis(3071)).to_string(), "3.071s");
    }
}
