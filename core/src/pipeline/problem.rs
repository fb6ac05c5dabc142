//! What is wrong with a pipeline file, and where: each problem with its path and its line
//! and column, and the error that lists them all.

use std::fmt;

use super::locate::Document;

/// A place in the pipeline file, both counted from 1 (columns in characters), as editors
/// and compilers count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One thing wrong with a pipeline file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the offending key where it is written, e.g.
    /// `services.api.environments.prod.bake`, or `defaults.prod.bake` when the value comes
    /// from the defaults. A missing key's path is where it should be written.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Where the path is written: the value's start, or for a missing key the table it
    /// belongs in. None only when nothing of the path is in the file.
    pub at: Option<Position>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.at {
            write!(f, "{}:{}: ", at.line, at.column)?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A pipeline file that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// The problems placed in `source`, each once (a default shared by many services is
    /// wrong once, where it is written), in file order; those with no place first.
    pub(super) fn located(self, source: &str) -> ConfigError {
        let document = Document::parse(source);
        let mut problems: Vec<Problem> = Vec::with_capacity(self.problems.len());
        for mut p in self.problems {
            if p.at.is_none() {
                p.at = document.position(&p.path);
            }
            if !problems
                .iter()
                .any(|q| q.path == p.path && q.message == p.message)
            {
                problems.push(p);
            }
        }
        problems.sort_by_key(|p| p.at);
        ConfigError { problems }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "pipeline file has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}
