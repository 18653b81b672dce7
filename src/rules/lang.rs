//! Rule files: parsing (pest), name resolution (lists, macros, fields) and
//! type checking, all at load time. Every error names the file, line and
//! column and what was expected.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};
use pest::iterators::Pair;
use pest::Parser;
use serde::Deserialize;

use super::depth::{too_deep, MAX_NESTING, MAX_TREE_DEPTH};
use crate::event::Kind;
use crate::policy::Severity;

mod parser {
    #[derive(pest_derive::Parser)]
    #[grammar = "rules/grammar.pest"]
    pub struct CondParser;
}
use parser::CondParser;
// pest names its generated enum `Rule`; ours is taken.
use parser::Rule as Rule_;

/// A load-time error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: String,
    pub line: u64,
    pub col: u64,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for RuleError {}

// ---------------------------------------------------------------------------
// The files.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    lists: BTreeMap<String, Vec<ListItem>>,
    #[serde(default)]
    macros: BTreeMap<String, serde_saphyr::Spanned<String>>,
    #[serde(default)]
    rules: Vec<RuleEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ListItem {
    Int(i64),
    Str(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    name: serde_saphyr::Spanned<String>,
    severity: Severity,
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    condition: serde_saphyr::Spanned<String>,
    /// How long a trace's events count, e.g. `5m` (default), `30s`, `1h`.
    window: Option<serde_saphyr::Spanned<String>>,
}

// ---------------------------------------------------------------------------
// What the engine runs.

/// How a rule sees a field (the event module's one field table).
pub use crate::event::FieldType as Ty;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    NotIn,
    Matches,
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone)]
pub enum Rhs {
    Str(String),
    Int(i64),
    Strs(Vec<String>),
    Ints(Vec<i64>),
    Field(String, Ty),
    Glob(Box<GlobMatcher>),
}

/// A condition on one event.
#[derive(Debug, Clone)]
pub enum EvPred {
    And(Vec<EvPred>),
    Or(Vec<EvPred>),
    Not(Box<EvPred>),
    Cmp {
        field: String,
        ty: Ty,
        op: Op,
        rhs: Rhs,
    },
}

/// One `has(kind).where(...)`: which events a trace keeps for a rule.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub kind: &'static str,
    pub pred: Option<EvPred>,
}

/// A condition on a trace; atoms refer to patterns by index.
#[derive(Debug, Clone)]
pub enum TracePred {
    And(Vec<TracePred>),
    Or(Vec<TracePred>),
    Not(Box<TracePred>),
    Has(usize),
    Never(usize),
    Count(usize, Op, i64),
    /// Patterns in order; each step after the first may bound its distance
    /// from the previous one (ns).
    Seq(Vec<(usize, Option<u64>)>),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    pub description: String,
    pub tags: Vec<String>,
    pub window_ns: u64,
    pub patterns: Vec<Pattern>,
    pub cond: TracePred,
    /// Which file it came from (for `rules --list`).
    pub source: String,
}

#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

const DEFAULT_WINDOW_NS: u64 = 300_000_000_000;

// ---------------------------------------------------------------------------
// The event schema: the fields rules may compare, from the one field table.

fn field_ty(kind: &str, name: &str) -> Option<Ty> {
    crate::event::field(Kind::from_name(kind)?, name)?.ty
}

/// The names a condition on `kind` events may use, sorted.
fn known_fields(kind: &str) -> Vec<&'static str> {
    let mut known: Vec<&str> = Kind::from_name(kind)
        .into_iter()
        .flat_map(crate::event::fields_of)
        .filter(|f| f.ty.is_some())
        .map(|f| f.name)
        .collect();
    known.sort();
    known
}

// ---------------------------------------------------------------------------
// Parsing into a syntax tree.

