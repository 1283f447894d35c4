//! The regular expressions of the filters' `~=` operator (containerd matches them with Go's
//! `regexp.MatchString`: unanchored, RE2 syntax). A small backtracking matcher for the
//! part of that syntax filters use, written here rather than adding a regex crate:
//! literals, `.`, classes `[a-z_]` / `[^…]` (with `\d \w \s` and their negations),
//! anchors `^ $`, groups `(…)` / `(?:…)`, alternation `|`, and the quantifiers `* + ?
//! {n} {n,} {n,m}` (greedy or lazy — either decides only whether there is a match).
//!
//! Limits, so a hostile filter cannot stall the daemon: patterns of at most 1 KiB, nesting
//! 32 deep, repeat counts up to 1000, and a budget of steps per match; a match that runs out
//! of budget counts as no match. Anything else RE2 has (flags, named groups, Unicode
//! classes, backreferences, which RE2 refuses too) is a parse error.

use std::cell::Cell;

const MAX_PATTERN: usize = 1024;
const MAX_DEPTH: usize = 32;
const MAX_REPEAT: u32 = 1000;
const STEP_BUDGET: u32 = 200_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Char(char),
    Any,
    /// Ranges, negated.
    Class(Vec<(char, char)>, bool),
    Start,
    End,
    Alt(Vec<Vec<Node>>),
    Repeat(Box<Node>, u32, Option<u32>),
}

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regex {
    root: Node,
}

impl Regex {
    /// Compile `pattern`; the error says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        if pattern.len() > MAX_PATTERN {
            return Err(format!("pattern longer than {MAX_PATTERN} bytes"));
        }
        let mut p = Parser {
            c: pattern.chars().collect(),
            i: 0,
        };
        let root = p.alt(0)?;
        if p.i < p.c.len() {
            return Err("unexpected )".into());
        }
        Ok(Regex { root })
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        let m = Matcher {
            t: &t,
            steps: Cell::new(0),
        };
        (0..=t.len()).any(|start| m.node(&self.root, start, &mut |_| true))
    }
}

