//! Loom model of `buffered_in`'s window: item futures run as children of
//! the scope and complete on wakes from other threads, in any order; the
//! adapter never has more than `n` items pulled and not yet yielded, yields
//! in input order, and loses no wake-up.
//!
//! Each model names the mutant (scripts/loom.sh `--mutants`) that makes it
//! fail.
#![cfg(loom)]

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use taskscope::{ScopedStreamExt, scope};
use taskscope_loom_tests::{Flag, check};

type Item<'a> = Pin<Box<dyn Future<Output = usize> + Send + 'a>>;

/// A source of items, each waiting on its own flag; it asserts the window
/// every time it is pulled.
struct Items<'a> {
    flags: &'a [Flag],
    window: usize,
    pulled: usize,
    yielded: &'a AtomicUsize,
}

impl<'a> Stream for Items<'a> {
    type Item = Item<'a>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Item<'a>>> {
        let index = self.pulled;
        let Some(flag) = self.flags.get(index) else {
            return Poll::Ready(None);
        };
        let yielded = self.yielded.load(Ordering::Relaxed);
        assert!(
            index - yielded < self.window,
            "item {index} pulled with {} pulled and not yet yielded, window {}",
            index - yielded,
            self.window
        );
        self.pulled += 1;
        Poll::Ready(Some(Box::pin(async move {
            flag.wait().await;
            index
        })))
    }
}

/// Property: the window holds and no wake-up is lost. Three items, window
/// 2; items 0 and 2 are released by one thread, item 1 by another, racing
/// with the scope's polls. The consumer (the body) gets 0, 1, 2 in order,
/// and the source is never pulled with 2 items in flight.
///
/// Last run: 1520 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `buffered_in_window_off_by_one` (window assertion) and
/// `schedule_never_wakes` (deadlock).
#[test]
fn buffered_in_keeps_its_window_and_order_with_items_woken_elsewhere() {
    check("buffered_in::keeps_its_window_and_order", 2, || {
        let flags = [Flag::new(), Flag::new(), Flag::new()];
        let first = {
            let (zero, two) = (flags[0].clone(), flags[2].clone());
            thread::spawn(move || {
                zero.set();
                two.set();
            })
        };
        let second = {
            let one = flags[1].clone();
            thread::spawn(move || one.set())
        };
        let yielded = AtomicUsize::new(0);
        let (flags_ref, yielded_ref) = (&flags, &yielded);
        let outputs = block_on(scope(|s| async move {
            let items = Items {
                flags: flags_ref,
                window: 2,
                pulled: 0,
                yielded: yielded_ref,
            };
            let mut stream = std::pin::pin!(items.buffered_in(2, &s));
            let mut outputs = Vec::new();
            while let Some(output) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                yielded_ref.fetch_add(1, Ordering::Relaxed);
                outputs.push(output);
            }
            outputs
        }));
        assert_eq!(outputs, [0, 1, 2]);
        first.join().unwrap();
        second.join().unwrap();
    });
}

/// A source of `count` items that are ready at once, each yielding its index.
struct Ready {
    next: usize,
    count: usize,
}

impl Stream for Ready {
    type Item = std::future::Ready<usize>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.next == self.count {
            return Poll::Ready(None);
        }
        self.next += 1;
        Poll::Ready(Some(std::future::ready(self.next - 1)))
    }
}

/// Property: no lost wake-up between the scope and a consumer on another
/// thread. A thread holding a clone of the scope consumes a
/// `buffer_unordered_in` stream: its items are spawned into the scope from
/// that thread (racing with the scope's poll), completed by the scope's
/// thread, and their completions wake the consumer's thread through the
/// per-item wakers. Every output arrives and both sides finish.
///
/// Last run: 2086 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `unordered_registers_consumer_last`.
#[test]
fn buffer_unordered_in_consumed_on_another_thread_gets_every_output() {
    check(
        "buffered_in::buffer_unordered_in_consumed_on_another_thread",
        2,
        || {
            let consumer_done = Flag::new();
            let consumer = block_on(scope(|s| {
                let consumer_done = consumer_done.clone();
                async move {
                    let spawner = s.clone();
                    let done = consumer_done.clone();
                    let consumer = thread::spawn(move || {
                        let items = Ready { next: 0, count: 2 };
                        let mut stream = std::pin::pin!(items.buffer_unordered_in(2, &spawner));
                        let mut outputs = Vec::new();
                        while let Some(output) =
                            block_on(poll_fn(|cx| stream.as_mut().poll_next(cx)))
                        {
                            outputs.push(output);
                        }
                        done.set();
                        outputs
                    });
                    consumer_done.wait().await;
                    consumer
                }
            }));
            let mut outputs = consumer.join().unwrap();
            outputs.sort_unstable();
            assert_eq!(outputs, [0, 1]);
        },
    );
}
