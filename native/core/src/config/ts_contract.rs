//! The TypeScript side of the JSON contract, generated from the serde types
//! (ts-rs) into `ts/generated/` (committed; `ts/native-types.ts` re-exports
//! it under the names the TS code uses).
//!
//! The test below renders every type the binding exchanges, with all the types
//! they use, and compares the result with `ts/generated/`. When they differ it
//! rewrites the folder and fails, so a stale folder never passes: locally, run
//! the tests again and commit `ts/generated/`; on CI (a fresh clone) the failure
//! means the committed files were not regenerated.
//!
//! JSON numbers are `number` in TS: i64 fields hold counts, sizes and a seed
//! that the TS side keeps within safe integers, and `serde_json` writes them as
//! plain numbers (ts-rs would otherwise declare `bigint`). Imports end in `.js`
//! (NodeNext resolution).

use crate::checkpoint::CheckpointInfo;
use crate::config::{DeviceChoice, EvalConfig, TrainConfig};
use crate::eval::{EvalEvent, EvalReport, EvalRequest};
use crate::events::{EvalResult, Event, TrainSummary};
use crate::models::ModelInfo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use ts_rs::{Config, TypeVisitor, TS};

/// First line of every generated file (in place of ts-rs's own).
const NOTE: &str = "// Generated from the Rust types of native/core by ts-rs (native/core/src/config/ts_contract.rs): change the Rust type and run `cargo test -p st-core`. Do not edit.\n";

/// The names in the model registry, as a TS string union: the type of
/// `model` fields that only ever hold a registered name. The Rust fields are
/// `String` (an unknown name is a config error at run time).
pub(crate) struct ModelName;

fn model_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        crate::models::list_models(2)
            .into_iter()
            .map(|m| m.name)
            .collect()
    })
}

impl TS for ModelName {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn docs() -> Option<String> {
        Some("/**\n * Names registered in native/core `models/registry.rs`.\n */\n".to_owned())
    }
    fn name(_: &Config) -> String {
        "ModelName".to_owned()
    }
    fn inline(_: &Config) -> String {
        let quoted: Vec<String> = model_names()
            .iter()
            .map(|n| serde_json::to_string(n).expect("a string serialises"))
            .collect();
        quoted.join(" | ")
    }
    fn decl(cfg: &Config) -> String {
        format!("type ModelName = {};", Self::inline(cfg))
    }
    fn decl_concrete(cfg: &Config) -> String {
        Self::decl(cfg)
    }
    fn output_path() -> Option<PathBuf> {
        Some(PathBuf::from("ModelName.ts"))
    }
}

/// Renders a type and, recursively, every exportable type it uses: file name
/// (relative to `ts/generated/`) to contents.
struct Render<'a> {
    cfg: &'a Config,
    files: BTreeMap<String, String>,
}

impl TypeVisitor for Render<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        let Some(path) = T::output_path() else {
            return; // a primitive
        };
        let path = path.to_str().expect("UTF-8 path").to_owned();
        let text = T::export_to_string(self.cfg).expect("ts-rs renders the type");
        let (first, body) = text.split_once('\n').expect("ts-rs writes a header line");
        assert!(first.contains("ts-rs"), "unexpected ts-rs header: {first}");
        let text = format!("{NOTE}{}", format_ts(body, 0));
        match self.files.get(&path) {
            Some(seen) => assert_eq!(
                seen, &text,
                "two Rust types export to ts/generated/{path}: rename one with #[ts(rename)]"
            ),
            None => {
                self.files.insert(path, text);
                T::visit_dependencies(self);
            }
        }
    }
}

// ---------------------------------------------------------------- layout
//
// ts-rs writes each type on one line (its formatter pulls in a TypeScript
// parser). Objects with several fields, or with doc comments, are laid out
// one field per line here instead, so a field added in Rust is a one-line
// diff in ts/generated. The output is a pure function of ts-rs's text.

/// Byte length of the string literal or comment starting at `s[0]`, if any.
fn opaque_len(s: &str) -> Option<usize> {
    if s.starts_with('"') {
        let mut escaped = false;
        for (i, c) in s.char_indices().skip(1) {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return Some(i + 1),
                _ => {}
            }
        }
        Some(s.len())
    } else if s.starts_with("/*") {
        Some(s.find("*/").map_or(s.len(), |i| i + 2))
    } else if s.starts_with("//") {
        Some(s.find('\n').unwrap_or(s.len()))
    } else {
        None
    }
}