struct Parser {
    c: Vec<char>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    fn alt(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err("pattern nested too deep".into());
        }
        let mut seqs = vec![self.seq(depth)?];
        while self.peek() == Some('|') {
            self.i += 1;
            seqs.push(self.seq(depth)?);
        }
        Ok(Node::Alt(seqs))
    }

    fn seq(&mut self, depth: usize) -> Result<Vec<Node>, String> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let atom = match c {
                '|' | ')' => break,
                '(' => {
                    self.i += 1;
                    if self.peek() == Some('?') {
                        if self.c.get(self.i + 1) == Some(&':') {
                            self.i += 2;
                        } else {
                            return Err("unsupported group flags (?".into());
                        }
                    }
                    let inner = self.alt(depth + 1)?;
                    if self.peek() != Some(')') {
                        return Err("missing closing )".into());
                    }
                    self.i += 1;
                    inner
                }
                '[' => {
                    self.i += 1;
                    self.class()?
                }
                '.' => {
                    self.i += 1;
                    Node::Any
                }
                '^' => {
                    self.i += 1;
                    Node::Start
                }
                '$' => {
                    self.i += 1;
                    Node::End
                }
                '\\' => {
                    self.i += 1;
                    self.escape()?
                }
                '*' | '+' | '?' => {
                    return Err(format!("missing argument to repetition operator {c}"))
                }
                _ => {
                    self.i += 1;
                    Node::Char(c)
                }
            };
            let atom = self.quantified(atom)?;
            out.push(atom);
        }
        Ok(out)
    }

    fn quantified(&mut self, mut atom: Node) -> Result<Node, String> {
        loop {
            let (min, max) = match self.peek() {
                Some('*') => {
                    self.i += 1;
                    (0, None)
                }
                Some('+') => {
                    self.i += 1;
                    (1, None)
                }
                Some('?') => {
                    self.i += 1;
                    (0, Some(1))
                }
                Some('{') => match self.counts()? {
                    Some(mm) => mm,
                    None => return Ok(atom),
                },
                _ => return Ok(atom),
            };
            // A lazy marker changes which match is found, not whether one is.
            if self.peek() == Some('?') {
                self.i += 1;
            }
            // `a**` is an error in RE2 (a lazy `a*?` was consumed above).
            if matches!(atom, Node::Repeat(..)) {
                return Err("invalid nested repetition operator".into());
            }
            atom = Node::Repeat(Box::new(atom), min, max);
        }
    }

    /// `{n}`, `{n,}`, `{n,m}`; None (a literal `{`) when it is not one, as RE2 reads it.
    fn counts(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        let start = self.i;
        self.i += 1;
        let num = |p: &mut Parser| -> Option<u32> {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.c[s..p.i].iter().collect::<String>().parse().ok()
        };
        let Some(min) = num(self) else {
            self.i = start;
            return Ok(None);
        };
        let max = if self.peek() == Some(',') {
            self.i += 1;
            if self.peek() == Some('}') {
                None
            } else {
                match num(self) {
                    Some(m) => Some(m),
                    None => {
                        self.i = start;
                        return Ok(None);
                    }
                }
            }
        } else {
            Some(min)
        };
        if self.peek() != Some('}') {
            self.i = start;
            return Ok(None);
        }
        self.i += 1;
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
            return Err("invalid repeat count".into());
        }
        Ok(Some((min, max)))
    }

    fn escape(&mut self) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err("trailing backslash at end of expression".into());
        };
        self.i += 1;
        Ok(match c {
            'd' | 'w' | 's' | 'D' | 'W' | 'S' => {
                let (ranges, neg) = perl_class(c);
                Node::Class(ranges, neg)
            }
            'n' => Node::Char('\n'),
            't' => Node::Char('\t'),
            'r' => Node::Char('\r'),
            c if c.is_ascii_punctuation() => Node::Char(c),
            c => return Err(format!("invalid escape sequence \\{c}")),
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let mut neg = false;
        if self.peek() == Some('^') {
            neg = true;
            self.i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("missing closing ]".into());
            };
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let Some(e) = self.peek() else {
                    return Err("missing closing ]".into());
                };
                self.i += 1;
                match e {
                    'd' | 'w' | 's' => {
                        ranges.extend(perl_class(e).0);
                        continue;
                    }
                    'n' => '\n',
                    't' => '\t',
                    e if e.is_ascii_punctuation() => e,
                    e => return Err(format!("invalid escape sequence \\{e}")),
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.c.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let Some(hi) = self.peek() else {
                    return Err("missing closing ]".into());
                };
                self.i += 1;
                if hi < lo {
                    return Err(format!("invalid character class range {lo}-{hi}"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class(ranges, neg))
    }
}

fn perl_class(c: char) -> (Vec<(char, char)>, bool) {
    let neg = c.is_ascii_uppercase();
    let ranges = match c.to_ascii_lowercase() {
        'd' => vec![('0', '9')],
        'w' => vec![('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')],
        _ => vec![('\t', '\n'), ('\x0c', '\r'), (' ', ' ')],
    };
    (ranges, neg)
}

struct Matcher<'a> {
    t: &'a [char],
    steps: Cell<u32>,
}

impl Matcher<'_> {
    fn seq(&self, seq: &[Node], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match seq.split_first() {
            None => k(pos),
            Some((n, rest)) => self.node(n, pos, &mut |p| self.seq(rest, p, k)),
        }
    }

    fn node(&self, n: &Node, pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        let s = self.steps.get() + 1;
        self.steps.set(s);
        if s > STEP_BUDGET {
            return false;
        }
        let one = |ok: bool, k: &mut dyn FnMut(usize) -> bool| ok && k(pos + 1);
        let c = self.t.get(pos).copied();
        match n {
            Node::Char(want) => one(c == Some(*want), k),
            Node::Any => one(c.is_some_and(|c| c != '\n'), k),
            Node::Class(ranges, neg) => one(
                c.is_some_and(|c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg),
                k,
            ),
            Node::Start => pos == 0 && k(pos),
            Node::End => pos == self.t.len() && k(pos),
            Node::Alt(seqs) => seqs.iter().any(|s| self.seq(s, pos, k)),
            Node::Repeat(inner, min, max) => self.repeat(inner, *min, *max, 0, pos, k),
        }
    }

    fn repeat(
        &self,
        inner: &Node,
        min: u32,
        max: Option<u32>,
        count: u32,
        pos: usize,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if max.is_none_or(|m| count < m) {
            let more = self.node(inner, pos, &mut |p| {
                // An empty iteration makes no progress: it can only stand for the
                // iterations still needed to reach `min`.
                if p == pos {
                    return count < min && k(p);
                }
                self.repeat(inner, min, max, count + 1, p, k)
            });
            if more {
                return true;
            }
        }
        count >= min && k(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p).unwrap().is_match(t)
    }

    #[test]
    fn matches_as_go_regexp_match_string() {
        assert!(m("/tasks/.*", "/tasks/exit"));
        assert!(m("tasks", "/tasks/exit"));
        assert!(!m("^tasks", "/tasks/exit"));
        assert!(m("^/namespaces/(create|delete)$", "/namespaces/delete"));
        assert!(!m("^/namespaces/(create|delete)$", "/namespaces/update"));
        assert!(m("^a{2,3}$", "aaa") && !m("^a{2,3}$", "aaaa") && !m("^a{2}$", "a"));
        assert!(m("^[a-c_]+x?$", "ab_c") && !m("^[^a-c]+$", "abd"));
        assert!(m(r"^\d+\.\d+$", "1.25") && !m(r"^\d+\.\d+$", "1x25"));
        assert!(m("^(?:ab)*$", "ababab") && !m("^(?:ab)*$", "aba"));
        assert!(m("^(a*)*b$", "aaab"));
        assert!(m("x*", "") && m("", "anything"));
        assert!(
            m("a{,2}", "a{,2}"),
            "a brace that starts no count is a literal"
        );
        assert!(m("^.*?end$", "the end"));
    }

    #[test]
    fn refuses_bad_patterns() {
        for p in [
            "(", "a)", "[a", "*a", "a**", r"\", "(?i)a", "a{2,1}", "a{5000}", r"\q",
        ] {
            assert!(Regex::new(p).is_err(), "{p}");
        }
        assert!(Regex::new(&"(".repeat(40)).is_err());
    }

    #[test]
    fn catastrophic_patterns_end() {
        // Exponential for a naive backtracker; the budget stops it.
        let r = Regex::new("^(a|a)*(a|a)*(a|a)*b$").unwrap();
        let t = "a".repeat(40);
        assert!(!r.is_match(&t));
    }
}
