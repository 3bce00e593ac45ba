//! The layering of `src/`, checked from the source text: which module's code names which
//! other module (`use` lines and paths written inline), as docs/ARCHITECTURE.md draws it.
//!
//! - No cycle between the top-level modules (`core`, `store`, `dialect`, `mix`, `flychat`,
//!   `router`, …): dependencies point one way, inward to `core`.
//! - Inside each directory, no cycle between its files (or sub-directories). A directory's
//!   `mod.rs` is its front door — it declares, re-exports and routes — so it is left out.
//! - The two dialects never name each other, and the core names no outer layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root, e.g. `["mix", "join"]`.
type ModPath = Vec<String>;

struct Source {
    module: ModPath,
    /// Whether the file is a directory's `mod.rs` (its children are its submodules).
    is_dir_module: bool,
    code: String,
}

fn sources(dir: &Path, module: &ModPath, out: &mut Vec<Source>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            // The benchmark tool is a binary crate of its own.
            if module.is_empty() && name == "bin" {
                continue;
            }
            let mut child = module.clone();
            child.push(name);
            sources(&path, &child, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let (module, is_dir_module) = match name.as_str() {
                "mod" => (module.clone(), true),
                // main.rs is the binary above the library; lib.rs is the root.
                "lib" | "main" if module.is_empty() => continue,
                _ => {
                    let mut m = module.clone();
                    m.push(name);
                    (m, false)
                }
            };
            let text = std::fs::read_to_string(&path).unwrap();
            out.push(Source {
                module,
                is_dir_module,
                code: strip_comments(&text),
            });
        }
    }
}

/// The code without comments and string literals, which may mention paths they do not use.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        // Unit tests may reach anywhere; they are not part of the layering.
        if trimmed.starts_with("#[cfg(test)]") {
            in_test = true;
        }
        if in_test {
            continue;
        }
        let code = match trimmed.find("//") {
            Some(i) => &trimmed[..i],
            None => trimmed,
        };
        let mut in_string = false;
        let mut previous = ' ';
        for c in code.chars() {
            if c == '"' && previous != '\\' {
                in_string = !in_string;
            } else if !in_string {
                out.push(c);
            }
            previous = c;
        }
        out.push('\n');
    }
    out
}

/// Expands the tree of one `use` (without `use` and `;`) into full paths.
fn expand_use(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::").trim();
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_use(&inner[start..], &base, out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap().trim();
        out.push(join(prefix, path));
    }
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}::{path}"),
    }
}

/// Every path the code names: those of its `use` items and those written inline.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        if boundary {
            expand_use(&tail[..end], "", &mut paths);
        }
        rest = &tail[end.min(tail.len())..];
    }
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':') {
            let mut j = i;
            while j < bytes.len() && (is_ident(bytes[j]) || bytes[j..].starts_with(b"::")) {
                j += if bytes[j] == b':' { 2 } else { 1 };
            }
            let path = code[i..j].trim_end_matches("::");
            if path.contains("::") {
                paths.push(path.to_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
}

/// The module a path names from inside `from`, as the longest prefix that is a module.
fn resolve(
    path: &str,
    from: &ModPath,
    from_dir_module: bool,
    children: &BTreeSet<String>,
    modules: &BTreeSet<ModPath>,
) -> Option<ModPath> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: ModPath = match segments[0] {
        "crate" => {
            segments.remove(0);
            Vec::new()
        }
        "super" => {
            // `super` of a directory's mod.rs is the directory's parent.
            let mut base = from.clone();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            base
        }
        "self" => {
            segments.remove(0);
            from.clone()
        }
        first if from_dir_module && children.contains(first) => from.clone(),
        _ => return None,
    };
    let mut found = None;
    for segment in segments {
        base.push(segment.to_owned());
        if modules.contains(&base) {
            found = Some(base.clone());
        } else {
            break;
        }
    }
    found
}

/// Which module each file's code names (besides itself).
fn dependencies() -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &Vec::new(),
        &mut files,
    );
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let children: BTreeSet<String> = modules
            .iter()
            .filter(|m| m.len() == file.module.len() + 1 && m.starts_with(&file.module))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let named: BTreeSet<ModPath> = named_paths(&file.code)
            .iter()
            .filter_map(|p| resolve(p, &file.module, file.is_dir_module, &children, &modules))
            .filter(|m| *m != file.module)
            .collect();
        graph.insert(file.module.clone(), named);
    }
    graph
}

/// A cycle in `edges`, if there is one, as the nodes along it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, edges, &mut state, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}

/// The edges between the parts of directory `dir` (its direct children; `mod.rs` left out).
fn parts_of(
    graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    dir: &ModPath,
) -> BTreeMap<String, BTreeSet<String>> {
    let part = |m: &ModPath| -> Option<String> {
        (m.len() > dir.len() && m.starts_with(dir)).then(|| m[dir.len()].clone())
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, named) in graph {
        let Some(a) = part(from) else { continue };
        let entry = edges.entry(a.clone()).or_default();
        for to in named {
            if let Some(b) = part(to) {
                if b != a {
                    entry.insert(b);
                }
            }
        }
    }
    edges
}

#[test]
fn top_level_modules_form_no_cycle() {
    let edges = parts_of(&dependencies(), &Vec::new());
    assert!(edges.contains_key("core") && edges.contains_key("mix"));
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle between modules: {}", cycle.join(" → "));
    }
}

#[test]
fn files_inside_each_directory_form_no_cycle() {
    let graph = dependencies();
    let dirs: BTreeSet<ModPath> = graph
        .keys()
        .filter(|m| graph.keys().any(|c| c.len() > m.len() && c.starts_with(m)))
        .cloned()
        .collect();
    assert!(dirs.contains(&vec!["mix".to_owned()]));
    for dir in dirs.iter().filter(|d| !d.is_empty()) {
        if let Some(cycle) = find_cycle(&parts_of(&graph, dir)) {
            panic!(
                "import cycle inside src/{}: {}",
                dir.join("/"),
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn the_dialects_never_name_each_other_and_the_core_names_no_outer_layer() {
    let edges = parts_of(&dependencies(), &Vec::new());
    let names = |from: &str, to: &str| edges.get(from).is_some_and(|e| e.contains(to));
    assert!(names("mix", "core"), "the check must see mix use the core");
    assert!(!names("mix", "flychat"), "mix names flychat");
    assert!(!names("flychat", "mix"), "flychat names mix");
    let core = edges.get("core").cloned().unwrap_or_default();
    assert!(core.is_empty(), "the core names {core:?}");
    let store: BTreeSet<String> = edges.get("store").cloned().unwrap_or_default();
    assert!(
        store.iter().all(|m| m == "core"),
        "the store names more than the core: {store:?}"
    );
}

#[test]
fn the_check_sees_a_cycle_and_each_kind_of_path() {
    let paths: BTreeSet<String> = named_paths(
        "use crate::{a::{b, c as d}, e};\nuse super::f::g;\nfn x() { crate::h::i(); j::k(); }\n",
    )
    .into_iter()
    .collect();
    let expected = [
        "crate::a::b",
        "crate::a::c",
        "crate::e",
        "crate::h::i",
        "j::k",
        "super::f::g",
    ];
    assert_eq!(paths, expected.map(String::from).into());
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "a"]);
}