/// Splits `s` at each `sep` outside brackets, strings and comments.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut depth, mut start, mut i) = (Vec::new(), 0i32, 0, 0);
    while i < s.len() {
        if let Some(n) = opaque_len(&s[i..]) {
            i += n;
            continue;
        }
        let c = s[i..].chars().next().expect("in bounds");
        match c {
            '{' | '[' | '(' | '<' => depth += 1,
            '}' | ']' | ')' | '>' => depth -= 1,
            _ if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    parts.push(&s[start..]);
    parts
}

/// Byte index of the `}` closing the `{` at `s[0]`.
fn closing_brace(s: &str) -> usize {
    let (mut depth, mut i) = (0, 0);
    while i < s.len() {
        if let Some(n) = opaque_len(&s[i..]) {
            i += n;
            continue;
        }
        let c = s[i..].chars().next().expect("in bounds");
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    panic!("unbalanced braces in ts-rs output: {s}")
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

/// Lays out TS text whose lines start at indentation `depth`.
fn format_ts(s: &str, depth: usize) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    let mut i = 0;
    while i < s.len() {
        if let Some(n) = opaque_len(&s[i..]) {
            out.push_str(&s[i..i + n]);
            i += n;
            continue;
        }
        let c = s[i..].chars().next().expect("in bounds");
        if c != '{' {
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let close = i + closing_brace(&s[i..]);
        let fields: Vec<&str> = split_top(&s[i + 1..close], ',')
            .into_iter()
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        if fields.len() < 2 && !s[i..close].contains("/**") {
            out.push_str("{ ");
            out.push_str(&fields.join(", "));
            out.push_str(" }");
        } else {
            out.push_str("{\n");
            for field in fields {
                out.push_str(&format_field(field, depth + 1));
                out.push_str(",\n");
            }
            out.push_str(&indent(depth));
            out.push('}');
        }
        i = close + 1;
    }
    out
}

/// One field of an object on its own line(s), its doc comment above it.
fn format_field(field: &str, depth: usize) -> String {
    let mut out = String::new();
    let mut rest = field;
    if field.starts_with("/**") {
        let end = field.find("*/").expect("closed doc comment") + 2;
        for line in field[..end].lines() {
            let line = line.trim();
            out.push_str(&indent(depth));
            if line.starts_with('*') {
                out.push(' ');
            }
            out.push_str(line);
            out.push('\n');
        }
        rest = field[end..].trim();
    }
    out.push_str(&indent(depth));
    out.push_str(&format_ts(rest, depth));
    out
}

#[test]
fn layout_puts_documented_and_multi_field_objects_one_field_per_line() {
    let raw = "export type A = { \n/**\n * Doc, with { and \"}\n */\nx: number, y: { \"k\": \"a,b\" } & B, } | { \"t\": \"c\", };\n";
    assert_eq!(
        format_ts(raw, 0),
        "export type A = {\n  /**\n   * Doc, with { and \"}\n   */\n  x: number,\n  y: { \"k\": \"a,b\" } & B,\n} | { \"t\": \"c\" };\n"
    );
}

/// Every file of `ts/generated/`, as the Rust types define it today.
fn render(dir: &Path) -> BTreeMap<String, String> {
    let cfg = Config::new()
        .with_large_int("number")
        .with_import_extension(Some("js"))
        .with_out_dir(dir);
    let mut r = Render {
        cfg: &cfg,
        files: BTreeMap::new(),
    };
    // What the binding exchanges; the types these use come along.
    r.visit::<TrainConfig>();
    r.visit::<EvalConfig>();
    r.visit::<DeviceChoice>();
    r.visit::<Event>();
    r.visit::<TrainSummary>();
    r.visit::<EvalResult>();
    r.visit::<ModelInfo>();
    r.visit::<CheckpointInfo>();
    // The attack evaluation (`eval::evaluate_attacks`).
    r.visit::<EvalRequest>();
    r.visit::<EvalEvent>();
    r.visit::<EvalReport>();
    let mut index = format!("{NOTE}\n");
    for path in r.files.keys() {
        let name = path.trim_end_matches(".ts");
        index.push_str(&format!("export type {{ {name} }} from \"./{name}.js\";\n"));
    }
    r.files.insert("index.ts".to_owned(), index);
    r.files
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("readable folder"))
        .map(|e| {
            let name = e.file_name().into_string().expect("UTF-8 file name");
            // A folder or unreadable file reads as empty: it differs, and is reported.
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            (name, text)
        })
        .collect()
}

#[test]
fn ts_generated_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !root.join("ts/native-types.ts").is_file() {
        eprintln!(
            "no ts/ source folder next to native/ (not a source checkout): nothing to compare"
        );
        return;
    }
    let dir = root.join("ts/generated");
    let want = render(&dir);
    let have = read_dir(&dir);
    let mut stale = Vec::new();
    for (name, text) in &want {
        match have.get(name) {
            None => stale.push(format!("  missing: {name}")),
            Some(old) if old != text => stale.push(format!("  changed: {name}")),
            Some(_) => {}
        }
    }
    for name in have.keys().filter(|n| !want.contains_key(*n)) {
        stale.push(format!("  not generated any more: {name}"));
    }
    if stale.is_empty() {
        return;
    }
    // Regenerate, so that the next run passes once the change is reviewed.
    std::fs::create_dir_all(&dir).expect("create ts/generated");
    for name in have.keys().filter(|n| !want.contains_key(*n)) {
        let path = dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.expect("remove a stale file from ts/generated");
    }
    for (name, text) in &want {
        std::fs::write(dir.join(name), text).expect("write ts/generated");
    }
    panic!(
        "ts/generated/ did not match the Rust types it is generated from:\n{}\n\
         It has been regenerated now: review and commit ts/generated/ (a clone with \
         stale generated files fails this test, as CI does), then run the tests again.",
        stale.join("\n")
    );
}
