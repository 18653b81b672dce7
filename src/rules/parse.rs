//! Rule conditions from text to a syntax tree (pest, grammar.pest); every
//! error is a position inside the condition and what was expected there.

use pest::iterators::Pair;
use pest::Parser;

use super::depth::{too_deep, MAX_NESTING};
use super::set::Op;
use crate::event::Kind;

mod parser {
    #[derive(pest_derive::Parser)]
    #[grammar = "rules/grammar.pest"]
    pub struct CondParser;
}
use parser::CondParser;
// pest names its generated enum `Rule`; ours is taken.
use parser::Rule as Rule_;

#[derive(Debug, Clone)]
pub(super) enum Ast {
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
pub(super) enum Val {
    Str(String),
    Int(i64),
    List(Vec<Val>),
    Name(String, Pos),
}

/// A condition that does not parse or check: where in its text, and why
/// (made a RuleError, located in its file, by the loader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CondError {
    pub at: Pos,
    pub message: String,
}

impl From<(Pos, String)> for CondError {
    fn from((at, message): (Pos, String)) -> CondError {
        CondError { at, message }
    }
}

/// (line, column) inside the condition text, from 1.
pub(super) type Pos = (usize, usize);

fn pos(p: &Pair<Rule_>) -> Pos {
    p.as_span().start_pos().line_col()
}

pub(super) fn parse_cond(text: &str) -> Result<Ast, CondError> {
    if let Some(p) = too_deep(text) {
        return Err((
            p,
            format!("the condition nests deeper than {MAX_NESTING} levels of brackets and `not`; write it flatter (a macro, or `and`/`or` of simpler parts)"),
        ).into());
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
        Rule_::not_kw => "`not`".into(),
        Rule_::where_kw => "`where`".into(),
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

fn build_expr(p: Pair<Rule_>) -> Result<Ast, CondError> {
    match p.as_rule() {
        Rule_::expr => build_chain(p, Rule_::term, Ast::Or),
        Rule_::term => build_chain(p, Rule_::factor, Ast::And),
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
        Rule_::seq => build_seq(p),
        Rule_::atom => build_expr(
            p.into_inner()
                .find(|x| !matches!(x.as_rule(), Rule_::lparen | Rule_::rparen))
                .expect("atom part"),
        ),
        Rule_::has | Rule_::never | Rule_::count => build_trace_atom(p),
        Rule_::comparison => build_comparison(p),
        Rule_::name => Ok(Ast::Name(p.as_str().to_string(), pos(&p))),
        other => Err((pos(&p), format!("unexpected {other:?}")).into()),
    }
}

/// `a or b or c` (or `and`): one part is itself, more are `join`ed.
fn build_chain(p: Pair<Rule_>, part: Rule_, join: fn(Vec<Ast>) -> Ast) -> Result<Ast, CondError> {
    let parts: Vec<Ast> = p
        .into_inner()
        .filter(|x| x.as_rule() == part)
        .map(build_expr)
        .collect::<Result<_, _>>()?;
    Ok(if parts.len() == 1 {
        parts.into_iter().next().expect("one")
    } else {
        join(parts)
    })
}

/// `a then b within 10s then c`: steps, each with its bound.
fn build_seq(p: Pair<Rule_>) -> Result<Ast, CondError> {
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

/// `has(kind)`, `never(kind)` or `count(kind) OP N`, each with an
/// optional `.where(...)`.
fn build_trace_atom(p: Pair<Rule_>) -> Result<Ast, CondError> {
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

/// `field OP value`.
fn build_comparison(p: Pair<Rule_>) -> Result<Ast, CondError> {
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

fn build_val(p: Pair<Rule_>) -> Result<Val, CondError> {
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

/// The grammar admits only the kinds rules select.
fn static_kind(s: &str) -> &'static str {
    Kind::from_name(s).map_or("memory", Kind::as_str)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("2h"), Some(7_200_000_000_000));
        assert_eq!(parse_duration("5"), None);
    }
}
