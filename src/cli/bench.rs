//! `bench-control`: runs the control bench ([`crate::bench`]) and prints
//! its scores as a table or JSON.

use std::process::ExitCode;

use super::args::BenchControlArgs;
use super::error::{CliError, CmdResult, Message};
use crate::bench::{self, BenchAlgorithm, PlantFile};

/// `kasa-thermostat bench-control [--plant FILE]... [--algorithm A]... [--days N] [--json] [--trace DIR]`.
pub(crate) fn bench_control(a: BenchControlArgs) -> CmdResult {
    let plants = if a.plants.is_empty() {
        bench::builtin::plants().map_err(CliError::failed)?
    } else {
        a.plants
            .iter()
            .map(|p| PlantFile::load(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(CliError::failed)?
    };
    let algorithms = if a.algorithms.is_empty() {
        BenchAlgorithm::ALL.to_vec()
    } else {
        a.algorithms
    };
    if let Some(dir) = &a.trace {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::failed(Message(format!(
                "cannot create the trace directory {}: {e}",
                dir.display()
            )))
        })?;
    }
    let mut results = Vec::new();
    for p in &plants {
        for alg in &algorithms {
            let r = bench::run(p, *alg, a.days, a.trace.as_deref()).map_err(CliError::failed)?;
            results.push(r);
        }
    }
    if a.json {
        let text = serde_json::to_string_pretty(&results).map_err(CliError::failed)?;
        outln!("{text}");
    } else {
        out!("{}", bench::table(&results));
    }
    Ok(ExitCode::SUCCESS)
}
