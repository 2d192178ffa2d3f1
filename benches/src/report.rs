//! The summary: one line per target, plus every raw figure behind them,
//! printed as aligned tables and written as JSON for comparison over time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::measure::Measured;

/// Which way a target points.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// The checked value must be at most this.
    AtMost(f64),
    /// The checked value must be at least this.
    AtLeast(f64),
}

impl Goal {
    fn holds(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::AtLeast(limit) => value >= limit,
        }
    }
}

/// One target of the issue, checked against this run.
#[derive(Debug, Clone)]
pub struct Row {
    /// Workload and parameters.
    pub workload: String,
    /// Our figure, formatted; `None` when the feature is not on `main` yet.
    pub ours: Option<String>,
    /// The peer's figure, formatted.
    pub peer: String,
    /// The value compared with the goal (a ratio, or our figure itself).
    pub checked: Option<f64>,
    /// How `checked` is defined, for the reader ("ours/peer", "peer/ours").
    pub ratio_kind: &'static str,
    /// The target as the issue states it.
    pub target: String,
    /// The goal behind the target.
    pub goal: Goal,
}

impl Row {
    /// "yes", "MISSED" or "not yet available".
    pub fn verdict(&self) -> &'static str {
        match (self.ours.as_ref(), self.checked) {
            (None, _) | (_, None) => "not yet available",
            (Some(_), Some(v)) if self.goal.holds(v) => "yes",
            _ => "MISSED",
        }
    }
}

/// One raw figure.
#[derive(Debug, Clone)]
pub struct Detail {
    /// Workload and parameters.
    pub workload: String,
    /// Contender.
    pub contender: String,
    /// Median value.
    pub value: f64,
    /// Spread over the rounds, formatted.
    pub spread: String,
    /// Unit of `value`.
    pub unit: &'static str,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// The target lines.
    pub rows: Vec<Row>,
    /// The raw figures.
    pub details: Vec<Detail>,
    /// Things a reader must know (what was not measured, and why).
    pub notes: Vec<String>,
}

impl Report {
    /// Records the medians of a comparison in the detail table.
    pub fn measured(&mut self, workload: &str, unit: &'static str, measured: &[Measured]) {
        for m in measured {
            self.details.push(Detail {
                workload: workload.to_owned(),
                contender: m.name.clone(),
                value: m.median_ns,
                spread: format!("{:.1}..{:.1}", m.min_ns, m.max_ns),
                unit,
            });
        }
    }

    /// Records one raw figure.
    pub fn detail(&mut self, workload: &str, contender: &str, value: f64, unit: &'static str) {
        self.details.push(Detail {
            workload: workload.to_owned(),
            contender: contender.to_owned(),
            value,
            spread: String::new(),
            unit,
        });
    }

    /// The aligned tables.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let details: Vec<Vec<String>> = self
            .details
            .iter()
            .map(|d| {
                vec![
                    d.workload.clone(),
                    d.contender.clone(),
                    format!("{} {}", fmt_num(d.value), d.unit),
                    d.spread.clone(),
                ]
            })
            .collect();
        out.push_str("\n== raw figures (median of the rounds; spread = fastest..slowest) ==\n");
        out.push_str(&table(
            &["workload", "contender", "median", "spread"],
            &details,
        ));
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.workload.clone(),
                    r.ours.clone().unwrap_or_else(|| "-".into()),
                    r.peer.clone(),
                    r.checked
                        .filter(|_| r.ours.is_some())
                        .map_or("-".into(), |v| format!("{v:.3} ({})", r.ratio_kind)),
                    r.target.clone(),
                    r.verdict().into(),
                ]
            })
            .collect();
        out.push_str(
            "\n== summary: one line per target (ratio = median of the per-round ratios) ==\n",
        );
        out.push_str(&table(
            &["workload", "ours", "peer", "ratio", "target", "holds"],
            &rows,
        ));
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// The JSON document written next to the build output.
    pub fn to_json(&self, quick: bool, elapsed_s: f64) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "workload": r.workload, "ours": r.ours, "peer": r.peer,
                    "ratio": r.checked.filter(|_| r.ours.is_some()), "ratio_kind": r.ratio_kind,
                    "target": r.target, "holds": r.verdict(),
                })
            })
            .collect();
        let details: Vec<Value> = self
            .details
            .iter()
            .map(|d| {
                json!({
                    "workload": d.workload, "contender": d.contender,
                    "value": d.value, "unit": d.unit, "spread": d.spread,
                })
            })
            .collect();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        json!({
            "quick": quick,
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "unix_time": unix,
            "elapsed_s": elapsed_s,
            "summary": rows,
            "details": details,
            "notes": self.notes,
        })
    }
}

/// Where the summary JSON goes: `$CARGO_TARGET_DIR`, else the `target/`
/// holding this executable (`target/<profile>/deps/summary-…`), else the
/// `target/` next to the workspace root.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.ancestors().nth(3)
    {
        return dir.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

fn fmt_num(v: f64) -> String {
    match v.abs() {
        x if x >= 100.0 => format!("{v:.0}"),
        x if x >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// Left-aligned columns separated by two spaces, with a header rule.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(s, "{cell:<w$}  ");
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
