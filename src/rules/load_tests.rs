//! Loading and compiling rule files: what is accepted, and where and why
//! what is not is refused.

use super::super::set::TracePred;
use super::*;

#[test]
fn a_missing_rules_directory_is_named_and_said_not_to_exist() {
    // It was `norules:0:0: cannot open ...`, a position in no file.
    for dir in ["norules-bee-trace-test", "/nonexistent/bee-trace-rules"] {
        let e = load(Some(Path::new(dir))).unwrap_err();
        assert!(matches!(&e, LoadError::NoDir { path } if path == Path::new(dir)));
        let text = e.to_string();
        assert_eq!(
            text,
            format!("the rules directory {dir} does not exist; name a directory of *.yml rule files (--rules DIR)")
        );
    }
}

fn one(yaml: &str) -> Result<RuleSet, RuleError> {
    compile(&[Source {
        name: "t.yml".into(),
        text: yaml.into(),
    }])
}

fn rule_with(condition: &str, macros: &str) -> String {
    format!("macros:\n{macros}rules:\n  - name: r\n    severity: high\n    description: d\n    condition: \"{condition}\"\n")
}

#[test]
fn nesting_is_bounded_before_the_parser_recurses() {
    // 31 brackets and has( are 32 levels: accepted; one more is not.
    let ok = format!("{}has(file){}", "(".repeat(31), ")".repeat(31));
    one(&rule_with(&ok, "  {}\n")).unwrap();
    let deep = format!("{}has(file){}", "(".repeat(32), ")".repeat(32));
    let e = one(&rule_with(&deep, "  {}\n")).unwrap_err();
    assert!(e.message.contains("nests deeper than 32"), "{e}");
    assert_eq!((e.line, e.col), (7, 52), "{e}");
    // `not` counts, with brackets or without; strings and comments not.
    for deep in [
        format!("{}has(file){}", "not(".repeat(5000), ")".repeat(5000)),
        format!("{}has(file)", "not ".repeat(5000)),
        format!(
            "has(file).where(path in {}1{})",
            "[".repeat(100),
            "]".repeat(100)
        ),
    ] {
        let e = one(&rule_with(&deep, "  {}\n")).unwrap_err();
        assert!(e.message.contains("nests deeper than 32"), "{e}");
    }
    let quoted = format!("has(file).where(path == \\\"{}\\\")", "(".repeat(100));
    one(&rule_with(&quoted, "  {}\n")).unwrap();
}

#[test]
fn macros_within_macros_are_bounded_and_cycles_through_then_refused() {
    let mut macros = String::from("  m0: has(file)\n");
    for i in 1..100 {
        let body = format!("{}m{}{}", "not(".repeat(15), i - 1, ")".repeat(15));
        macros.push_str(&format!("  m{i}: \"{body}\"\n"));
    }
    let e = one(&rule_with("has(process) and m99", &macros)).unwrap_err();
    assert!(e.message.contains("with its macros expanded"), "{e}");
    let e = one(&rule_with("has(file) then a", "  a: b\n  b: a\n")).unwrap_err();
    assert!(e.message.contains("refers to itself"), "{e}");
}

#[test]
fn the_builtin_pack_compiles() {
    let set = load(None).unwrap();
    assert!(set.rules.len() >= 6, "{}", set.rules.len());
}

#[test]
fn syntax_errors_name_file_line_column_and_what_was_expected() {
    let e = one("rules:\n  - name: r\n    severity: high\n    description: d\n    condition: |\n      has(file).where(path ==)\n").unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.col), ("t.yml", 6, 30), "{e}");
    assert!(
        e.message.contains("expected") && e.message.contains("value"),
        "{e}"
    );
    let e = one("rules:\n  - name: r\n    severity: high\n    description: d\n    condition: \"has(filez)\"\n").unwrap_err();
    assert_eq!((e.line, e.col), (5, 21), "{e}");
    assert!(
        e.message.contains("process, file, network or memory"),
        "{e}"
    );
}

#[test]
fn unknown_fields_and_type_errors_fail_at_load() {
    let base = |c: &str| {
        format!(
            "rules:\n  - name: r\n    severity: high\n    description: d\n    condition: '{c}'\n"
        )
    };
    let e = one(&base("has(file).where(daddr == \"x\")")).unwrap_err();
    assert!(
        e.message.contains("`daddr` is not a field of file events"),
        "{e}"
    );
    assert_eq!((e.line, e.col), (5, 33));
    let e = one(&base("has(network).where(dport == \"443\")")).unwrap_err();
    assert!(e.message.contains("another type"), "{e}");
    let e = one(&base("has(file).where(path > 3)")).unwrap_err();
    assert!(e.message.contains("ordered"), "{e}");
    let e = one(&base("path == \"x\"")).unwrap_err();
    assert!(e.message.contains("inside has(kind)"), "{e}");
    let e = one(&base("never(file)")).unwrap_err();
    assert!(e.message.contains("needs something to happen"), "{e}");
    let e = one(&base("has(file).where(category in nolist)")).unwrap_err();
    assert!(e.message.contains("neither a list nor a field"), "{e}");
    let e = one(
        "rules:\n  - name: r\n    severity: urgent\n    description: d\n    condition: has(file)\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    let e = one("rules:\n  - name: r\n    severity: high\n    description: d\n    condition: has(file)\n    bogus: 1\n").unwrap_err();
    assert!(e.message.contains("bogus"), "{e}");
    let e = one("macros:\n  a: b\n  b: a\nrules:\n  - name: r\n    severity: high\n    description: d\n    condition: a\n").unwrap_err();
    assert!(e.message.contains("refers to itself"), "{e}");
}

#[test]
fn lists_and_macros_are_shared_across_files() {
    let set = compile(&[
        Source {
            name: "a.yml".into(),
            text: "lists:\n  keys: [ssh_key, token]\nmacros:\n  key_read: category in keys and access == \"read\"\n".into(),
        },
        Source {
            name: "b.yml".into(),
            text: "rules:\n  - name: r\n    severity: high\n    description: d\n    window: 30s\n    condition: has(file).where(key_read) then has(network).where(not daddr startswith \"127.\") within 10s\n".into(),
        },
    ])
    .unwrap();
    let r = &set.rules[0];
    assert_eq!(r.window_ns, 30_000_000_000);
    assert!(matches!(&r.cond, TracePred::Seq(s) if s.len() == 2 && s[1].1 == Some(10_000_000_000)));
}
