//! Interleaved sampling: every contender of a workload is measured round
//! after round in the same process (ABAB, with the order rotated each round
//! so nobody always runs first after a warm cache), and the median of its
//! rounds is kept. Drift of the machine then hits all contenders alike. A
//! round from which the host stole CPU time is run again (`host`).

use std::time::{Duration, Instant};

use crate::host;

/// How long and how often to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The quick mode: fewer rounds, shorter samples, smaller pipelines.
    pub quick: bool,
    /// Rounds per contender; the median is reported.
    pub rounds: usize,
    /// The time one sample of one contender should take.
    pub sample_time: Duration,
    /// Only the workloads whose name contains one of these run (all if empty).
    pub only: Vec<String>,
}

impl Config {
    /// Reads `--quick` (or `TASKSCOPE_BENCH_QUICK=1`) and workload filters
    /// from the command line; ignores the `--bench` flag cargo passes.
    pub fn from_env() -> Self {
        let mut quick =
            std::env::var("TASKSCOPE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut only = Vec::new();
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => quick = true,
                "--bench" => {}
                other if other.starts_with('-') => {}
                other => only.push(other.to_owned()),
            }
        }
        Config {
            quick,
            // Many short rounds rather than a few long ones: a neighbour's
            // build then spoils a few rounds, which the median drops.
            rounds: if quick { 11 } else { 21 },
            sample_time: Duration::from_millis(if quick { 5 } else { 20 }),
            only,
        }
    }

    /// Whether the workload named `name` was selected.
    pub fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

/// What one contender measured: time per unit (per task, per node, per
/// call, per run), median and spread over the rounds.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The contender.
    pub name: String,
    /// Median over the rounds, in nanoseconds per unit.
    pub median_ns: f64,
    /// Fastest round.
    pub min_ns: f64,
    /// Slowest round.
    pub max_ns: f64,
    /// Every round, in order; round `i` of two contenders of the same
    /// comparison ran at most one round apart.
    pub samples: Vec<f64>,
}

/// `a / b`, as the median of the per-round ratios: each round's pair ran
/// milliseconds apart, so a neighbour's burst of work that slows one round
/// slows both sides of its ratio, where it would shift one median alone.
pub fn ratio(a: &Measured, b: &Measured) -> f64 {
    let ratios: Vec<f64> = a
        .samples
        .iter()
        .zip(&b.samples)
        .map(|(x, y)| x / y)
        .collect();
    percentile(&ratios, 50.0)
}

type RunFn<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// One contender: `run(iters)` performs `iters` iterations of the workload
/// and returns the time spent in the part being measured (set-up excluded).
pub struct Contender<'a> {
    name: String,
    run: RunFn<'a>,
    units_per_iter: f64,
    fixed_iters: Option<u64>,
}

impl<'a> Contender<'a> {
    /// A contender whose iteration count is calibrated to the sample time.
    pub fn new(
        name: impl Into<String>,
        units_per_iter: f64,
        run: impl FnMut(u64) -> Duration + 'a,
    ) -> Self {
        Contender {
            name: name.into(),
            run: Box::new(run),
            units_per_iter,
            fixed_iters: None,
        }
    }

    /// A contender run exactly `iters` times per sample (long runs such as
    /// the pipeline, where calibration would cost a whole run).
    pub fn fixed(
        name: impl Into<String>,
        units_per_iter: f64,
        iters: u64,
        run: impl FnMut(u64) -> Duration + 'a,
    ) -> Self {
        Contender {
            fixed_iters: Some(iters),
            ..Contender::new(name, units_per_iter, run)
        }
    }
}

