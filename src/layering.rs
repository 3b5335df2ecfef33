//! The house rules, checked: which top-level modules each may import. Data flows
//! `ops → sync → sinks → sources → store → model`, with `vendors`, `config`, `http` on the
//! ground floor; an import against that direction is how cycles and tangles start (the
//! storefront sink once borrowed the orders source's client; the model once read the store's
//! order type). The test reads every file under `src/` and resolves each `crate::…` and
//! `super::…` path to the top-level module it lands in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// For each module, the top-level modules it must not import, and why.
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "model",
        &[
            "store", "sync", "sinks", "sources", "vendors", "ops", "endpoint",
        ],
        "the model is pure: the store and the pipeline call it, never the reverse",
    ),
    (
        "store",
        &["sync", "sinks", "sources", "vendors", "ops", "endpoint"],
        "the store persists the model's types and nothing above it",
    ),
    (
        "vendors",
        &["sources", "sinks", "sync", "store", "ops", "endpoint"],
        "a vendor's transport serves the sources and the sinks alike",
    ),
    (
        "sinks",
        &["sources", "sync", "ops", "endpoint"],
        "sinks share a vendor's transport through `vendors`, never through a source",
    ),
    (
        "sources",
        &["sinks", "sync", "ops", "endpoint"],
        "sources feed the store; the pipeline (`sync`) drives them",
    ),
    (
        "progress",
        &[
            "model", "store", "sync", "sinks", "sources", "vendors", "ops", "endpoint",
        ],
        "every layer counts into the progress counters, so they sit on the ground floor",
    ),
    (
        "sync",
        &["ops", "endpoint"],
        "the pipeline reports to the commands and the endpoint; they read it, not the reverse",
    ),
    (
        "ops",
        &["endpoint"],
        "the endpoint serves the commands' reports; `status` asks a running daemon over HTTP",
    ),
];

/// The module path of a file under `src/`: `sinks/shopify/mod.rs` → `[sinks, shopify]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// The top-level modules a file's code (comments skipped) refers to, by `crate::x`,
/// `crate::{x, …}` or enough `super::` to climb out of its own top-level module.
fn imported_tops(module: &[String], source: &str) -> BTreeSet<String> {
    let mut tops = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                tops.extend(inner.split(',').filter_map(first_ident));
            } else if let Some(name) = first_ident(after) {
                tops.insert(name);
            }
            rest = after;
        }
        let mut rest = code;
        while let Some(at) = rest.find("super::") {
            // Only where a path starts: not `mysuper::`.
            let starts_path = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
            let mut after = &rest[at..];
            let mut climbs = 0;
            while let Some(next) = after.strip_prefix("super::") {
                climbs += 1;
                after = next;
            }
            if starts_path && climbs > 0 {
                let base = &module[..module.len().saturating_sub(climbs)];
                let top = match base.first() {
                    Some(top) => Some(top.clone()),
                    None => first_ident(after),
                };
                tops.extend(top);
            }
            rest = after;
        }
    }
    tops
}

/// The identifier a path segment starts with.
fn first_ident(text: &str) -> Option<String> {
    let ident: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import that breaks a rule, as `file: imports x (why)`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("a file under src");
        let module = module_path(relative);
        let Some((_, forbidden, why)) = RULES
            .iter()
            .find(|(top, _, _)| module.first().is_some_and(|m| m == top))
        else {
            continue;
        };
        let source = std::fs::read_to_string(&file).expect("reading a source file");
        for top in imported_tops(&module, &source) {
            if forbidden.contains(&top.as_str()) {
                found.push(format!("{}: imports {top} ({why})", relative.display()));
            }
        }
    }
    found
}

#[test]
fn imports_follow_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the layering:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn every_form_of_import_is_seen() {
    let sink: Vec<String> = ["sinks", "shopify", "readback"].map(String::from).into();
    let tops = |source: &str| imported_tops(&sink, source);
    assert!(tops("use crate::sources::shopify::ShopifyClient;").contains("sources"));
    assert!(tops("use crate::{config, sources::shopify};").contains("sources"));
    assert!(tops("let c = crate::sources::shopify::ShopifyClient::new();").contains("sources"));
    // Three levels up from sinks::shopify::readback is the crate root.
    assert!(tops("use super::super::super::sources::shopify;").contains("sources"));
    // Two levels up is still inside `sinks`.
    assert_eq!(
        tops("use super::super::DeliveryError;"),
        BTreeSet::from(["sinks".to_string()])
    );
    assert!(tops("// use crate::sources::shopify;").is_empty());
    assert!(tops("use crate::vendors::shopify::ShopifyClient; // not crate::sources").len() == 1);
}

#[test]
fn a_forbidden_import_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(
        model.join("history.rs"),
        "use chrono::Utc;\nuse crate::store::OrderFacts;\n",
    )
    .unwrap();
    std::fs::write(model.join("mod.rs"), "pub mod history;\nuse super::sync;\n").unwrap();
    let found = violations(dir.path());
    assert_eq!(
        found,
        [
            "model/history.rs: imports store (the model is pure: the store and the pipeline call it, never the reverse)",
            "model/mod.rs: imports sync (the model is pure: the store and the pipeline call it, never the reverse)",
        ]
    );
}