#[derive(Debug, Clone)]
enum Ast {
    Or(Vec<Ast>),
    And(Vec<Ast>),
    Not(Box<Ast>),
    Seq(Vec<(Ast, Option<u64>)>),
    Has(&'static str, Option<Box<Ast>>),
    Never(&'static str, Option<Box<Ast>>),
    Count(&'static str, Option<Box<Ast>>, Op, i64),
    Cmp(String, Op, Val, Pos),
    Name(String, Pos),
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Int(i64),
    List(Vec<Val>),
    Name(String, Pos),
}

/// (line, column) inside the condition text, from 1.
pub(super) type Pos = (usize, usize);

fn pos(p: &Pair<Rule_>) -> Pos {
    p.as_span().start_pos().line_col()
}

fn parse_cond(text: &str) -> Result<Ast, (Pos, String)> {
    if let Some(p) = too_deep(text) {
        return Err((
            p,
            format!("the condition nests deeper than {MAX_NESTING} levels of brackets and `not`; write it flatter (a macro, or `and`/`or` of simpler parts)"),
        ));
    }
    let mut pairs = CondParser::parse(Rule_::condition, text).map_err(|e| {
        let p = match e.line_col {
            pest::error::LineColLocation::Pos(p) | pest::error::LineColLocation::Span(p, _) => p,
        };
        let expected = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => {
                let mut names: Vec<String> = positives.iter().map(describe_rule).collect();
                names.sort();
                names.dedup();
                if names.is_empty() {
                    "a valid condition".to_string()
                } else {
                    names.join(", ")
                }
            }
            pest::error::ErrorVariant::CustomError { message } => message.clone(),
        };
        (p, format!("syntax error: expected {expected}"))
    })?;
    let cond = pairs.next().expect("condition");
    let expr = cond.into_inner().next().expect("expr");
    build_expr(expr)
}

fn describe_rule(r: &Rule_) -> String {
    match r {
        Rule_::expr | Rule_::term | Rule_::factor | Rule_::seq | Rule_::atom => {
            "a condition".into()
        }
        Rule_::has => "has(kind)".into(),
        Rule_::never => "never(kind)".into(),
        Rule_::count => "count(kind) OP N".into(),
        Rule_::comparison => "a comparison".into(),
        Rule_::cmp_op => "==, !=, <, >, <=, >=".into(),
        Rule_::str_op => "matches, startswith, endswith, contains".into(),
        Rule_::in_kw => "`in`".into(),
        Rule_::value => "a value (\"string\", number, [list] or a name)".into(),
        Rule_::kind => "process, file, network or memory".into(),
        Rule_::duration => "a duration such as 30s or 5m".into(),
        Rule_::name => "a name".into(),
        Rule_::number => "a number".into(),
        Rule_::string => "a \"string\"".into(),
        Rule_::and_kw => "`and`".into(),
        Rule_::or_kw => "`or`".into(),
        Rule_::then_kw => "`then`".into(),
        Rule_::within_kw => "`within`".into(),
        Rule_::where_clause => "`.where(...)`".into(),
        Rule_::EOI => "the end of the condition".into(),
        Rule_::lparen => "`(`".into(),
        Rule_::rparen => "`)`".into(),
        Rule_::rbracket => "`]`".into(),
        other => format!("{other:?}"),
    }
}

fn build_expr(p: Pair<Rule_>) -> Result<Ast, (Pos, String)> {
    match p.as_rule() {
        Rule_::expr => {
            let parts: Vec<Ast> = p
                .into_inner()
                .filter(|x| x.as_rule() == Rule_::term)
                .map(build_expr)
                .collect::<Result<_, _>>()?;
            Ok(if parts.len() == 1 {
                parts.into_iter().next().expect("one")
            } else {
                Ast::Or(parts)
            })
        }
        Rule_::term => {
            let parts: Vec<Ast> = p
                .into_inner()
                .filter(|x| x.as_rule() == Rule_::factor)
                .map(build_expr)
                .collect::<Result<_, _>>()?;
            Ok(if parts.len() == 1 {
                parts.into_iter().next().expect("one")
            } else {
                Ast::And(parts)
            })
        }
        Rule_::factor => {
            let mut inner = p.into_inner();
            let first = inner.next().expect("factor part");
            if first.as_rule() == Rule_::not_kw {
                Ok(Ast::Not(Box::new(build_expr(
                    inner.next().expect("operand"),
                )?)))
            } else {
                build_expr(first)
            }
        }
        Rule_::seq => {
            let mut steps: Vec<(Ast, Option<u64>)> = Vec::new();
            let mut pending: Option<Ast> = None;
            for x in p.into_inner() {
                match x.as_rule() {
                    Rule_::atom => {
                        if let Some(a) = pending.take() {
                            steps.push((a, None));
                        }
                        pending = Some(build_expr(x)?);
                    }
                    Rule_::duration => {
                        let a = pending.take().expect("a step before within");
                        steps.push((a, Some(parse_duration(x.as_str()).expect("grammar"))));
                    }
                    _ => {}
                }
            }
            if let Some(a) = pending {
                steps.push((a, None));
            }
            Ok(if steps.len() == 1 {
                steps.into_iter().next().expect("one").0
            } else {
                Ast::Seq(steps)
            })
        }
        Rule_::atom => build_expr(
            p.into_inner()
                .find(|x| !matches!(x.as_rule(), Rule_::lparen | Rule_::rparen))
                .expect("atom part"),
        ),
        Rule_::has | Rule_::never | Rule_::count => {
            let rule = p.as_rule();
            let mut kind = "";
            let mut wh = None;
            let mut op = Op::Eq;
            let mut n = 0;
            for x in p.into_inner() {
                match x.as_rule() {
                    Rule_::kind => kind = static_kind(x.as_str()),
                    Rule_::where_clause => {
                        let e = x
                            .into_inner()
                            .find(|y| y.as_rule() == Rule_::expr)
                            .expect("where expr");
                        wh = Some(Box::new(build_expr(e)?));
                    }
                    Rule_::cmp_op => op = cmp_op(x.as_str()),
                    Rule_::number => {
                        let at = pos(&x);
                        n = x
                            .as_str()
                            .parse()
                            .map_err(|_| (at, "number out of range".to_string()))?
                    }
                    _ => {}
                }
            }
            Ok(match rule {
                Rule_::has => Ast::Has(kind, wh),
                Rule_::never => Ast::Never(kind, wh),
                _ => Ast::Count(kind, wh, op, n),
            })
        }
        Rule_::comparison => {
            let at = pos(&p);
            let mut field = String::new();
            let mut op = Op::Eq;
            let mut negated = false;
            let mut val = Val::Int(0);
            for x in p.into_inner() {
                match x.as_rule() {
                    Rule_::name => field = x.as_str().to_string(),
                    Rule_::not_kw => negated = true,
                    Rule_::in_kw => op = if negated { Op::NotIn } else { Op::In },
                    Rule_::cmp_op => op = cmp_op(x.as_str()),
                    Rule_::str_op => {
                        op = match x.as_str() {
                            "matches" => Op::Matches,
                            "startswith" => Op::StartsWith,
                            "endswith" => Op::EndsWith,
                            _ => Op::Contains,
                        }
                    }
                    Rule_::value => val = build_val(x)?,
                    _ => {}
                }
            }
            Ok(Ast::Cmp(field, op, val, at))
        }
        Rule_::name => Ok(Ast::Name(p.as_str().to_string(), pos(&p))),
        other => Err((pos(&p), format!("unexpected {other:?}"))),
    }
}

fn build_val(p: Pair<Rule_>) -> Result<Val, (Pos, String)> {
    let x = p.into_inner().next().expect("value part");
    let at = pos(&x);
    Ok(match x.as_rule() {
        Rule_::string => Val::Str(unescape(
            x.into_inner().next().map(|i| i.as_str()).unwrap_or(""),
        )),
        Rule_::number => Val::Int(
            x.as_str()
                .parse()
                .map_err(|_| (at, "number out of range".to_string()))?,
        ),
        Rule_::list => Val::List(
            x.into_inner()
                .filter(|y| y.as_rule() == Rule_::value)
                .map(build_val)
                .collect::<Result<_, _>>()?,
        ),
        _ => Val::Name(x.as_str().to_string(), at),
    })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn static_kind(s: &str) -> &'static str {
    match s {
        "process" => "process",
        "file" => "file",
        "network" => "network",
        _ => "memory",
    }
}

fn cmp_op(s: &str) -> Op {
    match s {
        "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        ">" => Op::Gt,
        "<=" => Op::Le,
        _ => Op::Ge,
    }
}

/// `30s`, `5m`, `1h`, `250ms` in ns.
pub fn parse_duration(s: &str) -> Option<u64> {
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000u64)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000_000_000)
    } else {
        return None;
    };
    num.parse::<u64>().ok()?.checked_mul(unit)
}

