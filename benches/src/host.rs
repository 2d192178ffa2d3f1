//! How much CPU time the host took from this virtual machine ("steal").
//!
//! On these 2-core VMs the host sometimes runs another guest on our cores
//! for tens of milliseconds. A round of the sampler that loses a core that
//! way measures the host, not the contenders: a parallel contender loses
//! half its threads, a serial one nothing, and the round's ratios swing by
//! 20-40%. The sampler therefore reads the guest kernel's steal counter
//! around every round and runs a spoiled round again (see
//! `measure::compare`), and the summary says how many rounds that was.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Rounds run again because the host stole from them.
static ROUNDS_RERUN: AtomicUsize = AtomicUsize::new(0);
/// Spoiled rounds kept anyway, because a comparison ran out of re-runs.
static ROUNDS_KEPT_SPOILED: AtomicUsize = AtomicUsize::new(0);

/// The share of a round's CPU time (wall time × cores) the host may take
/// before the round counts as spoiled.
const SPOILED_SHARE: f64 = 0.02;

/// `/proc/stat` counts in `USER_HZ`, which Linux fixes at 100 per second
/// for this file whatever the kernel's tick rate.
const TICK: Duration = Duration::from_millis(10);

/// CPU time stolen from all cores since boot; `None` where the kernel does
/// not say (not Linux, or no steal accounting).
pub fn stolen() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // "cpu user nice system idle iowait irq softirq steal ...": all cores.
    let ticks: u32 = stat
        .lines()
        .next()?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()?;
    Some(TICK * ticks)
}

/// Whether a round that took `wall` on `cores` cores, with `before` read
/// from [`stolen`] as it began, lost enough to the host to be run again.
/// Never spoiled where steal cannot be read.
pub fn spoiled(before: Option<Duration>, wall: Duration, cores: usize) -> bool {
    match (before, stolen()) {
        (Some(before), Some(after)) => too_much(after.saturating_sub(before), wall, cores),
        _ => false,
    }
}

fn too_much(stolen: Duration, wall: Duration, cores: usize) -> bool {
    stolen.as_secs_f64() > wall.as_secs_f64() * cores as f64 * SPOILED_SHARE
}

/// Counts a spoiled round: run again, or kept for want of re-runs.
pub fn count_spoiled(rerun: bool) {
    let counter = if rerun {
        &ROUNDS_RERUN
    } else {
        &ROUNDS_KEPT_SPOILED
    };
    // Relaxed: a statistic read once the workloads are done.
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Rounds run again and spoiled rounds kept, since the program started.
pub fn spoiled_rounds() -> (usize, usize) {
    (
        // Relaxed: see `count_spoiled`.
        ROUNDS_RERUN.load(Ordering::Relaxed),
        ROUNDS_KEPT_SPOILED.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_spoiled_only_past_its_share_of_steal() {
        let ms = Duration::from_millis;
        assert!(too_much(ms(10), ms(100), 2), "one tick of 200 ms is 5%");
        assert!(!too_much(ms(10), ms(1_000), 2), "one tick of 2 s is 0.5%");
        assert!(!too_much(ms(0), ms(1), 2), "nothing stolen, however short");
    }

    #[test]
    fn steal_unknown_or_unchanged_keeps_the_round() {
        assert!(!spoiled(None, Duration::from_millis(1), 2));
        // The counter cannot move by 20 s within this test.
        assert!(!spoiled(stolen(), Duration::from_secs(1_000), 2));
    }
}
