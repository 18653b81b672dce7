//! Name resolution (lists, macros, fields) and type checking of a parsed
//! condition, into what the engine runs. Fields and their types come from
//! the event's one field table.

use std::collections::BTreeMap;

use globset::GlobBuilder;

use super::depth::MAX_TREE_DEPTH;
use super::load::ListItem;
use super::parse::{Ast, CondError, Pos, Val};
use super::set::{EvPred, Op, Pattern, Rhs, TracePred, Ty};
use crate::event::Kind;

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

/// The patterns a rule's condition keeps and the condition over them.
pub(super) fn check_condition(
    ast: &Ast,
    lists: &BTreeMap<String, Vec<ListItem>>,
    macros: &BTreeMap<String, Ast>,
) -> Result<(Vec<Pattern>, TracePred), CErr> {
    let mut cx = Ctx {
        lists,
        macros,
        patterns: Vec::new(),
        stack: Vec::new(),
        depth: 0,
    };
    let cond = trace_level(ast, &mut cx)?;
    if !has_positive(&cond) {
        return Err((
            (1, 1),
            "a rule needs something to happen: has(...), count(...) or a `then` sequence".into(),
        )
            .into());
    }
    Ok((cx.patterns, cond))
}

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
        ).into());
    }
    cx.depth += 1;
    let r = f(cx);
    cx.depth -= 1;
    r
}

type CErr = CondError;

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
                        )
                            .into())
                    }
                }
            }
            TracePred::Seq(out)
        }
        Ast::Cmp(f, _, _, at) => {
            return Err((
                *at,
                format!("`{f}` compares one event's field: put it inside has(kind).where(...)"),
            )
                .into())
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
        return Err((at, format!("macro `{n}` refers to itself")).into());
    }
    cx.macros
        .get(n)
        .cloned()
        .ok_or_else(|| (at, format!("unknown macro `{n}`")).into())
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
            )
                .into())
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
    let bad = |what: &str| -> CErr { (at, format!("`{f}` ({ty:?}) {what}")).into() };
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
                    _ => return Err(((1, 1), "a list holds strings or numbers".into()).into()),
                }
            }
            if !strs.is_empty() && !ints.is_empty() {
                return Err(((1, 1), "a list mixes strings and numbers".into()).into());
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
                    return Err((*at, format!("list `{n}` mixes strings and numbers")).into());
                }
            } else if let Some(t) = field_ty(kind, n) {
                Rhs::Field(n.clone(), t)
            } else if n == "true" || n == "false" {
                Rhs::Field(n.clone(), Ty::Bool)
            } else {
                return Err((
                    *at,
                    format!("`{n}` is neither a list nor a field of {kind} events"),
                )
                    .into());
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
