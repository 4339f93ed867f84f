//! Instruction counts from callgrind's output file (valgrind's format: `events: Ir`, names
//! compressed as `fn=(id) name`, a call's inclusive cost on the line after its `calls=`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The simulated board's hardware models are entered only through these functions (the
/// register block, the DMA mapper and the delay the drivers are given): their inclusive cost is
/// what the models cost, everything else is the software a board would run.
pub const MODEL_ENTRIES: [&str; 3] = [
    "<k230_hal::sim::dwc2_model::SimRegs as ",
    "<k230_hal::sim::dwc2_model::SimDma as ",
    "<k230_hal::sim::dwc2_model::SimDelay as ",
];

/// Instructions executed by a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// All of the process's instructions.
    pub total: u64,
    /// Those executed inside calls to functions named by [`MODEL_ENTRIES`].
    pub models: u64,
}

/// Reads a callgrind output file.
pub fn read(path: &Path) -> Result<Count> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse(&text)
}

/// Parses callgrind's output format.
pub fn parse(text: &str) -> Result<Count> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut callee: Option<&str> = None;
    let mut arc_follows = false;
    let mut total = None;
    let mut models = 0u64;
    for line in text.lines() {
        if arc_follows {
            arc_follows = false;
            let cost = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u64>().ok())
                .with_context(|| format!("call cost line {line:?}"))?;
            if callee.is_some_and(|name| MODEL_ENTRIES.iter().any(|m| name.starts_with(m))) {
                models += cost;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("cfn=") {
            callee = Some(resolve(&mut names, rest));
        } else if let Some(rest) = line.strip_prefix("fn=") {
            resolve(&mut names, rest);
        } else if line.starts_with("calls=") {
            arc_follows = true;
        } else if let Some(rest) = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))
        {
            total = rest.split_whitespace().next().and_then(|t| t.parse().ok());
        }
    }
    let Some(total) = total else {
        bail!("no totals/summary line");
    };
    Ok(Count { total, models })
}

/// A function name from `(id) name` (defining the id) or `(id)` (using it) or a plain name.
fn resolve<'t>(names: &mut HashMap<&'t str, &'t str>, spec: &'t str) -> &'t str {
    let Some(rest) = spec.strip_prefix('(') else {
        return spec;
    };
    let Some((id, name)) = rest.split_once(')') else {
        return spec;
    };
    let name = name.trim_start();
    if name.is_empty() {
        names.get(id).copied().unwrap_or(spec)
    } else {
        names.insert(id, name);
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape callgrind 3.19 writes (compressed names, relative positions).
    const SAMPLE: &str = "\
version: 1
creator: callgrind-3.19.0
events: Ir
summary: 1000
fl=(1) driver.rs
fn=(1) k230_hal::usb::dwc2::Dwc2Host::poll
10 50
cfl=(2) model.rs
cfn=(2) <k230_hal::sim::dwc2_model::SimRegs as k230_hal::reg::RegisterBlock>::read32
calls=3 20
+2 300
cfn=(3) memcpy
calls=1 0
* 40
fn=(2)
20 100
fn=(4) k230_hal::eth::rtl8152::device::receive
5 60
cfn=(2)
calls=1 20
-5 200
totals: 1000
";

    #[test]
    fn totals_and_the_inclusive_cost_of_model_entries() {
        assert_eq!(
            parse(SAMPLE).unwrap(),
            Count {
                total: 1000,
                models: 500
            }
        );
    }

    #[test]
    fn a_file_without_totals_is_an_error() {
        assert!(parse("events: Ir\nfn=(1) x\n1 2\n").is_err());
    }
}
