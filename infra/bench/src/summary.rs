//! The figures a benchmark hands to `courier-bench all`. When `COURIER_BENCH_SUMMARY`
//! names a file, each benchmark appends one JSON line to it once it has measured
//! everything without a failed request: its name, the conditions it ran under
//! (load average before, store settings, quotas) and its headline rows. A benchmark
//! that fails writes nothing, so a summary can never show figures of a failed run.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::Row;

/// The variable naming the summary file.
pub const ENV: &str = "COURIER_BENCH_SUMMARY";

/// One benchmark's part of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub bench: String,
    pub conditions: String,
    pub rows: Vec<Row>,
}

/// Appends `bench`'s section to the summary file, if one is named.
pub fn record(bench: &str, conditions: &str, rows: &[Row]) -> Result<()> {
    match std::env::var_os(ENV) {
        Some(path) => record_to(Path::new(&path), bench, conditions, rows),
        None => Ok(()),
    }
}

/// Appends `bench`'s section to the summary file at `path`.
pub fn record_to(path: &Path, bench: &str, conditions: &str, rows: &[Row]) -> Result<()> {
    let line = json!({
        "bench": bench,
        "conditions": conditions,
        "rows": rows
            .iter()
            .map(|r| json!([r.what, r.value, r.baseline, r.ratio]))
            .collect::<Vec<_>>(),
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the summary file {}", path.display()))?;
    writeln!(file, "{line}")
        .with_context(|| format!("cannot write the summary file {}", path.display()))
}

/// The sections in a summary file, in the order they were recorded; a missing file
/// holds none.
pub fn read(path: &Path) -> Result<Vec<Section>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines().map(parse).collect()
}

fn parse(line: &str) -> Result<Section> {
    let value: Value = serde_json::from_str(line).context("a summary line is not JSON")?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let rows = value["rows"]
        .as_array()
        .context("a summary line has no rows")?
        .iter()
        .map(|row| match row.as_array().map(Vec::as_slice) {
            Some([what, value, baseline, ratio]) => Some(Row {
                what: text(what)?,
                value: text(value)?,
                baseline: text(baseline)?,
                ratio: text(ratio)?,
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .context("a summary row is not four strings")?;
    Ok(Section {
        bench: text(&value["bench"]).context("a summary line has no bench")?,
        conditions: text(&value["conditions"]).unwrap_or_default(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_section_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.jsonl");
        assert_eq!(read(&path).unwrap(), Vec::new());
        let rows = vec![Row {
            what: "1:1 sends/s \"quoted\"".into(),
            value: "1547".into(),
            baseline: "3995 native".into(),
            ratio: "0.39".into(),
        }];
        record_to(&path, "messaging", "load 0.10", &rows).unwrap();
        record_to(&path, "queue", "", &[]).unwrap();
        let sections = read(&path).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].bench, "messaging");
        assert_eq!(sections[0].conditions, "load 0.10");
        assert_eq!(sections[0].rows, rows);
        assert_eq!(sections[1].bench, "queue");
        assert!(parse("{\"bench\": \"x\"}").is_err());
    }
}
