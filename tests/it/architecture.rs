//! The direction of dependencies (README, "Development"), checked by parsing `src/` with `syn`:
//! a command never imports `output` (it returns a report; the printer renders it) nor another
//! command module (what two commands share lives below them, in `commands/mod.rs` or the
//! library), and the library layers import neither `commands` nor `output`.
//!
//! Every `use` tree and every path (in types, expressions, patterns, and the `a::b` sequences
//! inside macro calls) is resolved the way the compiler would to the item it names:
//! `crate::`, `self::` and `super::` against the file's module (`src/a/b.rs` is `crate::a::b`,
//! `src/a/mod.rs` is `crate::a`, inline `mod x { .. }` nests), a leading name against the
//! module's child modules and `use` bindings (a glob import's too), then through re-exports
//! (`use` items anywhere, e.g. `pub(crate) use output::Printer as P;` in `lib.rs`) until it
//! reaches the defining module. A path breaks a rule if any step of that chain does.
//!
//! `ARCHITECTURE_SRC=/path/to/src` points the check at another tree (e.g. an old revision).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

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

/// How many re-exports a path is followed through before the check gives up on it.
const MAX_HOPS: usize = 32;

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

/// A module's path below the crate root: `[]` for the root, `["commands", "run"]` for
/// `crate::commands::run`.
type ModPath = Vec<String>;

/// The module a file under `src/` defines, from its path relative to `src/` (`/`-separated):
/// `lib.rs` is the root, `a/mod.rs` is `a`, `a/b.rs` is `a::b`. `None` for `main.rs`, which
/// is the binary, another crate.
fn module_of(relative: &str) -> Option<ModPath> {
    let stem = relative.strip_suffix(".rs")?;
    let mut parts: ModPath = stem.split('/').map(str::to_string).collect();
    match parts.as_slice() {
        [only] if only == "lib" => return Some(Vec::new()),
        [only] if only == "main" => return None,
        _ => {}
    }
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    Some(parts)
}

/// What each module declares, as far as paths resolve through it.
#[derive(Default)]
struct Module {
    /// Child modules (`mod x;` and `mod x { .. }`).
    children: BTreeSet<String>,
    /// Other items defined here (functions, types, traits, constants, macros).
    items: BTreeSet<String>,
    /// `use` bindings: the name they bind, and the path (relative to this module) they name.
    uses: BTreeMap<String, Vec<String>>,
    /// Glob imports (`use a::b::*`): the path of each module they import from.
    globs: Vec<Vec<String>>,
}

/// Every module of the crate, by path.
#[derive(Default)]
struct Crate {
    modules: BTreeMap<ModPath, Module>,
}

/// One leaf of a `use` tree: the full path it names, the name it binds (none for a glob).
struct UseLeaf {
    path: Vec<String>,
    binds: Option<String>,
}

/// The leaves of a `use` tree: `use a::{b, c::d as e, f::*}` gives `a::b` (binds `b`),
/// `a::c::d` (binds `e`) and the glob `a::f`; `use a::{self}` gives `a` (binds `a`).
fn use_leaves(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let (path, binds) = leaf(prefix, &n.ident.to_string());
            let binds = binds.unwrap_or_else(|| n.ident.to_string());
            out.push(UseLeaf {
                path,
                binds: Some(binds),
            });
        }
        syn::UseTree::Rename(r) => {
            let (path, _) = leaf(prefix, &r.ident.to_string());
            out.push(UseLeaf {
                path,
                binds: Some(r.rename.to_string()),
            });
        }
        syn::UseTree::Glob(_) => out.push(UseLeaf {
            path: prefix.clone(),
            binds: None,
        }),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                use_leaves(tree, prefix, out);
            }
        }
    }
}

/// The path a `use` leaf named `name` names after `prefix`; `self` names the prefix itself
/// (and binds its last segment).
fn leaf(prefix: &[String], name: &str) -> (Vec<String>, Option<String>) {
    if name == "self" && !prefix.is_empty() {
        (prefix.to_vec(), prefix.last().cloned())
    } else {
        let mut path = prefix.to_vec();
        path.push(name.to_string());
        (path, None)
    }
}

/// The paths (of two segments or more) in a macro call's tokens: `format!("{}", a::b(x))`
/// gives `a::b`. Macro arguments are tokens to `syn`, not expressions, so they are scanned.
fn macro_paths(mut cursor: syn::buffer::Cursor, out: &mut Vec<Vec<String>>) {
    while !cursor.eof() {
        if let Some((inside, _, _, after)) = cursor.any_group() {
            macro_paths(inside, out);
            cursor = after;
            continue;
        }
        if let Some((ident, mut next)) = cursor.ident() {
            let mut segments = vec![ident.to_string()];
            while let Some((colon, after_colon)) = next.punct() {
                let Some((colon2, after_colons)) = after_colon.punct() else {
                    break;
                };
                let Some((ident, after_ident)) = after_colons.ident() else {
                    break;
                };
                if colon.as_char() != ':' || colon2.as_char() != ':' {
                    break;
                }
                segments.push(ident.to_string());
                next = after_ident;
            }
            if segments.len() > 1 {
                out.push(segments);
            }
            cursor = next;
            continue;
        }
        match cursor.token_tree() {
            Some((_, after)) => cursor = after,
            None => break,
        }
    }
}

