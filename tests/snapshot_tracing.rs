//! The `tracing` feature: spans per scope and task, events for
//! cancellation and panics, captured with a small recording subscriber.
#![cfg(feature = "tracing")]

use std::fmt::{self, Write};
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use taskscope::Builder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Clone, Debug)]
struct SpanRecord {
    name: &'static str,
    fields: String,
    parent: Option<u64>,
}

#[derive(Clone, Debug)]
struct EventRecord {
    level: tracing::Level,
    fields: String,
    /// The span the event happened in (explicit parent, or the entered one).
    span: Option<u64>,
}

#[derive(Default)]
struct Log {
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
    /// Entered spans on the (single) test thread.
    stack: Vec<u64>,
}

/// Records spans, their parents, enters and events up to a level (the
/// most verbose it lets through); nothing else.
#[derive(Clone)]
struct Recorder(Arc<Mutex<Log>>, tracing::Level);

impl Default for Recorder {
    fn default() -> Self {
        Recorder::at(tracing::Level::TRACE)
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        write!(self.0, "{}={:?}", field.name(), value).unwrap();
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }
}

impl Subscriber for Recorder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Asked per use: the tests of this binary record at different levels.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.1
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        let mut log = self.0.lock().unwrap();
        let parent = match attrs.parent() {
            Some(id) => Some(id.into_u64()),
            None if attrs.is_contextual() => log.stack.last().copied(),
            None => None,
        };
        log.spans.push(SpanRecord {
            name: attrs.metadata().name(),
            fields: fields.0,
            parent,
        });
        Id::from_u64(log.spans.len() as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let mut log = self.0.lock().unwrap();
        let span = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => log.stack.last().copied(),
            None => None,
        };
        log.events.push(EventRecord {
            level: *event.metadata().level(),
            fields: fields.0,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        self.0.lock().unwrap().stack.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut log = self.0.lock().unwrap();
        let top = log.stack.pop();
        assert_eq!(top, Some(span.into_u64()), "spans are exited in order");
    }
}

impl Recorder {
    fn at(most_verbose: tracing::Level) -> Self {
        Recorder(Arc::default(), most_verbose)
    }

    fn span(&self, id: u64) -> SpanRecord {
        self.0.lock().unwrap().spans[id as usize - 1].clone()
    }

    fn span_id(&self, name: &str, contains: &str) -> u64 {
        let log = self.0.lock().unwrap();
        let position = log
            .spans
            .iter()
            .position(|span| span.name == name && span.fields.contains(contains))
            .unwrap_or_else(|| panic!("no span {name} with {contains}: {:?}", log.spans));
        position as u64 + 1
    }

    fn event_with(&self, contains: &str) -> EventRecord {
        let log = self.0.lock().unwrap();
        log.events
            .iter()
            .find(|event| event.fields.contains(contains))
            .cloned()
            .unwrap_or_else(|| panic!("no event with {contains}: {:?}", log.events))
    }
}

#[test]
fn scopes_and_tasks_get_spans_with_names_and_ids_entered_while_polled() {
    let recorder = Recorder::default();
    let scope_id = tracing::subscriber::with_default(recorder.clone(), || {
        block_on(Builder::new().name("traced").scope(|s| async move {
            s.spawn_named("worker", async {
                tracing::info!("inside the worker");
                Builder::new()
                    .name("nested")
                    .scope(|n| async move {
                        n.spawn(async { tracing::info!("inside the nested child") });
                    })
                    .await;
            });
            s.snapshot().scopes[0].id
        }))
    });
    let scope = recorder.span_id("taskscope.scope", "name=\"traced\"");
    assert!(
        recorder
            .span(scope)
            .fields
            .contains(&format!("id={scope_id}"))
    );
    let worker = recorder.span_id("taskscope.task", "name=\"worker\"");
    let worker_span = recorder.span(worker);
    assert!(
        worker_span.fields.contains(&format!("id={scope_id}.1")),
        "{worker_span:?}"
    );
    assert_eq!(
        worker_span.parent,
        Some(scope),
        "a task's span is under its scope's"
    );
    assert_eq!(recorder.event_with("inside the worker").span, Some(worker));
    let nested = recorder.span_id("taskscope.scope", "name=\"nested\"");
    assert_eq!(
        recorder.span(nested).parent,
        Some(worker),
        "a nested scope's span is under the task that created it"
    );
    let nested_child = recorder.event_with("inside the nested child").span.unwrap();
    assert_eq!(recorder.span(nested_child).parent, Some(nested));
}

