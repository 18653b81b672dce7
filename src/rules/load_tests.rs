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

/// A one-rule file whose condition is `c`, with a list mixing types.
fn with_condition(c: &str) -> String {
    format!("lists:\n  mixed: [a, 1]\nrules:\n  - name: r\n    severity: high\n    description: d\n    condition: '{c}'\n")
}

#[test]
fn each_condition_error_says_where_and_why() {
    // The condition starts at line 7, column 17.
    for (c, want) in [
        ("", "7:17: syntax error: expected a condition"),
        ("has(file) and", "7:30: syntax error: expected a condition"),
        ("has(file) then", "7:31: syntax error: expected a condition"),
        (
            "has(file) then has(network) within 5x",
            "7:52: syntax error: expected a duration such as 30s or 5m",
        ),
        ("count(file) > x", "7:31: syntax error: expected a number"),
        ("count(file) == 99999999999999999999", "7:32: number out of range"),
        (
            "has()",
            "7:21: syntax error: expected process, file, network or memory",
        ),
        (
            "has(file).where(path in [\"a\"",
            "7:45: syntax error: expected `]`",
        ),
        (
            "(has(file)",
            "7:27: syntax error: expected `)`, `.where(...)`, `and`, `or`, `then`",
        ),
        (
            "has(file) has(network)",
            "7:27: syntax error: expected `.where(...)`, `and`, `or`, `then`, the end of the condition",
        ),
        ("has(file).where(path)", "7:33: unknown macro `path`"),
        (
            "has(file).wher(path == \"x\")",
            "7:27: syntax error: expected `where`",
        ),
        (
            "has(file).where(path ! in [\"a\"])",
            "7:38: syntax error: expected ==, !=, <, >, <=, >=, `)`, `and`, `in`, `not`, `or`, `then`, matches, startswith, endswith, contains",
        ),
        (
            "has(network).where(dport in [1, \"a\"])",
            "7:17: a list mixes strings and numbers",
        ),
        (
            "has(network).where(dport in mixed)",
            "7:45: list `mixed` mixes strings and numbers",
        ),
        (
            "has(network).where(dport in [daddr])",
            "7:17: a list holds strings or numbers",
        ),
        (
            "has(network).where(dport in [\"22\"])",
            "7:36: `dport` (Int) `in` needs a list of the field's type",
        ),
        (
            "has(network).where(dport contains \"1\")",
            "7:36: `dport` (Int) needs a string field and a \"string\"",
        ),
        (
            "has(file).where(path matches \"[\")",
            "7:33: bad glob \"[\": error parsing glob '[': unclosed character class; missing ']'",
        ),
        (
            "has(process).where(argv_truncated == 1)",
            "7:36: `argv_truncated` (Bool) compared with a value of another type",
        ),
        (
            "has(process).where(argv_truncated == maybe)",
            "7:54: `maybe` is neither a list nor a field of process events",
        ),
        (
            "has(file) then never(network)",
            "7:17: each step of `then` must be has(kind) or has(kind).where(...)",
        ),
        (
            "has(file) then (has(network) or has(process))",
            "7:17: each step of `then` must be has(kind) or has(kind).where(...)",
        ),
        (
            "has(file).where(has(network))",
            "7:17: has/never/count/then are about a trace; inside .where(...) only field comparisons",
        ),
        (
            "has(file) or never(network)",
            "7:17: a rule needs something to happen: has(...), count(...) or a `then` sequence",
        ),
        (
            "not has(file)",
            "7:17: a rule needs something to happen: has(...), count(...) or a `then` sequence",
        ),
    ] {
        let e = one(&with_condition(c)).unwrap_err();
        assert_eq!(e.to_string(), format!("t.yml:{want}"), "{c}");
    }
}

#[test]
fn what_a_condition_may_say() {
    for c in [
        "has(file) or has(network)",
        "has(file) and never(network)",
        "has(file) then has(network) then has(process) within 1m",
        "count(network).where(dport in [22, 2222]) >= 3",
        "has(file).where(path == \"a\\\"b\")",
        "has(network).where(dport <= ppid and daddr != dns_name)",
    ] {
        one(&with_condition(c)).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
}

#[test]
fn each_rule_entry_error_says_where_and_why() {
    let rule = |name: &str, extra: &str| {
        format!("rules:\n  - name: {name}\n    severity: high\n    description: d\n    condition: has(file)\n{extra}")
    };
    for (yaml, want) in [
        (
            rule("r", "    window: 0s\n"),
            "t.yml:6:13: expected a duration such as 30s, 5m or 1h",
        ),
        (
            rule("r", "    window: soon\n"),
            "t.yml:6:13: expected a duration such as 30s, 5m or 1h",
        ),
        (
            rule("'a b'", ""),
            "t.yml:2:12: a rule name uses letters, digits, `-` and `_`",
        ),
        (
            rule("''", ""),
            "t.yml:2:12: a rule name uses letters, digits, `-` and `_`",
        ),
        (
            rule(
                "r",
                "  - name: r\n    severity: high\n    description: d\n    condition: has(file)\n",
            ),
            "t.yml:6:11: rule `r` is defined twice",
        ),
        (
            "rules: [\n".into(),
            "t.yml:1:8: unclosed bracket '[' at line 1, column 8",
        ),
    ] {
        assert_eq!(one(&yaml).unwrap_err().to_string(), want, "{yaml}");
    }
    // An empty file is no rules, not an error.
    assert!(one("  \n").unwrap().rules.is_empty());
}

#[test]
fn a_name_defined_in_two_files_is_refused_in_the_second() {
    let rule =
        "rules:\n  - name: r\n    severity: high\n    description: d\n    condition: has(file)\n";
    for (text, want) in [
        (
            "macros:\n  m: has(file)\n",
            "b.yml:2:6: macro `m` is defined twice",
        ),
        (rule, "b.yml:2:11: rule `r` is defined twice"),
        // A list's position is not kept by the YAML reader: the file is
        // named, with no made-up position, and so is the first definition.
        (
            "lists:\n  k: [a]\n",
            "b.yml: list `k` is defined twice (first in a.yml)",
        ),
    ] {
        let e = compile(&[
            Source {
                name: "a.yml".into(),
                text: text.into(),
            },
            Source {
                name: "b.yml".into(),
                text: text.into(),
            },
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn a_condition_in_a_block_scalar_is_located_on_its_own_line() {
    let e = one("rules:\n  - name: r\n    severity: high\n    description: d\n    condition: |\n      has(file) and\n      has(filez)\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.yml:7:11: syntax error: expected process, file, network or memory"
    );
    // A line indented deeper than the block keeps its extra indentation.
    let e = one("rules:\n  - name: r\n    severity: high\n    description: d\n    condition: |\n      has(file) and\n        has(filez)\n").unwrap_err();
    assert_eq!((e.line, e.col), (7, 13), "{e}");
}
