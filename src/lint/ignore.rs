//! `-- squawk-ignore <rule>[, <rule>] [-- reason]` and `-- squawk-ignore-file <rule>`, found
//! with squawk's own comment reader, applied by us so that our rules honour them too and an
//! acknowledgement that covers nothing can be reported.

use squawk_linter::ignore::{ignore_rule_info, IgnoreKind, IGNORE_FILE_TEXT, IGNORE_LINE_TEXT};
use squawk_syntax::{SyntaxKind, SyntaxNode};

use super::is_known_rule;
use crate::migrations::lexer::LineIndex;

/// One acknowledgement comment.
#[derive(Debug)]
pub struct Ignore {
    /// Byte offset of the comment.
    pub offset: usize,
    /// Rule names it lists (empty: every rule).
    pub rules: Vec<String>,
    /// Names it lists that are no rule.
    pub unknown: Vec<String>,
    /// The text after a second `--`, if any.
    pub reason: Option<String>,
    /// Line of the comment; a finding on it or the next line is covered (squawk's rule).
    line: usize,
    /// Byte range it covers: from the comment to the end of the statement after it, or the
    /// whole file for `squawk-ignore-file`.
    covers: (usize, usize),
    /// Where `squawk-ignore` / `squawk-ignore-file` is written, to blank it for squawk.
    keyword: (usize, usize),
}

impl Ignore {
    /// The rule names as written.
    pub fn names(&self) -> String {
        self.rules.join(", ")
    }

    fn covers(&self, rule: &str, offset: usize, line: usize) -> bool {
        let listed = self.rules.is_empty() || self.rules.iter().any(|r| r == rule);
        let here = (self.covers.0..self.covers.1).contains(&offset)
            || line == self.line
            || line == self.line + 1;
        listed && here
    }
}

/// Every acknowledgement comment of one section.
#[derive(Debug, Default)]
pub struct Ignores(Vec<Ignore>);

impl Ignores {
    pub fn find(root: &SyntaxNode, lines: &LineIndex) -> Ignores {
        let statements: Vec<(usize, usize)> = root
            .children()
            .map(|n| {
                let r = n.text_range();
                (usize::from(r.start()), usize::from(r.end()))
            })
            .collect();
        let file_end = usize::from(root.text_range().end());
        let mut out = Vec::new();
        for token in root
            .descendants_with_tokens()
            .filter_map(|e| e.into_token())
            .filter(|t| t.kind() == SyntaxKind::COMMENT)
        {
            let Some((names, range, kind)) = ignore_rule_info(&token) else {
                continue;
            };
            let names_start = usize::from(range.start());
            let keyword_len = match kind {
                IgnoreKind::File => IGNORE_FILE_TEXT.len(),
                IgnoreKind::Line => IGNORE_LINE_TEXT.len(),
            };
            let offset = usize::from(token.text_range().start());
            let end = usize::from(token.text_range().end());
            let mut rules = Vec::new();
            let mut unknown = Vec::new();
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if is_known_rule(name) {
                    rules.push(name.to_string());
                } else {
                    unknown.push(name.to_string());
                }
            }
            if rules.is_empty() && !unknown.is_empty() {
                // Only unknown names: it acknowledges nothing rather than everything.
                rules.push(String::new());
            }
            let covers = match kind {
                IgnoreKind::File => (0, file_end),
                IgnoreKind::Line => statements
                    .iter()
                    .find(|(_, e)| *e > end)
                    .map_or((offset, end), |(_, e)| (offset, *e)),
            };
            let comment = token.text();
            let after_keyword = names_start - offset;
            let reason = comment
                .get(after_keyword..)
                .and_then(|rest| rest.split_once("--"))
                .map(|(_, r)| r.trim().trim_end_matches("*/").trim().to_string())
                .filter(|r| !r.is_empty());
            out.push(Ignore {
                offset,
                rules,
                unknown,
                reason,
                line: lines.line(offset),
                covers,
                keyword: (names_start - keyword_len, names_start),
            });
        }
        Ignores(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Ignore> {
        self.0.iter()
    }

    /// The first acknowledgement covering a finding of `rule` at `offset` on `line`: its
    /// index and reason.
    pub fn covering(
        &self,
        rule: &str,
        offset: usize,
        line: usize,
    ) -> Option<(usize, Option<String>)> {
        self.0
            .iter()
            .position(|i| i.covers(rule, offset, line))
            .map(|index| (index, self.0[index].reason.clone()))
    }

    /// `text` with each `squawk-ignore` keyword blanked, same length, so squawk reports
    /// everything at the same offsets.
    pub fn masked(&self, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        for ignore in &self.0 {
            bytes[ignore.keyword.0..ignore.keyword.1].fill(b' ');
        }
        // Only ASCII keyword bytes were replaced by ASCII spaces.
        String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
    }
}