/// First pass: what every module declares.
struct Declarations<'a> {
    krate: &'a mut Crate,
    module: ModPath,
}

impl Declarations<'_> {
    fn here(&mut self) -> &mut Module {
        self.krate.modules.entry(self.module.clone()).or_default()
    }

    fn item(&mut self, ident: &syn::Ident) {
        self.here().items.insert(ident.to_string());
    }
}

impl<'ast> Visit<'ast> for Declarations<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.here().children.insert(m.ident.to_string());
        if m.content.is_some() {
            self.module.push(m.ident.to_string());
            self.here();
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
        for leaf in leaves {
            match leaf.binds {
                Some(name) if name != "_" => {
                    self.here().uses.insert(name, leaf.path);
                }
                Some(_) => {}
                None => self.here().globs.push(leaf.path),
            }
        }
    }

    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        self.item(&i.sig.ident);
        syn::visit::visit_item_fn(self, i);
    }
    fn visit_item_struct(&mut self, i: &'ast syn::ItemStruct) {
        self.item(&i.ident);
    }
    fn visit_item_enum(&mut self, i: &'ast syn::ItemEnum) {
        self.item(&i.ident);
    }
    fn visit_item_union(&mut self, i: &'ast syn::ItemUnion) {
        self.item(&i.ident);
    }
    fn visit_item_trait(&mut self, i: &'ast syn::ItemTrait) {
        self.item(&i.ident);
    }
    fn visit_item_type(&mut self, i: &'ast syn::ItemType) {
        self.item(&i.ident);
    }
    fn visit_item_const(&mut self, i: &'ast syn::ItemConst) {
        self.item(&i.ident);
    }
    fn visit_item_static(&mut self, i: &'ast syn::ItemStatic) {
        self.item(&i.ident);
    }
    fn visit_item_macro(&mut self, i: &'ast syn::ItemMacro) {
        if let Some(ident) = &i.ident {
            self.item(ident);
        }
    }
}

