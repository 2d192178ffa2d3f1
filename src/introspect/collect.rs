//! Walking the scope tree into a snapshot.
//!
//! The walk holds at most one lock at a time, and each only long enough to
//! copy pointers out: a scope's ready-queue lock (for its registered
//! headers), a scope's list of nested scopes, a lazy token's lock. None of
//! these is held by the poll path while it runs user code, and none is
//! taken while another is held, so a snapshot cannot deadlock against the
//! scope it looks at, even from inside one of that scope's children.

use std::collections::HashMap;
use std::time::Instant;

use super::scope_snapshot::ScopeSnapshot;
use super::task_snapshot::TaskSnapshot;
use super::task_state::TaskState;
use crate::cancel::Cancelled;
use crate::scope::cell::TaskRef;
use crate::scope::shared::ScopeShared;
use crate::scope::task::{DEAD, TaskHeader};
use crate::sync::WakerArc;

/// Deeper scopes are left out. The tree cannot have cycles (a scope is
/// registered under a task of an older scope), so this only bounds the
/// stack a pathological nesting would use.
const MAX_DEPTH: usize = 256;

pub(crate) fn scope(shared: &ScopeShared, now: Instant, depth: usize) -> Option<ScopeSnapshot> {
    let info = shared.info();
    if info.is_retired() || depth > MAX_DEPTH {
        return None;
    }
    // Nested scopes, by the address of the header of the task they were
    // created in, with that header.
    let mut nested: HashMap<usize, (TaskRef, Vec<WakerArc<ScopeShared>>)> = HashMap::new();
    for scope in shared.nested_scopes() {
        if let Some(parent) = scope.info().parent() {
            let (_, scopes) = nested
                .entry(parent.addr())
                .or_insert_with(|| (parent.clone(), Vec::new()));
            scopes.push(scope);
        }
    }
    let mut body = None;
    let mut tasks = Vec::new();
    let registered: Vec<_> = shared
        .headers()
        .into_iter()
        .map(|header| {
            let scopes = nested.remove(&header.addr()).map(|(_, scopes)| scopes);
            (header, scopes.unwrap_or_default())
        })
        .collect();
    // A creator no longer registered (its slot went to a newer child) still
    // shows, with the scopes it created that still run.
    let unregistered = nested.into_values();
    for (header, scopes) in registered.into_iter().chain(unregistered) {
        let Some(task) = task(shared, &header, scopes, now, depth) else {
            continue;
        };
        if task.is_body() {
            body = Some(task);
        } else {
            tasks.push(task);
        }
    }
    tasks.sort_by_key(|task| task.id);
    Some(ScopeSnapshot {
        id: info.id(),
        name: info.name().cloned(),
        location: info.location(),
        cancelled: shared.token().reason(),
        body,
        tasks,
    })
}

fn task(
    shared: &ScopeShared,
    header: &TaskRef,
    scopes: Vec<WakerArc<ScopeShared>>,
    now: Instant,
    depth: usize,
) -> Option<TaskSnapshot> {
    let info = header.info();
    let finished = header.index() == DEAD;
    let is_body = info.seq() == 0;
    let scopes: Vec<ScopeSnapshot> = scopes
        .iter()
        .filter_map(|nested| scope(nested, now, depth + 1))
        .collect();
    // A finished task is no longer worth showing, unless a scope it created
    // still runs (awaited elsewhere): that scope shows under its creator.
    // A child dropped unfinished is neither: its handle may be gone with
    // the body, yet it shows as dropped.
    let abandoned = finished && info.is_abandoned();
    // A panic not re-raised by the handle shows even if the handle is gone:
    // the scope re-raises it once the others finished.
    let panicked = finished && !abandoned && !is_body && info.has_panicked();
    let returned = finished && !abandoned && !panicked && (is_body || info.is_released());
    if returned && scopes.is_empty() {
        return None;
    }
    let state = if returned {
        TaskState::Returned
    } else if abandoned {
        TaskState::Dropped
    } else if panicked {
        TaskState::Panicked
    } else if finished {
        TaskState::Finished
    } else if info.is_polling() {
        TaskState::Polling
    } else {
        TaskState::Pending
    };
    let cancelled = if is_body {
        shared.token().reason()
    } else {
        header.token().check().err().map(Cancelled::into_reason)
    };
    let since_last_poll = info
        .last_poll(shared.info().epoch())
        .map(|at| now.saturating_duration_since(at));
    Some(TaskSnapshot {
        id: info.seq(),
        name: info.name().cloned(),
        location: info.location(),
        state,
        cancelled,
        polls: info.polls(),
        since_last_poll,
        scopes,
    })
}

/// The outermost scope still running above `task`'s scope.
pub(crate) fn root_of(task: &TaskHeader) -> WakerArc<ScopeShared> {
    let mut root = task.shared().clone();
    for _ in 0..MAX_DEPTH {
        let parent = match root.info().parent() {
            Some(parent) if !parent.shared().info().is_retired() => parent.shared().clone(),
            _ => break,
        };
        root = parent;
    }
    root
}