// ---------------------------------------------------------------------------
// Resolution and type checking.

struct Ctx<'a> {
    lists: &'a BTreeMap<String, Vec<ListItem>>,
    macros: &'a BTreeMap<String, Ast>,
    patterns: Vec<Pattern>,
    /// Macros being expanded (cycle check).
    stack: Vec<String>,
    /// How deep the tree being built is, macros expanded (MAX_TREE_DEPTH).
    depth: usize,
}

/// Runs `f` one level deeper, refusing a tree deeper than MAX_TREE_DEPTH.
fn deeper<T>(
    ast: &Ast,
    cx: &mut Ctx,
    f: impl FnOnce(&mut Ctx) -> Result<T, CErr>,
) -> Result<T, CErr> {
    if cx.depth >= MAX_TREE_DEPTH {
        return Err((
            first_pos(ast),
            format!("with its macros expanded, the condition nests deeper than {MAX_TREE_DEPTH} levels; use fewer macros within macros"),
        ));
    }
    cx.depth += 1;
    let r = f(cx);
    cx.depth -= 1;
    r
}

type CErr = (Pos, String);

fn trace_level(ast: &Ast, cx: &mut Ctx) -> Result<TracePred, CErr> {
    deeper(ast, cx, |cx| trace_node(ast, cx))
}

