//! The kernel's modules import each other without a cycle: read from the
//! sources, a module (a file, or a folder with its files) names another
//! through `crate::` paths and `use crate::{…}` groups, and a type through
//! the module that defines it. The state (`kernel.rs`) sits below the
//! syscall handlers; the loop's seam (`runner.rs`) below both.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The module a source file belongs to: `ops/<x>` files are `ops::<x>`,
/// any other folder is one module with its files.
fn unit(rel: &str) -> String {
    let parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
    match parts.as_slice() {
        ["ops", x, ..] if *x != "mod" => format!("ops::{x}"),
        [x, ..] => x.to_string(),
        [] => String::new(),
    }
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p
                .strip_prefix(root)
                .expect("under src")
                .display()
                .to_string();
            let text = std::fs::read_to_string(&p).expect("read");
            // Unit tests may reach anywhere; comments name without importing.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((unit(&rel), code));
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let units: BTreeSet<String> = files.iter().map(|(u, _)| u.clone()).collect();
    let defines = Regex::new(r"pub(?:\(crate\))? (?:struct|trait|enum|type) (\w+)").expect("re");
    let mut owner = BTreeMap::new();
    for (u, code) in &files {
        for c in defines.captures_iter(code) {
            owner.insert(c[1].to_string(), u.clone());
        }
    }
    let path = Regex::new(r"crate::(\w+)(?:::(\w+))?").expect("re");
    let group = Regex::new(r"use crate::\{([^}]*)\}").expect("re");
    let word = Regex::new(r"\b\w+\b").expect("re");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (u, code) in &files {
        let mut named = Vec::new();
        for c in path.captures_iter(code) {
            let sub = c.get(2).map(|m| format!("{}::{}", &c[1], m.as_str()));
            named.push(
                sub.filter(|s| units.contains(s))
                    .unwrap_or(c[1].to_string()),
            );
        }
        for g in group.captures_iter(code) {
            named.extend(word.find_iter(&g[1]).map(|w| w.as_str().to_string()));
        }
        for n in named {
            let target = owner.get(&n).cloned().unwrap_or(n);
            if units.contains(&target) && &target != u && u != "lib" {
                edges.entry(u.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

/// A cycle through `from`, if any (depth-first).
fn cycle(
    edges: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = stack.iter().position(|s| s == node) {
        return Some(stack[i..].to_vec());
    }
    if done.contains(node) {
        return None;
    }
    stack.push(node.to_string());
    for next in edges.get(node).into_iter().flatten() {
        if let Some(c) = cycle(edges, next, stack, done) {
            return Some(c);
        }
    }
    stack.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_kernels_modules_import_each_other_without_a_cycle() {
    let edges = graph();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = cycle(&edges, node, &mut Vec::new(), &mut done) {
            panic!("modules import each other in a cycle: {}", c.join(" → "));
        }
    }
}

#[test]
fn the_state_and_the_loops_seam_sit_below_the_handlers() {
    let edges = graph();
    for low in ["kernel", "runner", "dispatches", "sessions"] {
        let above: Vec<_> = edges[low]
            .iter()
            .filter(|m| {
                m.starts_with("ops") || ["dispatch", "router", "start"].contains(&m.as_str())
            })
            .collect();
        assert!(above.is_empty(), "{low} imports {above:?}");
    }
    // The check sees imports at all: the router imports the op handlers.
    assert!(edges["router"].contains("ops"), "{:?}", edges["router"]);
}
