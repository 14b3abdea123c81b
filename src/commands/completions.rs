//! `completions` and `man`: generated from the clap definition itself (clap_complete,
//! clap_mangen), so they never disagree with `--help`.

use std::path::Path;

use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, Shell};
use crate::error::Error;

/// A shell completion script.
#[derive(Debug, Serialize)]
pub struct CompletionsReport {
    pub shell: String,
    pub script: String,
}

/// The man page, or the pages written into a directory.
#[derive(Debug, Serialize)]
pub struct ManReport {
    /// The roff text of migrate.1 when printed; empty when written to files.
    pub page: String,
    /// The files written, with `--dir`.
    pub files: Vec<String>,
}

pub fn completions(shell: Shell) -> CompletionsReport {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "migrate", &mut script);
    CompletionsReport {
        shell: shell.to_string(),
        script: String::from_utf8_lossy(&script).into_owned(),
    }
}

pub fn man(dir: Option<&Path>) -> Result<ManReport, Error> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .map_err(|e| Error::input(format!("cannot render the man page: {e}")))?;
        return Ok(ManReport {
            page: String::from_utf8_lossy(&page).into_owned(),
            files: Vec::new(),
        });
    };
    let cannot =
        |e: std::io::Error| Error::input(format!("cannot write into {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(cannot)?;
    clap_mangen::generate_to(command, dir).map_err(cannot)?;
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(cannot)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("migrate") && n.ends_with(".1"))
        .map(|n| dir.join(n).display().to_string())
        .collect();
    files.sort();
    Ok(ManReport {
        page: String::new(),
        files,
    })
}