/// Calibrates, then samples every contender `config.rounds` times,
/// interleaved, and returns their medians in the order given.
pub fn compare(config: &Config, mut contenders: Vec<Contender<'_>>) -> Vec<Measured> {
    let iters: Vec<u64> = contenders
        .iter_mut()
        .map(|c| {
            c.fixed_iters
                .unwrap_or_else(|| calibrate(c, config.sample_time))
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let samples = sample_rounds(&mut contenders, &iters, config.rounds, |round| {
        let stolen_before = host::stolen();
        let started = Instant::now();
        round();
        host::spoiled(stolen_before, started.elapsed(), cores)
    });
    contenders
        .iter()
        .zip(samples)
        .map(|(c, s)| Measured {
            name: c.name.clone(),
            median_ns: percentile(&s, 50.0),
            min_ns: percentile(&s, 0.0),
            max_ns: percentile(&s, 100.0),
            samples: s,
        })
        .collect()
}

/// Samples every contender `rounds` times, interleaved and rotated, and
/// returns each one's samples. `watch` runs one round and says whether the
/// host spoiled it; a spoiled round is run again, at most `rounds` times in
/// all: a host that steals all the time doubles the run, then its rounds
/// are kept (and counted as spoiled).
fn sample_rounds(
    contenders: &mut [Contender<'_>],
    iters: &[u64],
    rounds: usize,
    mut watch: impl FnMut(&mut dyn FnMut()) -> bool,
) -> Vec<Vec<f64>> {
    let count = contenders.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); count];
    let mut reruns_left = rounds;
    let mut round = 0;
    let mut this_round = Vec::with_capacity(count);
    while round < rounds {
        this_round.clear();
        let spoiled = watch(&mut || {
            for k in 0..count {
                let i = (k + round) % count;
                let c = &mut contenders[i];
                let elapsed = (c.run)(iters[i]);
                let per_unit = elapsed.as_nanos() as f64 / (iters[i] as f64 * c.units_per_iter);
                this_round.push((i, per_unit));
            }
        });
        if spoiled {
            let rerun = reruns_left > 0;
            host::count_spoiled(rerun);
            if rerun {
                reruns_left -= 1;
                continue;
            }
        }
        for &(i, sample) in &this_round {
            samples[i].push(sample);
        }
        round += 1;
    }
    samples
}

/// Doubles the iteration count until a sample is long enough to time, then
/// scales it to the sample time. The first call also warms the contender up.
fn calibrate(c: &mut Contender<'_>, sample_time: Duration) -> u64 {
    let mut iters = 1_u64;
    loop {
        let elapsed = (c.run)(iters);
        if elapsed >= sample_time / 8 || iters >= 1 << 30 {
            let scale = sample_time.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
            return ((iters as f64 * scale).ceil() as u64).max(1);
        }
        iters *= 2;
    }
}

/// The `p`th percentile of `values`, interpolated linearly between the two
/// closest ranks: the 50th of an even count is the mean of the middle two
/// (a nearest rank would take the upper one and bias medians up).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (below, above) = (rank.floor() as usize, rank.ceil() as usize);
    let weight = rank - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * weight
}

/// Times `f` once.
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The median of a measured set by name, for building report rows.
pub fn by_name<'m>(measured: &'m [Measured], name: &str) -> &'m Measured {
    measured
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no contender named {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 50.0), 2.5);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.0), 1.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    /// A contender whose `n`th sample takes `n` ns per unit.
    fn counting(name: &str) -> Contender<'static> {
        let mut calls = 0;
        Contender::new(name, 1.0, move |_| {
            calls += 1;
            Duration::from_nanos(calls)
        })
    }

    #[test]
    fn a_spoiled_round_is_run_again_and_its_samples_dropped() {
        let mut contenders = vec![counting("a"), counting("b")];
        let mut watched = 0;
        let samples = sample_rounds(&mut contenders, &[1, 1], 3, |round| {
            round();
            watched += 1;
            watched == 2 // the second round run is spoiled
        });
        assert_eq!(watched, 4, "three rounds and one re-run");
        assert_eq!(samples[0], [1.0, 3.0, 4.0], "the spoiled sample 2 is gone");
        assert_eq!(samples[1], [1.0, 3.0, 4.0]);
    }

    #[test]
    fn a_host_that_always_steals_doubles_the_rounds_then_keeps_them() {
        let mut contenders = vec![counting("a")];
        let mut watched = 0;
        let samples = sample_rounds(&mut contenders, &[1], 3, |round| {
            round();
            watched += 1;
            true
        });
        assert_eq!(watched, 6, "three re-runs at most");
        assert_eq!(samples[0], [4.0, 5.0, 6.0], "then the rounds are kept");
    }
}
