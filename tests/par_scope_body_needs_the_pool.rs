//! A body whose poll is fanned out may need the pool before it spawns (a
//! `rayon::join`, a `par_iter` preparing its items): the helper waiting for
//! its first spawn must give its thread back in time.
//!
//! Its own test binary: it builds rayon's global pool, of two threads.
#![cfg(feature = "parallel")]

mod par_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use futures::executor::block_on;
use par_support::{spin_for, spin_until};
use taskscope::par_scope;

/// Eight heavy children spawned in the body's first poll.
async fn eight_heavy_children(s: &taskscope::Scope<'_>) {
    let handles: Vec<_> = (0..8)
        .map(|_| s.spawn(async { spin_for(Duration::from_millis(1)) }))
        .collect();
    futures::future::join_all(handles).await;
}

#[test]
fn a_body_that_runs_pool_work_before_its_first_spawn_is_not_starved_by_its_helper() {
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .expect("the only pool of this binary");
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // A heavy scope first: the thread's next scope fans its body's
        // first poll out, with a helper waiting for the body to spawn.
        block_on(par_scope(|s| async move { eight_heavy_children(&s).await }));
        // One pool thread waits for this executor's other task.
        let (feed, fed) = mpsc::channel::<()>();
        let blocked = Arc::new(AtomicBool::new(false));
        let started = blocked.clone();
        rayon_core::spawn(move || {
            started.store(true, Ordering::SeqCst);
            fed.recv().expect("the feeder sends");
        });
        spin_until(&blocked, "the blocking job to start");
        let scope = par_scope(|s| async move {
            // Pool work before the first spawn: only the helper's thread is
            // free to run it.
            let (a, b) = rayon_core::join(|| 1, || 2);
            eight_heavy_children(&s).await;
            a + b
        });
        let feeder = async move { feed.send(()).expect("the job waits") };
        let (sum, ()) = block_on(async { futures::join!(scope, feeder) });
        done_tx.send(sum).expect("the test waits");
    });
    let sum = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("deadlock: the helper kept the only free pool thread waiting for a spawn");
    assert_eq!(sum, 3);
}
