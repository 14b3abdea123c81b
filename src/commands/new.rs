//! `new <name>`: the next-numbered migration file with an UP/DOWN skeleton.

use serde::Serialize;

use super::Context;
use crate::error::Error;
use crate::migrations::{self, parse_file_name};

#[derive(Debug, Serialize)]
pub struct NewReport {
    pub version: i64,
    pub file: String,
}

const SKELETON: &str = "-- {name}
-- Directives go in this header: `-- transaction: none` runs the migration outside a
-- transaction (for CREATE INDEX CONCURRENTLY). An empty DOWN marks it irreversible.

-- UP


-- DOWN

";

pub fn new(ctx: &Context, name: &str) -> Result<NewReport, Error> {
    let dir = ctx.project.migrations_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::input(format!("cannot create {}: {e}", dir.display())))?;
    let domains = migrations::domains(ctx.project.managed_schemas());
    // Numbering reads file names only, so a broken file elsewhere does not block `new`.
    let highest = std::fs::read_dir(&dir)
        .map_err(|e| Error::input(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
            n.ends_with(".sql")
                .then(|| digits.parse::<i64>().ok())
                .flatten()
        })
        .max()
        .unwrap_or(0);
    let version = highest.checked_add(1).ok_or_else(|| {
        Error::input(format!(
            "the highest version in {} is {highest}, the largest a version can be; there is \
             no next number (renumber the files)",
            ctx.project.config.paths.migrations.display()
        ))
    })?;
    let file_name = migrations::file_name(version, name);
    parse_file_name(&file_name, &domains).map_err(|e| Error::input(format!("`{name}`: {e}")))?;
    let path = dir.join(&file_name);
    let text = SKELETON.replace("{name}", name);
    std::fs::write(&path, text)
        .map_err(|e| Error::input(format!("cannot write {}: {e}", path.display())))?;
    let shown = path
        .strip_prefix(&ctx.project.root)
        .unwrap_or(&path)
        .display()
        .to_string();
    Ok(NewReport {
        version,
        file: shown,
    })
}