fn trace_node(ast: &Ast, cx: &mut Ctx) -> Result<TracePred, CErr> {
    Ok(match ast {
        Ast::Or(v) => TracePred::Or(
            v.iter()
                .map(|a| trace_level(a, cx))
                .collect::<Result<_, _>>()?,
        ),
        Ast::And(v) => TracePred::And(
            v.iter()
                .map(|a| trace_level(a, cx))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Not(a) => TracePred::Not(Box::new(trace_level(a, cx)?)),
        Ast::Has(k, w) => TracePred::Has(pattern(k, w.as_deref(), cx)?),
        Ast::Never(k, w) => TracePred::Never(pattern(k, w.as_deref(), cx)?),
        Ast::Count(k, w, op, n) => TracePred::Count(pattern(k, w.as_deref(), cx)?, *op, *n),
        Ast::Seq(steps) => {
            let mut out = Vec::new();
            for (a, within) in steps {
                let a = expand(a, cx)?;
                match a {
                    Ast::Has(k, w) => out.push((pattern(k, w.as_deref(), cx)?, *within)),
                    other => {
                        return Err((
                            first_pos(&other),
                            "each step of `then` must be has(kind) or has(kind).where(...)".into(),
                        ))
                    }
                }
            }
            TracePred::Seq(out)
        }
        Ast::Cmp(f, _, _, at) => {
            return Err((
                *at,
                format!("`{f}` compares one event's field: put it inside has(kind).where(...)"),
            ))
        }
        Ast::Name(n, at) => {
            let body = macro_body(n, *at, cx)?;
            cx.stack.push(n.clone());
            let r = trace_level(&body, cx);
            cx.stack.pop();
            r?
        }
    })
}

fn first_pos(a: &Ast) -> Pos {
    match a {
        Ast::Cmp(_, _, _, p) | Ast::Name(_, p) => *p,
        _ => (1, 1),
    }
}

/// A macro used as a step of `then` becomes its body (a macro that names
/// itself, however indirectly, is refused as everywhere else).
fn expand(a: &Ast, cx: &mut Ctx) -> Result<Ast, CErr> {
    match a {
        Ast::Name(n, at) => {
            let body = macro_body(n, *at, cx)?;
            cx.stack.push(n.clone());
            let r = deeper(a, cx, |cx| expand(&body, cx));
            cx.stack.pop();
            r
        }
        other => Ok(other.clone()),
    }
}

fn macro_body(n: &str, at: Pos, cx: &Ctx) -> Result<Ast, CErr> {
    if cx.stack.iter().any(|s| s == n) {
        return Err((at, format!("macro `{n}` refers to itself")));
    }
    cx.macros
        .get(n)
        .cloned()
        .ok_or_else(|| (at, format!("unknown macro `{n}`")))
}

fn pattern(kind: &'static str, wh: Option<&Ast>, cx: &mut Ctx) -> Result<usize, CErr> {
    let pred = match wh {
        Some(w) => Some(event_level(w, kind, cx)?),
        None => None,
    };
    cx.patterns.push(Pattern { kind, pred });
    Ok(cx.patterns.len() - 1)
}

fn event_level(ast: &Ast, kind: &str, cx: &mut Ctx) -> Result<EvPred, CErr> {
    deeper(ast, cx, |cx| event_node(ast, kind, cx))
}

fn event_node(ast: &Ast, kind: &str, cx: &mut Ctx) -> Result<EvPred, CErr> {
    Ok(match ast {
        Ast::Or(v) => EvPred::Or(
            v.iter()
                .map(|a| event_level(a, kind, cx))
                .collect::<Result<_, _>>()?,
        ),
        Ast::And(v) => EvPred::And(
            v.iter()
                .map(|a| event_level(a, kind, cx))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Not(a) => EvPred::Not(Box::new(event_level(a, kind, cx)?)),
        Ast::Cmp(f, op, v, at) => compare(f, *op, v, *at, kind, cx)?,
        Ast::Name(n, at) => {
            let body = macro_body(n, *at, cx)?;
            cx.stack.push(n.clone());
            let r = event_level(&body, kind, cx);
            cx.stack.pop();
            r?
        }
        Ast::Has(..) | Ast::Never(..) | Ast::Count(..) | Ast::Seq(..) => {
            return Err((
                (1, 1),
                "has/never/count/then are about a trace; inside .where(...) only field comparisons"
                    .into(),
            ))
        }
    })
}

fn compare(f: &str, op: Op, v: &Val, at: Pos, kind: &str, cx: &Ctx) -> Result<EvPred, CErr> {
    let ty = field_ty(kind, f).ok_or_else(|| {
        (
            at,
            format!(
                "`{f}` is not a field of {kind} events (fields: {})",
                known_fields(kind).join(", ")
            ),
        )
    })?;
    let rhs = resolve_val(v, kind, cx)?;
    let bad = |what: &str| -> CErr { (at, format!("`{f}` ({ty:?}) {what}")) };
    let rhs = match (op, ty, rhs) {
        (Op::In | Op::NotIn, Ty::Str | Ty::Bool, Rhs::Strs(l)) => Rhs::Strs(l),
        (Op::In | Op::NotIn, Ty::Int, Rhs::Ints(l)) => Rhs::Ints(l),
        (Op::In | Op::NotIn, _, _) => return Err(bad("`in` needs a list of the field's type")),
        (
            Op::Lt | Op::Gt | Op::Le | Op::Ge,
            Ty::Int,
            r @ (Rhs::Int(_) | Rhs::Field(_, Ty::Int)),
        ) => r,
        (Op::Lt | Op::Gt | Op::Le | Op::Ge, _, _) => {
            return Err(bad("can only be ordered against a number"))
        }
        (Op::Matches, Ty::Str | Ty::List, Rhs::Str(g)) => Rhs::Glob(Box::new(
            GlobBuilder::new(&g)
                .literal_separator(false)
                .build()
                .map_err(|e| (at, format!("bad glob \"{g}\": {e}")))?
                .compile_matcher(),
        )),
        (Op::StartsWith | Op::EndsWith | Op::Contains, Ty::Str | Ty::List, r @ Rhs::Str(_)) => r,
        (Op::Matches | Op::StartsWith | Op::EndsWith | Op::Contains, _, _) => {
            return Err(bad("needs a string field and a \"string\""))
        }
        (Op::Eq | Op::Ne, Ty::Str, r @ (Rhs::Str(_) | Rhs::Field(_, Ty::Str))) => r,
        (Op::Eq | Op::Ne, Ty::Int, r @ (Rhs::Int(_) | Rhs::Field(_, Ty::Int))) => r,
        (Op::Eq | Op::Ne, Ty::Bool, Rhs::Field(n, _)) if n == "true" || n == "false" => Rhs::Str(n),
        (Op::Eq | Op::Ne, _, _) => return Err(bad("compared with a value of another type")),
    };
    Ok(EvPred::Cmp {
        field: f.to_string(),
        ty,
        op,
        rhs,
    })
}

fn resolve_val(v: &Val, kind: &str, cx: &Ctx) -> Result<Rhs, CErr> {
    Ok(match v {
        Val::Str(s) => Rhs::Str(s.clone()),
        Val::Int(i) => Rhs::Int(*i),
        Val::List(items) => {
            let mut strs = Vec::new();
            let mut ints = Vec::new();
            for it in items {
                match resolve_val(it, kind, cx)? {
                    Rhs::Str(s) => strs.push(s),
                    Rhs::Int(i) => ints.push(i),
                    Rhs::Strs(l) => strs.extend(l),
                    Rhs::Ints(l) => ints.extend(l),
                    _ => return Err(((1, 1), "a list holds strings or numbers".into())),
                }
            }
            if !strs.is_empty() && !ints.is_empty() {
                return Err(((1, 1), "a list mixes strings and numbers".into()));
            }
            if ints.is_empty() {
                Rhs::Strs(strs)
            } else {
                Rhs::Ints(ints)
            }
        }
        Val::Name(n, at) => {
            if let Some(items) = cx.lists.get(n) {
                let strs: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        ListItem::Str(s) => Some(s.clone()),
                        ListItem::Int(_) => None,
                    })
                    .collect();
                let ints: Vec<i64> = items
                    .iter()
                    .filter_map(|i| match i {
                        ListItem::Int(n) => Some(*n),
                        ListItem::Str(_) => None,
                    })
                    .collect();
                if ints.is_empty() {
                    Rhs::Strs(strs)
                } else if strs.is_empty() {
                    Rhs::Ints(ints)
                } else {
                    return Err((*at, format!("list `{n}` mixes strings and numbers")));
                }
            } else if let Some(t) = field_ty(kind, n) {
                Rhs::Field(n.clone(), t)
            } else if n == "true" || n == "false" {
                Rhs::Field(n.clone(), Ty::Bool)
            } else {
                return Err((
                    *at,
                    format!("`{n}` is neither a list nor a field of {kind} events"),
                ));
            }
        }
    })
}

