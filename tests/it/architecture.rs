//! The direction of dependencies (README, "Development"), checked by reading `src/`: a
//! command never imports `output` (it returns a report; the printer renders it) nor another
//! command (what two commands share lives below them), and the library layers import neither
//! `commands` nor `output`.
//!
//! `ARCHITECTURE_SRC=/path/to/src` points the check at another tree (e.g. an old revision).

use std::path::{Path, PathBuf};

/// Modules below the commands: they may not import `commands` or `output`.
const LIBRARY: &[&str] = &[
    "conninfo",
    "config",
    "db",
    "engine",
    "error",
    "lint",
    "local",
    "lockfile",
    "migrations",
    "redact",
    "seeds",
    "target",
    "verify",
];

fn src() -> PathBuf {
    std::env::var_os("ARCHITECTURE_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The file's code without comments (line comments and doc comments), so prose that names a
/// module is not an import.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("source files are readable");
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths the code names through `prefix` (`crate::`, `super::`): `crate::output::Bar`
/// gives `output`, `use super::{run, Context}` gives `run` and `Context`.
fn named_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // Only a path that starts here (`crate::`), not the tail of another (`xcrate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let group = rest.trim_start();
        if let Some(inner) = group.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            for item in inner[..end].split(',') {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                let head = head.split_whitespace().next().unwrap_or("");
                if !head.is_empty() {
                    names.push(head.to_string());
                }
            }
        } else {
            let head: String = group
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(head);
        }
    }
    names
}

/// Each way the dependency rules are broken in the tree at `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let commands_dir = src.join("commands");
    let commands: Vec<String> = rust_files(&commands_dir)
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .filter(|name| name != "mod")
        .collect();
    for path in rust_files(&commands_dir) {
        let shown = path
            .strip_prefix(src)
            .unwrap_or(&path)
            .display()
            .to_string();
        let this = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let code = code(&path);
        let crate_names = named_after(&code, "crate::");
        let super_names = named_after(&code, "super::");
        if crate_names.iter().any(|n| n == "output") || super_names.iter().any(|n| n == "output") {
            found.push(format!("{shown} imports output"));
        }
        // `super::` from a command is `commands`; from `mod.rs` it is the crate root.
        let siblings: Vec<&String> = if this == "mod" {
            Vec::new()
        } else {
            super_names.iter().collect()
        };
        let via_crate = named_after(&code, "crate::commands::");
        for name in siblings.into_iter().chain(&via_crate) {
            if name != this && commands.contains(name) {
                found.push(format!("{shown} imports the command module `{name}`"));
            }
        }
    }
    for layer in LIBRARY {
        let dir = src.join(layer);
        let files = if dir.is_dir() {
            rust_files(&dir)
        } else {
            vec![src.join(format!("{layer}.rs"))]
        };
        for path in files.into_iter().filter(|p| p.exists()) {
            let shown = path
                .strip_prefix(src)
                .unwrap_or(&path)
                .display()
                .to_string();
            for name in named_after(&code(&path), "crate::") {
                if name == "commands" || name == "output" {
                    found.push(format!("{shown} (library) imports {name}"));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn dependencies_flow_one_way() {
    let src = src();
    assert!(
        src.join("commands").is_dir(),
        "no commands/ under {}",
        src.display()
    );
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "dependencies must flow one way (README, Development):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_imports_in_every_spelling() {
    let code = "use super::{count, run::up, Context};\nuse crate::output::Bar;\n\
                let x = crate::commands::seed::load;\nlet y = xcrate::output;";
    assert_eq!(named_after(code, "super::"), ["count", "run", "Context"]);
    assert_eq!(named_after(code, "crate::"), ["output", "commands"]);
    assert_eq!(named_after(code, "crate::commands::"), ["seed"]);
}