#[test]
fn spans_carry_where_the_scope_was_made_and_the_task_spawned() {
    let recorder = Recorder::default();
    let (made, spawned) = tracing::subscriber::with_default(recorder.clone(), || {
        let made = line!() + 1;
        block_on(Builder::new().name("located").scope(|s| async move {
            let spawned = line!() + 1;
            s.spawn_named("located child", async {});
            (made, spawned)
        }))
    });
    let scope = recorder.span_id("taskscope.scope", "name=\"located\"");
    let child = recorder.span_id("taskscope.task", "name=\"located child\"");
    let at = |line: u32| format!("at={}:{line}:", file!());
    let scope_fields = recorder.span(scope).fields;
    assert!(scope_fields.contains(&at(made)), "{scope_fields}");
    let child_fields = recorder.span(child).fields;
    assert!(child_fields.contains(&at(spawned)), "{child_fields}");
}

#[test]
fn cancellation_is_an_event_with_its_reason() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        block_on(Builder::new().name("stopping").scope(|s| async move {
            let child = s.spawn_named("alone", async { taskscope::cancelled().await });
            child.cancel();
            s.token().cancel_with(taskscope::CancelReason::Deadline);
        }))
    });
    let scope = recorder.span_id("taskscope.scope", "name=\"stopping\"");
    let event = recorder.event_with("scope cancelled");
    assert_eq!(event.span, Some(scope));
    assert!(
        event.fields.contains("reason=the deadline passed"),
        "{event:?}"
    );
    let alone = recorder.span_id("taskscope.task", "name=\"alone\"");
    let event = recorder.event_with("task cancelled");
    assert_eq!(event.span, Some(alone));
    assert!(
        event.fields.contains("reason=cancellation was requested"),
        "{event:?}"
    );
}

#[test]
fn at_info_the_cancel_events_name_their_task_and_scope_and_stay_in_the_callers_span() {
    // At INFO the DEBUG spans of scopes and tasks are off; the events must
    // not be cut off from the caller's span, nor lose which task they are.
    let recorder = Recorder::at(tracing::Level::INFO);
    tracing::subscriber::with_default(recorder.clone(), || {
        let request = tracing::info_span!("request", id = 42);
        let _entered = request.enter();
        block_on(Builder::new().name("server").scope(|s| async move {
            let child = s.spawn_named("worker", async { taskscope::cancelled().await });
            child.cancel();
            s.cancel();
        }))
    });
    let request = recorder.span_id("request", "id=42");
    let by_handle = recorder.event_with("task cancelled through its handle");
    assert_eq!(by_handle.span, Some(request), "{by_handle:?}");
    assert!(
        by_handle.fields.contains("name=\"worker\""),
        "{by_handle:?}"
    );
    assert!(by_handle.fields.contains("task="), "{by_handle:?}");
    let scope = recorder.event_with("scope cancelled");
    assert_eq!(scope.span, Some(request), "{scope:?}");
    assert!(scope.fields.contains("name=\"server\""), "{scope:?}");
}

#[test]
fn a_panicking_task_is_an_error_event_in_its_span() {
    let recorder = Recorder::default();
    let caught = tracing::subscriber::with_default(recorder.clone(), || {
        std::panic::catch_unwind(|| {
            block_on(taskscope::scope(|s| async move {
                s.spawn_named("doomed", async { panic!("boom") });
            }))
        })
    });
    assert!(caught.is_err(), "the scope re-raises the panic");
    let doomed = recorder.span_id("taskscope.task", "name=\"doomed\"");
    let event = recorder.event_with("task panicked");
    assert_eq!(event.level, tracing::Level::ERROR, "{event:?}");
    assert_eq!(event.span, Some(doomed));
    assert!(event.fields.contains("boom"), "{event:?}");
    assert!(
        event.fields.contains("name=\"doomed\""),
        "named without its span: {event:?}"
    );
}

/// At INFO the scope's span is disabled: the event's own fields must say
/// which scope's clean-up panicked.
#[test]
fn a_panicking_clean_up_is_an_error_event_naming_its_scope() {
    let recorder = Recorder::at(tracing::Level::INFO);
    let caught = tracing::subscriber::with_default(recorder.clone(), || {
        std::panic::catch_unwind(|| {
            block_on(Builder::new().name("tidying").scope(|s| async move {
                s.defer(async { panic!("clean-up boom") });
            }))
        })
    });
    assert!(caught.is_err(), "the scope re-raises the panic");
    let event = recorder.event_with("a clean-up panicked");
    assert_eq!(event.level, tracing::Level::ERROR, "{event:?}");
    assert!(event.fields.contains("clean-up boom"), "{event:?}");
    assert!(event.fields.contains("name=\"tidying\""), "{event:?}");
    assert!(event.fields.contains("scope="), "{event:?}");
}

#[test]
fn clean_up_runs_are_events_in_the_scope_span() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        block_on(Builder::new().name("tidy").scope(|s| async move {
            s.defer(async {});
        }))
    });
    let scope = recorder.span_id("taskscope.scope", "name=\"tidy\"");
    let event = recorder.event_with("running a clean-up");
    assert_eq!(event.span, Some(scope));
}
