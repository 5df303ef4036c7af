//! Places in a file, for messages: `path:line:col`.
//!
//! Takes a file's text, its path and a byte offset (toml's spans are byte
//! ranges) and hands on the line and column people count, a location
//! string, or a [`LocatedError`] that shows as `path:line:col: message`.
//! Used by the scenario parser and by the gateway config alike, so both
//! point at a problem the same way.

use std::ops::Range;
use std::path::Path;

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// Offsets past the end or inside a character are moved back to a boundary.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// `path:line:col` of the start of `span` in `text` (the file at `path`),
/// or `path` alone when there is no span (a problem of the whole file).
pub fn location(path: &Path, text: &str, span: Option<Range<usize>>) -> String {
    match span {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{}:{line}:{col}", path.display())
        }
        None => path.display().to_string(),
    }
}

/// A problem at a place in a file: shows as `location: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct LocatedError {
    /// `path:line:col`, or `path` when no position applies.
    pub location: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl LocatedError {
    /// A problem at `span` of `text`, the file at `path` (see [`location`]).
    pub fn at(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> LocatedError {
        LocatedError {
            location: location(path, text, span),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let text = "ab\ncé d\n\nx";
        // (byte offset, line, col)
        let cases = [
            (0, 1, 1),
            (1, 1, 2),
            (3, 2, 1),
            (4, 2, 2),
            (6, 2, 3),
            (7, 2, 4),
            (9, 3, 1),
            (10, 4, 1),
            (99, 4, 2),
        ];
        for (offset, line, col) in cases {
            assert_eq!(line_col(text, offset), (line, col), "offset {offset}");
        }
        // Inside the two bytes of 'é': moved back to its start.
        assert_eq!(line_col(text, 5), (2, 2));
    }

    #[test]
    fn errors_show_the_place_first() {
        let text = "a = 1\nb = x\n";
        let e = LocatedError::at(Path::new("f.toml"), text, Some(10..11), "bad");
        assert_eq!(e.to_string(), "f.toml:2:5: bad");
        let e = LocatedError::at(Path::new("f.toml"), text, None, "no upstream");
        assert_eq!(e.to_string(), "f.toml: no upstream");
    }
}
