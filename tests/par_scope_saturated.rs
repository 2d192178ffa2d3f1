//! A fan-out never waits for a busy pool to take its helpers up.
//!
//! Its own test binary: it occupies every thread of rayon's global pool.
#![cfg(feature = "parallel")]

mod par_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use futures::executor::block_on;
use par_support::{spin_for, spin_until, spin_until_count};
use taskscope::par_scope;

/// Before the admission gate, a fan-out from outside the pool returned
/// only once a pool thread had run each helper job it spawned: with every
/// pool thread waiting for the scope to finish, that was a deadlock.
#[test]
fn a_scope_finishes_while_every_pool_thread_waits_for_it() {
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .expect("the only pool of this binary");
    let busy = Arc::new(AtomicUsize::new(0));
    let scope_done = Arc::new(AtomicBool::new(false));
    for _ in 0..2 {
        let (busy, scope_done) = (busy.clone(), scope_done.clone());
        rayon_core::spawn(move || {
            busy.fetch_add(1, Ordering::SeqCst);
            spin_until(&scope_done, "the scope to finish");
        });
    }
    spin_until_count(&busy, 2, "both pool threads to be taken");
    let finished = Arc::new(AtomicBool::new(false));
    let driver = {
        let (scope_done, finished) = (scope_done.clone(), finished.clone());
        thread::spawn(move || {
            let items: Vec<u64> = (1..=8).collect();
            let sum = block_on(par_scope(|s| {
                let items = &items;
                async move {
                    // Heavy children: the batch after the first fans out.
                    let handles: Vec<_> = items
                        .iter()
                        .map(|&n| {
                            s.spawn(async move {
                                spin_for(Duration::from_millis(1));
                                n * n
                            })
                        })
                        .collect();
                    futures::future::join_all(handles).await.iter().sum::<u64>()
                }
            }));
            finished.store(true, Ordering::SeqCst);
            scope_done.store(true, Ordering::SeqCst);
            sum
        })
    };
    spin_until(&finished, "the scope, which no pool thread can help");
    let sum = driver.join().expect("the scope's thread does not panic");
    assert_eq!(sum, (1..=8).map(|n: u64| n * n).sum::<u64>());
}
