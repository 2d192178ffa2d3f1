//! A service that hangs, and the snapshot that shows why.
//!
//! One task waits for a reply on a channel whose sender is alive but never
//! used, so it waits forever. After a short deadline a watchdog (the scope's
//! body) prints the scope tree: which tasks exist, where they sit, how long
//! since each was polled. Then it cancels the scope with
//! `CancelReason::Deadline`, prints the tree once more to show the
//! cancellation, and the scope winds down cleanly.
//!
//! Run it with `cargo run --example hang` (it takes about half a second).

use std::time::Duration;

use taskscope::{Builder, CancelExt, CancelReason};
use tokio::sync::oneshot;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Without this, the first snapshot would turn poll times on, too late
    // for the stuck task, whose last poll happened before.
    taskscope::record_poll_times();

    // The sender lives until the end of `main` and is never used: the
    // receiver can neither get a value nor see the channel close.
    let (_forgotten_sender, reply) = oneshot::channel::<String>();

    let outcome = Builder::new()
        .name("service")
        .scope(|s| async move {
            s.spawn_named("heartbeat", async {
                let token = taskscope::current_token();
                while !token.is_cancelled() {
                    let tick = tokio::time::sleep(Duration::from_millis(50));
                    let _ = tick.until_cancelled(&token).await;
                }
            });
            let request = s.spawn_named("request", async move {
                Builder::new()
                    .name("fan-out")
                    .scope(|inner| async move {
                        let lookup = inner.spawn_named("lookup", async { 42 });
                        let wait = inner.spawn_named("await-reply", async move {
                            // Stuck here: nobody will ever send.
                            let token = taskscope::current_token();
                            reply.until_cancelled(&token).await
                        });
                        let value = lookup.await;
                        (value, wait.await)
                    })
                    .await
            });

            // The watchdog: the request should be done long before this.
            tokio::time::sleep(Duration::from_millis(300)).await;
            println!("The request is not done after 300ms. The scope tree:\n");
            println!("{}", s.snapshot());

            s.token().cancel_with(CancelReason::Deadline);
            println!("Cancelled with a deadline. The tree now:\n");
            println!("{}", s.snapshot());
            request.await
        })
        .await;

    match outcome {
        (value, Err(cancelled)) => {
            println!("lookup gave {value}; the reply never came ({cancelled}); all tasks joined.");
        }
        (value, Ok(reply)) => println!("lookup gave {value}, reply {reply:?}"),
    }
}
