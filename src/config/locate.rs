//! Finds the line and column of a field in the TOML source.
//!
//! serde only reports a location for syntax and type errors; our own checks (a confidence of
//! 1.5, an unknown sink) know the field's TOML path instead. toml_edit keeps spans, so a path
//! is looked up in its document and mapped to a line/column of the original text.

use std::fmt;
use std::path::{Path, PathBuf};
use toml_edit::{ImDocument, Item, Value};

/// A TOML path such as `rule[1].zone[2]`.
#[derive(Debug, Clone, Default)]
pub struct FieldPath(Vec<Seg>);

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

impl FieldPath {
    pub fn root(key: &str) -> Self {
        Self(vec![Seg::Key(key.to_string())])
    }
    pub fn key(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// The source text with its parsed, span-carrying document.
pub(crate) struct Located<'a> {
    text: &'a str,
    pub(crate) file: PathBuf,
    doc: Option<ImDocument<&'a str>>,
}

impl<'a> Located<'a> {
    pub(crate) fn new(text: &'a str, file: &Path) -> Self {
        Self {
            text,
            file: file.to_path_buf(),
            doc: ImDocument::parse(text).ok(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map(|nl| before[nl + 1..].chars().count())
            .unwrap_or_else(|| before.chars().count())
            + 1;
        (line, col)
    }

    /// Line/column of the deepest part of `path` present in the file (the field itself, or
    /// the table it is missing from); (1, 1) when nothing of it is present.
    pub(crate) fn find(&self, path: &FieldPath) -> (usize, usize) {
        let Some(doc) = &self.doc else { return (1, 1) };
        let mut best = None;
        let mut cur = Cur::Item(doc.as_item());
        for seg in &path.0 {
            let next = match (&cur, seg) {
                (Cur::Item(Item::Table(t)), Seg::Key(k)) => t.get(k).map(Cur::Item),
                (Cur::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => a
                    .get(*i)
                    .map(|t| Cur::Table(t, t.span().or_else(|| first_key_span(t)))),
                (Cur::Table(t, _), Seg::Key(k)) => t.get(k).map(Cur::Item),
                (Cur::Item(Item::Value(v)), s) => value_child(v, s),
                (Cur::Value(v), s) => value_child(v, s),
                _ => None,
            };
            match next {
                Some(n) => {
                    if let Some(span) = n.span() {
                        best = Some(span.start);
                    }
                    cur = n;
                }
                None => break,
            }
        }
        best.map(|o| self.line_col(o)).unwrap_or((1, 1))
    }

    /// The path of the deepest key or value whose span holds `offset` (what serde's error
    /// span points at), e.g. `camera[1].detect_fps`; `None` when nothing does.
    pub(crate) fn path_at(&self, offset: usize) -> Option<FieldPath> {
        let doc = self.doc.as_ref()?;
        let mut path = FieldPath::default();
        in_table(doc.as_table(), offset, &mut path).then_some(path)
    }
}

fn holds(span: Option<std::ops::Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// Extends `path` with the entry of `t` that holds `offset`; whether one did.
fn in_table(t: &toml_edit::Table, offset: usize, path: &mut FieldPath) -> bool {
    for (k, item) in t.iter() {
        path.0.push(Seg::Key(k.to_string()));
        let here = holds(t.key(k).and_then(|key| key.span()), offset) || holds(item.span(), offset);
        let deeper = match item {
            Item::Table(sub) => in_table(sub, offset, path),
            Item::ArrayOfTables(a) => a.iter().enumerate().any(|(i, sub)| {
                path.0.push(Seg::Index(i));
                let found = holds(sub.span(), offset) | in_table(sub, offset, path);
                if !found {
                    path.0.pop();
                }
                found
            }),
            Item::Value(v) => in_value(v, offset, path),
            Item::None => false,
        };
        if deeper || here {
            return true;
        }
        path.0.pop();
    }
    false
}

fn in_value(v: &Value, offset: usize, path: &mut FieldPath) -> bool {
    let children: Vec<(Seg, &Value)> = match v {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (Seg::Index(i), v))
            .collect(),
        Value::InlineTable(t) => t
            .iter()
            .map(|(k, v)| (Seg::Key(k.to_string()), v))
            .collect(),
        _ => return false,
    };
    for (seg, child) in children {
        path.0.push(seg);
        if in_value(child, offset, path) || holds(child.span(), offset) {
            return true;
        }
        path.0.pop();
    }
    false
}

enum Cur<'d> {
    Item(&'d Item),
    Table(&'d toml_edit::Table, Option<std::ops::Range<usize>>),
    Value(&'d Value),
}

impl Cur<'_> {
    fn span(&self) -> Option<std::ops::Range<usize>> {
        match self {
            Cur::Item(i) => i.span(),
            Cur::Table(_, s) => s.clone(),
            Cur::Value(v) => v.span(),
        }
    }
}

fn value_child<'d>(v: &'d Value, seg: &Seg) -> Option<Cur<'d>> {
    match (v, seg) {
        (Value::Array(a), Seg::Index(i)) => a.get(*i).map(Cur::Value),
        (Value::InlineTable(t), Seg::Key(k)) => t.get(k).map(Cur::Value),
        _ => None,
    }
}

fn first_key_span(t: &toml_edit::Table) -> Option<std::ops::Range<usize>> {
    t.iter()
        .filter_map(|(k, _)| t.key(k).and_then(|key| key.span()))
        .min_by_key(|s| s.start)
}

/// Removes the entry at `path` from an editable document (so the rest of the file can be
/// checked past a value serde refused); whether it was there.
pub(crate) fn remove_path(doc: &mut toml_edit::DocumentMut, path: &FieldPath) -> bool {
    remove_at(doc.as_item_mut(), &path.0)
}

fn remove_at(item: &mut Item, path: &[Seg]) -> bool {
    match (item, path) {
        (Item::Table(t), _) => remove_in_table(t, path),
        (Item::ArrayOfTables(a), [Seg::Index(i)]) if *i < a.len() => {
            a.remove(*i);
            true
        }
        (Item::ArrayOfTables(a), [Seg::Index(i), rest @ ..]) => {
            a.get_mut(*i).is_some_and(|t| remove_in_table(t, rest))
        }
        (Item::Value(v), _) => remove_in_value(v, path),
        _ => false,
    }
}

fn remove_in_table(t: &mut toml_edit::Table, path: &[Seg]) -> bool {
    match path {
        [Seg::Key(k)] => t.remove(k).is_some(),
        [Seg::Key(k), rest @ ..] => t.get_mut(k).is_some_and(|i| remove_at(i, rest)),
        _ => false,
    }
}

fn remove_in_value(v: &mut Value, path: &[Seg]) -> bool {
    match (v, path) {
        (Value::Array(a), [Seg::Index(i)]) if *i < a.len() => {
            a.remove(*i);
            true
        }
        (Value::InlineTable(t), [Seg::Key(k)]) => t.remove(k).is_some(),
        (Value::Array(a), [Seg::Index(i), rest @ ..]) => {
            a.get_mut(*i).is_some_and(|v| remove_in_value(v, rest))
        }
        (Value::InlineTable(t), [Seg::Key(k), rest @ ..]) => {
            t.get_mut(k).is_some_and(|v| remove_in_value(v, rest))
        }
        _ => false,
    }
}

/// Renumbers the tables of an editable document so that every array of tables is written in
/// one run (children after their parent), in the order the file first names each key.
///
/// Why: toml 0.8 places a refused value inside a `[[line]]` at the *first* `[[rule]]` when
/// the file's `[[rule]]` entries sit on both sides of it (the span of an array of tables
/// written in two places covers everything between). Parsing a contiguous copy gives every
/// refusal its own entry's span; the field path is then placed in the original file.
pub(crate) fn make_arrays_contiguous(doc: &mut toml_edit::DocumentMut) {
    fn number(t: &mut toml_edit::Table, next: &mut usize) {
        for (_, item) in t.iter_mut() {
            match item {
                Item::Table(sub) => {
                    sub.set_position(*next);
                    *next += 1;
                    number(sub, next);
                }
                Item::ArrayOfTables(a) => {
                    for sub in a.iter_mut() {
                        sub.set_position(*next);
                        *next += 1;
                        number(sub, next);
                    }
                }
                _ => {}
            }
        }
    }
    let mut next = 1;
    number(doc.as_table_mut(), &mut next);
}
