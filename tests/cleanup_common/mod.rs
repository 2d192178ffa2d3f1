//! The fake connection and log shared by the clean-up tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::task::Poll;

use taskscope::AsyncDrop;

use crate::common::yield_once;

pub type Log = Arc<Mutex<Vec<String>>>;

pub fn new_log() -> Log {
    Arc::default()
}

pub fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

pub fn record(log: &Log, event: impl Into<String>) {
    log.lock().unwrap().push(event.into());
}

/// A fake connection: an async close of a few steps, and a sync drop.
pub struct Conn {
    pub name: &'static str,
    pub log: Log,
}

impl Conn {
    pub fn open(name: &'static str, log: &Log) -> Conn {
        record(log, format!("{name}: open"));
        Conn {
            name,
            log: log.clone(),
        }
    }

    pub fn query(&self) {
        record(&self.log, format!("{}: query", self.name));
    }
}

impl AsyncDrop for Conn {
    async fn prepare_drop(&mut self) {
        let shielded = !taskscope::is_cancelled();
        record(
            &self.log,
            format!("{}: close start (shielded: {shielded})", self.name),
        );
        for _ in 0..3 {
            yield_once().await;
        }
        record(&self.log, format!("{}: closed", self.name));
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        record(&self.log, format!("{}: drop", self.name));
    }
}

pub fn closed_then_dropped(name: &str) -> Vec<String> {
    vec![
        format!("{name}: close start (shielded: true)"),
        format!("{name}: closed"),
        format!("{name}: drop"),
    ]
}

pub fn with_open(name: &str, rest: Vec<String>) -> Vec<String> {
    let mut events = vec![format!("{name}: open")];
    events.extend(rest);
    events
}

/// A clean-up that ignores cancellation: never finishes on its own.
pub struct Stubborn {
    pub log: Log,
}

impl AsyncDrop for Stubborn {
    async fn prepare_drop(&mut self) {
        record(&self.log, "stubborn: close start");
        std::future::poll_fn(|_| {
            if taskscope::is_cancelled() {
                record(&self.log, "stubborn: polled after the cancel");
            }
            Poll::<()>::Pending
        })
        .await;
    }
}

impl Drop for Stubborn {
    fn drop(&mut self) {
        let cancelled = taskscope::is_cancelled();
        record(
            &self.log,
            format!("stubborn: drop (cancelled: {cancelled})"),
        );
    }
}
