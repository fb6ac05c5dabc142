//! Where a dotted path is written in the pipeline file, so every problem carries the line
//! and column an editor jumps to.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Position;

/// The file's text and its spanned syntax tree (none when the TOML itself is broken:
/// the parser's own error carries its place then).
pub(super) struct Document<'a> {
    source: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Document<'a> {
    pub fn parse(source: &'a str) -> Document<'a> {
        Document {
            source,
            root: DeTable::parse(source).ok(),
        }
    }

    /// Where `path` is written: its value's start (a table's header, an array item's
    /// `[[`); for a path not in the file, its deepest ancestor that is (the table a
    /// missing key belongs in). None when not even the first segment is in the file.
    pub fn position(&self, path: &str) -> Option<Position> {
        let span = self.deepest(path)?;
        Some(position_of(self.source, span.start))
    }

    /// The dotted path of the deepest value whose span holds `offset` (a value of the
    /// wrong type, reported by serde with only its span).
    pub fn path_at(&self, offset: usize) -> Option<String> {
        let root = self.root.as_ref()?;
        let mut path = Vec::new();
        path_in(entries(root.get_ref()), offset, &mut path).then(|| path.join("."))
    }

    /// The span of the deepest value along `path` that the file has.
    fn deepest(&self, path: &str) -> Option<Range<usize>> {
        let (child, rest) = table_child(self.root.as_ref()?.get_ref(), path)?;
        Some(descend(child, rest))
    }
}

/// Whether the deepest of `children` (or under them) holding `offset` is found; its
/// segments are left on `path`. Every branch is searched: a `[table]`'s span is only its
/// header, so a parent's span says nothing of where its keys are.
fn path_in(children: Children<'_, '_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (segment, child) in children {
        path.push(segment);
        let span = child.span();
        let inner = match child.get_ref() {
            DeValue::Table(t) => entries(t),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => Vec::new(),
        };
        if path_in(inner, offset, path) || (span.start <= offset && offset < span.end) {
            return true;
        }
        path.pop();
    }
    false
}

type Children<'t, 'a> = Vec<(String, &'t Spanned<DeValue<'a>>)>;

fn entries<'t, 'a>(table: &'t DeTable<'a>) -> Children<'t, 'a> {
    table
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), v))
        .collect()
}

/// The entry of `table` that `path` starts with, and what is left of the path. Keys are
/// matched whole, the longest first, so a key with a dot in it is still found.
fn table_child<'t, 'a, 'p>(
    table: &'t DeTable<'a>,
    path: &'p str,
) -> Option<(&'t Spanned<DeValue<'a>>, &'p str)> {
    table
        .iter()
        .filter_map(|(k, v)| {
            let key: &str = k.get_ref();
            let rest = path.strip_prefix(key)?;
            match rest.strip_prefix('.') {
                Some(rest) => Some((key.len(), v, rest)),
                None if rest.is_empty() => Some((key.len(), v, "")),
                None => None,
            }
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, v, rest)| (v, rest))
}

/// The span of the deepest value under `value` along `rest`.
fn descend(value: &Spanned<DeValue<'_>>, rest: &str) -> Range<usize> {
    if rest.is_empty() {
        return value.span();
    }
    let next = match value.get_ref() {
        DeValue::Table(t) => table_child(t, rest),
        DeValue::Array(items) => {
            let (index, after) = rest.split_once('.').unwrap_or((rest, ""));
            index
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|v| (v, after))
        }
        _ => None,
    };
    match next {
        Some((child, after)) => descend(child, after),
        None => value.span(),
    }
}

/// Line and column (in characters) of a byte offset.
pub(super) fn position_of(source: &str, offset: usize) -> Position {
    let before = &source[..offset.min(source.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}