fn has_positive(t: &TracePred) -> bool {
    match t {
        TracePred::Has(_) | TracePred::Count(..) | TracePred::Seq(_) => true,
        TracePred::Never(_) => false,
        TracePred::And(v) => v.iter().any(has_positive),
        TracePred::Or(v) => v.iter().all(has_positive),
        TracePred::Not(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Loading.

/// One source: a name for errors and its text.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// The built-in pack, then every `*.yml`/`*.yaml` file of `dir` in name
/// order. Names of rules, lists and macros are global; a duplicate is an
/// error. The directory and its files must be ones only root can change
/// (see `input`); each file is opened through the directory's fd.
pub fn load(dir: Option<&Path>) -> Result<RuleSet, RuleError> {
    let mut sources = vec![Source {
        name: "built-in rules".into(),
        text: super::BUILTIN.to_string(),
    }];
    if let Some(d) = dir {
        sources.extend(read_dir_sources(d)?);
    }
    compile(&sources)
}

fn read_dir_sources(d: &Path) -> Result<Vec<Source>, RuleError> {
    use crate::input::{open_dir, open_in, read_bounded, Trust, RULES_MAX};
    let err = |file: &Path, m: String| RuleError {
        file: file.display().to_string(),
        line: 0,
        col: 0,
        message: m,
    };
    let dir = open_dir(d, "rules directory").map_err(|e| err(d, e.to_string()))?;
    // Listed through the checked fd, not by name again.
    let listing = format!(
        "/proc/self/fd/{}",
        std::os::unix::io::AsRawFd::as_raw_fd(&dir)
    );
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(listing)
        .map_err(|e| err(d, format!("cannot read the rules directory: {e}")))?
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| {
            let n = Path::new(n);
            n.extension().is_some_and(|x| x == "yml" || x == "yaml")
        })
        .collect();
    names.sort();
    let mut sources = Vec::new();
    for n in names {
        let f = d.join(&n);
        let (file, meta) =
            open_in(&dir, &n, &f, "rule file", Trust::Owner).map_err(|e| err(&f, e.to_string()))?;
        let bytes = read_bounded(file, &meta, &f, RULES_MAX, "rule file")
            .map_err(|e| err(&f, e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| err(&f, "not UTF-8 text".into()))?;
        sources.push(Source {
            name: f.display().to_string(),
            text,
        });
    }
    Ok(sources)
}

pub fn compile(sources: &[Source]) -> Result<RuleSet, RuleError> {
    let mut files = Vec::new();
    for s in sources {
        let f: RuleFile = if s.text.trim().is_empty() {
            RuleFile {
                lists: BTreeMap::new(),
                macros: BTreeMap::new(),
                rules: Vec::new(),
            }
        } else {
            serde_saphyr::from_str(&s.text).map_err(|e| {
                let msg = e.to_string();
                let (line, col) = yaml_pos(&msg);
                RuleError {
                    file: s.name.clone(),
                    line,
                    col,
                    message: msg,
                }
            })?
        };
        files.push((s, f));
    }
    // Global lists and macros first, so any file may use any of them.
    let mut lists = BTreeMap::new();
    let mut macro_src: BTreeMap<String, (&Source, serde_saphyr::Spanned<String>)> = BTreeMap::new();
    for (s, f) in &files {
        for (k, v) in &f.lists {
            if lists.insert(k.clone(), v.clone()).is_some() {
                return Err(RuleError {
                    file: s.name.clone(),
                    line: 0,
                    col: 0,
                    message: format!("list `{k}` is defined twice"),
                });
            }
        }
        for (k, v) in &f.macros {
            if macro_src.insert(k.clone(), (s, v.clone())).is_some() {
                return Err(located(
                    s,
                    v,
                    (1, 1),
                    format!("macro `{k}` is defined twice"),
                ));
            }
        }
    }
    let mut macros = BTreeMap::new();
    for (k, (s, v)) in &macro_src {
        let ast = parse_cond(&v.value).map_err(|(p, m)| located(s, v, p, m))?;
        macros.insert(k.clone(), ast);
    }
    let mut set = RuleSet::default();
    for (s, f) in &files {
        for r in &f.rules {
            let name = r.name.value.trim().to_string();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(located(
                    s,
                    &r.name,
                    (1, 1),
                    "a rule name uses letters, digits, `-` and `_`".into(),
                ));
            }
            if set.rules.iter().any(|o: &Rule| o.name == name) {
                return Err(located(
                    s,
                    &r.name,
                    (1, 1),
                    format!("rule `{name}` is defined twice"),
                ));
            }
            let window_ns = match &r.window {
                Some(w) => parse_duration(w.value.trim())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        located(
                            s,
                            w,
                            (1, 1),
                            "expected a duration such as 30s, 5m or 1h".into(),
                        )
                    })?,
                None => DEFAULT_WINDOW_NS,
            };
            let ast =
                parse_cond(&r.condition.value).map_err(|(p, m)| located(s, &r.condition, p, m))?;
            let mut cx = Ctx {
                lists: &lists,
                macros: &macros,
                patterns: Vec::new(),
                stack: Vec::new(),
                depth: 0,
            };
            let cond =
                trace_level(&ast, &mut cx).map_err(|(p, m)| located(s, &r.condition, p, m))?;
            if !has_positive(&cond) {
                return Err(located(
                    s,
                    &r.condition,
                    (1, 1),
                    "a rule needs something to happen: has(...), count(...) or a `then` sequence"
                        .into(),
                ));
            }
            set.rules.push(Rule {
                name,
                severity: r.severity,
                description: r.description.trim().to_string(),
                tags: r.tags.clone(),
                window_ns,
                patterns: cx.patterns,
                cond,
                source: s.name.clone(),
            });
        }
    }
    Ok(set)
}

