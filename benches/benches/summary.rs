//! `cargo bench -p taskscope-benches --bench summary [-- --quick] [workload…]`
//!
//! Runs every workload of the benchmark issue with taskscope and its peers
//! interleaved in one process, prints the raw figures and one summary line
//! per target, and writes the summary to `<target dir>/bench-summary.json`
//! (`bench-summary-<workloads>.json` when workloads are selected).
//! `--quick` (or `TASKSCOPE_BENCH_QUICK=1`) takes a few minutes; positional
//! arguments select workloads by name (`spawn_join`, `cancel`, `pipeline`,
//! `parallel`, `overhead`, `combinators`; a name that selects none is an
//! error).

use std::time::Instant;

use taskscope_benches::alloc::CountingAlloc;
use taskscope_benches::host;
use taskscope_benches::measure::Config;
use taskscope_benches::report::{Report, target_dir};
use taskscope_benches::workloads;

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

type Workload = fn(&Config, &mut Report);

fn main() {
    let config = Config::from_env();
    let started = Instant::now();
    let mut report = Report::default();
    let load_before = load_average();
    let stolen_before = host::stolen();
    let all: [(&str, Workload); 6] = [
        ("spawn_join", workloads::spawn_join::run),
        ("cancel", workloads::cancel::run),
        ("pipeline", workloads::pipeline::run),
        ("parallel", workloads::parallel::run),
        ("overhead", workloads::overhead::run),
        ("combinators", workloads::combinators::run),
    ];
    // A filter that selects nothing is a typo: say so rather than write an
    // empty summary.
    let unknown: Vec<&String> = (config.only.iter())
        .filter(|filter| !all.iter().any(|(name, _)| name.contains(filter.as_str())))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "no workload matches {unknown:?}; the workloads are {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    for (name, run) in all {
        if config.runs(name) {
            let t = Instant::now();
            run(&config, &mut report);
            eprintln!("{name}: {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The figures are only as good as the machine was quiet: say how busy.
    report.notes.push(format!(
        "load average (1 min) before / after: {load_before} / {}; cores: {}",
        load_average(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    report.notes.push(steal_note(stolen_before));
    print!("{}", report.render());
    println!(
        "total: {elapsed:.1} s ({} mode)",
        if config.quick { "quick" } else { "full" }
    );
    // A run of some workloads does not overwrite the summary of all.
    let file = if config.only.is_empty() {
        "bench-summary.json".to_owned()
    } else {
        format!("bench-summary-{}.json", config.only.join("-"))
    };
    let path = target_dir().join(file);
    let json = serde_json::to_string_pretty(&report.to_json(config.quick, elapsed))
        .expect("the summary serialises");
    match std::fs::write(&path, json) {
        Ok(()) => println!("summary written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// What the host took from this VM during the run, and how many rounds
/// were run again for it (or kept, spoiled, when re-runs ran out).
fn steal_note(before: Option<std::time::Duration>) -> String {
    let (rerun, kept) = host::spoiled_rounds();
    match (before, host::stolen()) {
        (Some(before), Some(after)) => format!(
            "host steal during the run: {:.2} s of CPU; rounds run again for it: {rerun}, \
             kept spoiled: {kept}",
            after.saturating_sub(before).as_secs_f64()
        ),
        _ => "host steal: not reported by this kernel".into(),
    }
}
