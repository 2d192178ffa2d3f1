//! What the tour prints: an updating progress line, aligned tables, and the
//! meter that measures how long a future sat woken but unpolled.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A line on stderr that updates in place (only when stderr is a terminal).
pub(crate) struct Progress {
    label: String,
    total: usize,
    shown: Option<Instant>,
    enabled: bool,
}

impl Progress {
    pub(crate) fn new(label: impl Into<String>, total: usize) -> Progress {
        Progress {
            label: label.into(),
            total,
            shown: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub(crate) fn update(&mut self, done: usize) {
        if !self.enabled
            || self
                .shown
                .is_some_and(|at| at.elapsed() < Duration::from_millis(80))
        {
            return;
        }
        self.shown = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K  {}: {done}/{}", self.label, self.total);
        let _ = err.flush();
    }

    pub(crate) fn finish(&mut self) {
        if self.enabled && self.shown.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Column alignment.
#[derive(Clone, Copy)]
pub(crate) enum Align {
    Left,
    Right,
}

/// Prints `rows` under `header`, each column as wide as its widest cell.
pub(crate) fn print_table(indent: &str, header: &[&str], align: &[Align], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::from(indent);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("   ");
            }
            match align[i] {
                Align::Left => out.push_str(&format!("{cell:<width$}", width = widths[i])),
                Align::Right => out.push_str(&format!("{cell:>width$}", width = widths[i])),
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.iter().map(|cell| cell.to_string()).collect());
    line(widths.iter().map(|&width| "-".repeat(width)).collect());
    for row in rows {
        line(row.clone());
    }
}

pub(crate) fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

pub(crate) fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// Wraps a future and sums, over its awaits, the time from the wake-up that
/// said "ready to go on" to the poll that let it go on: the stall.
pub(crate) struct Metered<F> {
    future: Pin<Box<F>>,
    woken_at: Arc<Mutex<Option<Instant>>>,
    stall: Duration,
}

impl<F: Future> Metered<F> {
    pub(crate) fn new(future: F) -> Metered<F> {
        Metered {
            future: Box::pin(future),
            woken_at: Arc::default(),
            stall: Duration::ZERO,
        }
    }
}

struct MeterWaker {
    inner: Waker,
    woken_at: Arc<Mutex<Option<Instant>>>,
}

impl Wake for MeterWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken_at
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        self.inner.wake_by_ref();
    }
}

impl<F: Future> Future for Metered<F> {
    /// The output and the stall.
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let woken_at = self.woken_at.lock().unwrap().take();
        if let Some(woken_at) = woken_at {
            self.stall += woken_at.elapsed();
        }
        let waker = Waker::from(Arc::new(MeterWaker {
            inner: cx.waker().clone(),
            woken_at: self.woken_at.clone(),
        }));
        let output = self.future.as_mut().poll(&mut Context::from_waker(&waker));
        output.map(|output| (output, self.stall))
    }
}