/// A position inside a YAML scalar, as a position in the file.
fn located(s: &Source, v: &serde_saphyr::Spanned<String>, p: Pos, message: String) -> RuleError {
    let line = v.referenced.line();
    let col = v.referenced.column();
    let raw_line = s
        .text
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or("");
    let at = raw_line
        .chars()
        .skip(col.saturating_sub(1) as usize)
        .collect::<String>();
    let (l, c) = (p.0 as u64, p.1 as u64);
    let (fl, fc) = if at.starts_with('|') || at.starts_with('>') {
        // A block scalar: its text starts on the next line, indented.
        let fl = line + l;
        let indent = s
            .text
            .lines()
            .nth(fl.saturating_sub(1) as usize)
            .map(|t| t.len() - t.trim_start().len())
            .unwrap_or(0) as u64;
        (fl, indent + c)
    } else {
        let quote = u64::from(at.starts_with('"') || at.starts_with('\''));
        if l == 1 {
            (line, col + quote + c - 1)
        } else {
            (line + l - 1, c)
        }
    };
    RuleError {
        file: s.name.clone(),
        line: fl,
        col: fc,
        message,
    }
}

/// "line N column M" out of a YAML error message.
fn yaml_pos(msg: &str) -> (u64, u64) {
    let num_after = |key: &str| -> u64 {
        msg.find(key)
            .map(|i| {
                msg[i + key.len()..]
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    (num_after("line"), num_after("column"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            format!("rules:\n  - name: r\n    severity: high\n    description: d\n    condition: '{c}'\n")
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
        let e = one("rules:\n  - name: r\n    severity: urgent\n    description: d\n    condition: has(file)\n").unwrap_err();
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
        assert!(
            matches!(&r.cond, TracePred::Seq(s) if s.len() == 2 && s[1].1 == Some(10_000_000_000))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000_000_000));
        assert_eq!(parse_duration("5"), None);
    }
}