impl Crate {
    /// The absolute path `segments`, written in `module`, names (before re-exports are
    /// followed); `None` when it is not this crate's (`std::`, another crate, a local).
    /// A path of one segment may be a local variable: it is looked up in the module's own
    /// declarations only, not in what glob imports bring in.
    fn absolute(&self, module: &[String], segments: &[String], hops: usize) -> Option<ModPath> {
        let (first, rest) = segments.split_first()?;
        if hops > MAX_HOPS {
            return None;
        }
        match first.as_str() {
            "crate" => return Some(rest.to_vec()),
            "self" | "super" => {
                let mut base = module.to_vec();
                let mut rest = segments;
                while let Some((head, tail)) = rest.split_first() {
                    match head.as_str() {
                        "self" => {}
                        "super" => {
                            base.pop()?;
                        }
                        _ => break,
                    }
                    rest = tail;
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            _ => {}
        }
        let found = self.lookup(module, first, segments.len() > 1, hops)?;
        Some(found.into_iter().chain(rest.iter().cloned()).collect())
    }

    /// The absolute path of the name `name` as seen in `module`: a child module, an item, a
    /// `use` binding, or (when `globs`) a name a glob import brings in.
    fn lookup(&self, module: &[String], name: &str, globs: bool, hops: usize) -> Option<ModPath> {
        let here = self.modules.get(module)?;
        if here.children.contains(name) || here.items.contains(name) {
            let mut path = module.to_vec();
            path.push(name.to_string());
            return Some(path);
        }
        if let Some(target) = here.uses.get(name) {
            return self.absolute(module, target, hops + 1);
        }
        if globs {
            for glob in &here.globs {
                let Some(source) = self.absolute(module, glob, hops + 1) else {
                    continue;
                };
                if let Some(found) = self.lookup(&source, name, true, hops + 1) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// Every absolute path on the way from `path` to the item it names: `path` itself, then
    /// the target of each re-export it goes through.
    fn chain(&self, path: ModPath) -> Vec<ModPath> {
        let mut chain = vec![path];
        'hop: while chain.len() <= MAX_HOPS {
            let path = chain.last().expect("the chain starts with the path");
            for i in 0..path.len() {
                let (module, name) = (&path[..i], &path[i]);
                let Some(here) = self.modules.get(module) else {
                    break;
                };
                if here.children.contains(name) {
                    continue;
                }
                if here.items.contains(name) {
                    break;
                }
                let through = match here.uses.get(name) {
                    Some(target) => self.absolute(module, target, 0),
                    None => self.lookup(module, name, true, 0),
                };
                let Some(through) = through else { break };
                let next: ModPath = through.into_iter().chain(path[i + 1..].to_vec()).collect();
                if chain.contains(&next) {
                    break 'hop;
                }
                chain.push(next);
                continue 'hop;
            }
            break;
        }
        chain
    }
}

/// Second pass: every path a file names, resolved and checked against the rules.
struct Check<'a> {
    krate: &'a Crate,
    module: ModPath,
    shown: &'a str,
    commands: &'a BTreeSet<String>,
    found: &'a mut Vec<String>,
}

impl Check<'_> {
    /// Checks the path `segments` written here, and each re-export it goes through.
    fn check(&mut self, segments: &[String]) {
        let Some(absolute) = self.krate.absolute(&self.module, segments, 0) else {
            return;
        };
        for path in self.krate.chain(absolute) {
            self.rule(&path);
        }
    }

    fn rule(&mut self, path: &[String]) {
        let Some(target) = path.first() else { return };
        let shown = self.shown;
        match self.module.first().map(String::as_str) {
            Some("commands") => {
                if target == "output" {
                    self.found.push(format!("{shown} imports output"));
                }
                let this = self.module.get(1);
                if let Some(other) = path.get(1).filter(|_| target == "commands") {
                    if self.commands.contains(other) && this != Some(other) {
                        self.found
                            .push(format!("{shown} imports the command module `{other}`"));
                    }
                }
            }
            Some(layer)
                if LIBRARY.contains(&layer) && (target == "commands" || target == "output") =>
            {
                self.found
                    .push(format!("{shown} (library) imports {target}"));
            }
            _ => {}
        }
    }
}

impl<'ast> Visit<'ast> for Check<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.module.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
        for leaf in leaves {
            self.check(&leaf.path);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        // A leading `::` names another crate.
        if p.leading_colon.is_none() {
            self.check(&segments);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let buffer = syn::buffer::TokenBuffer::new2(m.tokens.clone());
        let mut paths = Vec::new();
        macro_paths(buffer.begin(), &mut paths);
        for path in paths {
            self.check(&path);
        }
        syn::visit::visit_macro(self, m);
    }
}

/// Each way the dependency rules are broken by `files` (path relative to `src/`, with `/`,
/// and text), one line each.
fn check_sources(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    let mut krate = Crate::default();
    let mut parsed = Vec::new();
    for (relative, text) in files {
        let Some(module) = module_of(relative) else {
            continue;
        };
        match syn::parse_file(text) {
            Ok(file) => {
                let mut declarations = Declarations {
                    krate: &mut krate,
                    module: module.clone(),
                };
                declarations.here();
                declarations.visit_file(&file);
                parsed.push((relative, module, file));
            }
            Err(err) => found.push(format!("{relative} does not parse: {err}")),
        }
    }
    // The command modules: the files in `src/commands/` (but `mod.rs`).
    let commands: BTreeSet<String> = parsed
        .iter()
        .filter_map(|(_, module, _)| match module.as_slice() {
            [commands, name] if commands == "commands" => Some(name.clone()),
            _ => None,
        })
        .collect();
    for (relative, module, file) in &parsed {
        let mut check = Check {
            krate: &krate,
            module: module.clone(),
            shown: relative,
            commands: &commands,
            found: &mut found,
        };
        check.visit_file(file);
    }
    found.sort();
    found.dedup();
    found
}

/// Each way the dependency rules are broken in the tree at `src`, one line each.
fn violations(src: &Path) -> Vec<String> {
    let files: Vec<(String, String)> = rust_files(src)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(src).unwrap_or(&path);
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let text = std::fs::read_to_string(&path).expect("source files are readable");
            (relative.join("/"), text)
        })
        .collect();
    check_sources(&files)
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

/// A small crate shaped like ours, with `extra` added to the file it names (or as a new file).
fn crate_with(changes: &[(&str, &str)]) -> Vec<String> {
    let mut files: Vec<(String, String)> = [
        (
            "lib.rs",
            "pub(crate) mod commands;\npub(crate) mod output;\npub(crate) mod db;\n\
             pub(crate) mod engine;\nuse commands::Context;\nuse output::Printer;\n",
        ),
        (
            "commands/mod.rs",
            "pub mod run;\npub mod status;\npub mod promote;\npub mod verify;\n\
             pub struct Context;\npub fn count() {}\npub(crate) fn through_pooler() {}\n",
        ),
        (
            "commands/run.rs",
            "use super::{count, Context};\nuse crate::engine::Reporter;\n\
             pub fn up(_: &Context) { count(); super::through_pooler(); }\n\
             #[cfg(test)]\nmod tests { use super::up; use super::super::Context; }\n",
        ),
        ("commands/status.rs", "use super::Context;\n"),
        ("commands/promote.rs", "use crate::db;\n"),
        ("commands/verify.rs", "use crate::{db, engine::Locking};\n"),
        (
            "output/mod.rs",
            "pub struct Printer;\nuse crate::commands::run;\n",
        ),
        ("db/mod.rs", "pub mod state;\npub struct Pool;\n"),
        ("db/state.rs", "use super::Pool;\n"),
        (
            "engine/mod.rs",
            "pub trait Reporter {}\npub struct Locking;\nuse crate::db::state;\n",
        ),
        ("main.rs", "use migrate::output::Printer;\n"),
    ]
    .iter()
    .map(|(path, text)| (path.to_string(), text.to_string()))
    .collect();
    for (path, extra) in changes {
        match files.iter_mut().find(|(p, _)| p.as_str() == *path) {
            Some((_, text)) => text.push_str(extra),
            None => files.push((path.to_string(), extra.to_string())),
        }
    }
    check_sources(&files)
}

#[test]
fn the_check_passes_what_the_rules_allow() {
    assert_eq!(crate_with(&[]), Vec::<String>::new());
}

#[test]
fn the_check_sees_imports_in_every_spelling() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // a) a nested group: the import after the inner `}` counts too.
        (
            &[(
                "commands/status.rs",
                "use crate::{engine::{Locking, Reporter}, output::Printer};",
            )],
            "commands/status.rs imports output",
        ),
        // b) a command module in a group with a library module.
        (
            &[("commands/promote.rs", "use crate::{db, commands::run};")],
            "commands/promote.rs imports the command module `run`",
        ),
        (
            &[("commands/promote.rs", "use super::{verify, Context};")],
            "commands/promote.rs imports the command module `verify`",
        ),
        // c), d) a library layer through `super::` or `self::`.
        (
            &[("db/mod.rs", "use super::output::Printer;")],
            "db/mod.rs (library) imports output",
        ),
        (
            &[("engine/mod.rs", "use super::commands::run;")],
            "engine/mod.rs (library) imports commands",
        ),
        (
            &[("db/state.rs", "use super::super::output;")],
            "db/state.rs (library) imports output",
        ),
        // e) through a re-export at the crate root (an alias), and a private one there.
        (
            &[
                ("lib.rs", "pub(crate) use output::Printer as P;"),
                ("commands/status.rs", "use crate::P;"),
            ],
            "commands/status.rs imports output",
        ),
        (
            &[("commands/status.rs", "fn f() { let _ = crate::Printer; }")],
            "commands/status.rs imports output",
        ),
        (
            &[
                ("lib.rs", "pub(crate) use commands::run as r;"),
                ("engine/mod.rs", "fn f() { crate::r::up(); }"),
            ],
            "engine/mod.rs (library) imports commands",
        ),
        // A re-export in commands/mod.rs of a command module, used by another.
        (
            &[
                ("commands/mod.rs", "pub(crate) use run::up;"),
                ("commands/status.rs", "fn f() { super::up(); }"),
            ],
            "commands/status.rs imports the command module `run`",
        ),
        // Fully qualified paths without a `use`: in an expression, a type, a macro call.
        (
            &[(
                "commands/status.rs",
                "fn f() { let _ = crate::output::Printer::new(1); }",
            )],
            "commands/status.rs imports output",
        ),
        (
            &[("commands/status.rs", "fn f(_: &super::run::Thing) {}")],
            "commands/status.rs imports the command module `run`",
        ),
        (
            &[(
                "commands/status.rs",
                "fn f() { println!(\"{}\", crate::output::render(1)); }",
            )],
            "commands/status.rs imports output",
        ),
        // Through a glob import, and through an alias of `crate`'s module.
        (
            &[("commands/status.rs", "use super::*;\nfn f() { run::up(); }")],
            "commands/status.rs imports the command module `run`",
        ),
        (
            &[(
                "commands/status.rs",
                "use crate::output as o;\nfn f() { o::Printer; }",
            )],
            "commands/status.rs imports output",
        ),
        // Inside an inline module of a library file.
        (
            &[(
                "db/mod.rs",
                "mod tests { fn f() { super::super::commands::count(); } }",
            )],
            "db/mod.rs (library) imports commands",
        ),
    ];
    for (changes, expected) in cases {
        let found = crate_with(changes);
        assert!(
            found.iter().any(|line| line == expected),
            "{changes:?} should give {expected:?}, gave {found:?}"
        );
    }
}

#[test]
fn the_check_reports_a_file_it_cannot_parse() {
    let found = crate_with(&[("commands/status.rs", "fn (")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("commands/status.rs does not parse"));
}
