//! containerd's list filters (`filters` package): `fieldpath[op value]` selectors joined by
//! `,` (all must match); several filter strings match when any one does; none match all.
//! Operators `==`, `!=`, `~=` (a regular expression matched anywhere in the value, as Go's
//! `regexp.MatchString`; see [`crate::metadata::filter_regex`]) and presence (no operator).
//! Field path parts are separated by `.` and may be double-quoted (`labels."a.b/c"==x`);
//! values may be quoted as containerd's scanner quotes them: `"…"` (with escapes), `/…/` or
//! `|…|` (a regex needs no escaping there: `topic~=|^/tasks/|`). As in containerd, a value
//! that starts with `/` is a quoted one, so `topic=="/tasks/exit"` is how a topic is named.

use crate::errdefs::{err, ErrorKind};
use crate::metadata::filter_regex::Regex;

/// Something a filter can look into: the value at a field path, or None when absent.
pub trait Adaptor {
    /// The value at `path` (e.g. `["labels", "a.b"]`).
    fn field(&self, path: &[String]) -> Option<String>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Selector {
    path: Vec<String>,
    op: Op,
}

impl Selector {
    fn matches(&self, a: &dyn Adaptor) -> bool {
        let v = a.field(&self.path);
        match &self.op {
            Op::Present => v.is_some(),
            Op::Equal(want) => v.as_deref() == Some(want.as_str()),
            // containerd compares the (possibly empty) value: an absent field is "".
            Op::NotEqual(want) => v.as_deref().unwrap_or("") != want,
            Op::Matches(re) => v.is_some_and(|v| re.is_match(&v)),
        }
    }
}

/// A parsed set of filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    any_of: Vec<Vec<Selector>>,
}

impl Filter {
    /// Parse filter strings (OR between them); empty strings are ignored like containerd's.
    pub fn parse_all(filters: &[&str]) -> anyhow::Result<Filter> {
        let mut any_of = Vec::new();
        for f in filters {
            if f.trim().is_empty() {
                continue;
            }
            any_of.push(parse_one(f)?);
        }
        Ok(Filter { any_of })
    }

    /// Whether `a` passes.
    pub fn matches(&self, a: &dyn Adaptor) -> bool {
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|all| all.iter().all(|s| s.matches(a)))
    }
}

fn bad(f: &str, why: &str) -> anyhow::Error {
    err(
        ErrorKind::InvalidArgument,
        format!("filters: parse error: [{f}]: {why}"),
    )
}

fn parse_one(f: &str) -> anyhow::Result<Vec<Selector>> {
    let mut p = Parser {
        s: f.as_bytes(),
        i: 0,
        src: f,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        let mut path = vec![p.field()?];
        while p.eat(b".") {
            path.push(p.field()?);
        }
        p.skip_ws();
        let op = if p.eat(b"==") {
            Op::Equal(p.value()?)
        } else if p.eat(b"!=") {
            Op::NotEqual(p.value()?)
        } else if p.eat(b"~=") {
            let pattern = p.value()?;
            Op::Matches(
                Regex::new(&pattern)
                    .map_err(|e| bad(f, &format!("error parsing regexp {pattern:?}: {e}")))?,
            )
        } else {
            Op::Present
        };
        out.push(Selector { path, op });
        p.skip_ws();
        if p.i == p.s.len() {
            return Ok(out);
        }
        if !p.eat(b",") {
            return Err(bad(f, &format!("unexpected input at offset {}", p.i)));
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &[u8]) -> bool {
        if self.s[self.i..].starts_with(t) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    /// A `/…/` or `|…|` value: verbatim but for `\<quote>`, so regex escapes survive.
    fn raw_quoted(&mut self, q: u8) -> anyhow::Result<String> {
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            self.i += 1;
            if c == q {
                return String::from_utf8(out).map_err(|_| bad(self.src, "invalid UTF-8"));
            }
            if c == b'\\' && self.s.get(self.i) == Some(&q) {
                self.i += 1;
                out.push(q);
                continue;
            }
            out.push(c);
        }
        Err(bad(self.src, "quoted literal not terminated"))
    }
    fn quoted(&mut self) -> anyhow::Result<String> {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|_| bad(self.src, "invalid UTF-8")),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { break };
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                _ => out.push(c),
            }
        }
        Err(bad(self.src, "unterminated quoted string"))
    }
    fn field(&mut self) -> anyhow::Result<String> {
        if self.s.get(self.i) == Some(&b'"') {
            return self.quoted();
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'-'))
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(bad(self.src, &format!("expected field at offset {start}")));
        }
        Ok(self.src[start..self.i].to_owned())
    }
    fn value(&mut self) -> anyhow::Result<String> {
        self.skip_ws();
        match self.s.get(self.i) {
            Some(b'"') => return self.quoted(),
            Some(&q @ (b'/' | b'|')) => return self.raw_quoted(q),
            _ => {}
        }
        let start = self.i;
        while self.i < self.s.len()
            && self.s[self.i] != b','
            && !self.s[self.i].is_ascii_whitespace()
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(bad(self.src, &format!("expected value at offset {start}")));
        }
        Ok(self.src[start..self.i].to_owned())
    }
}

/// An adaptor over a name and labels, the common shape (`name`, `labels.<key>`).
pub struct NameLabels<'a> {
    /// The `name` field (or `ref`, `id`... under `name_field`).
    pub name_field: &'a str,
    /// Its value.
    pub name: &'a str,
    /// The labels.
    pub labels: &'a std::collections::BTreeMap<String, String>,
}

impl Adaptor for NameLabels<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [f] if f == self.name_field => Some(self.name.to_owned()),
            [l, rest @ ..] if l == "labels" && !rest.is_empty() => {
                self.labels.get(&rest.join(".")).cloned()
            }
            _ => None,
        }
    }
}

impl<F: Fn(&[String]) -> Option<String>> Adaptor for F {
    fn field(&self, path: &[String]) -> Option<String> {
        self(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::kind_of;
    use std::collections::BTreeMap;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_and_or() {
        let l = labels(&[("containerd.io/gc.root", "x"), ("a", "1")]);
        let a = NameLabels {
            name_field: "name",
            name: "docker.io/library/busybox:latest",
            labels: &l,
        };
        let m = |fs: &[&str]| Filter::parse_all(fs).unwrap().matches(&a);
        assert!(m(&[]));
        assert!(m(&["name==docker.io/library/busybox:latest"]));
        assert!(m(&[r#"name=="docker.io/library/busybox:latest""#]));
        assert!(!m(&["name==other"]));
        assert!(m(&["name==other", "labels.a==1"]));
        assert!(m(&[r#"labels."containerd.io/gc.root""#]));
        assert!(m(&["labels.a==1,labels.a!=2"]));
        assert!(!m(&["labels.a==1,labels.b"]));
        assert!(m(&["labels.b!=1"]));
        assert!(!m(&["labels.a!=1"]));
        assert!(m(&["name~=busybox"]));
        assert!(m(&["name~=^docker\\.io/.*:latest$"]));
        assert!(!m(&["name~=^busybox"]));
        assert!(m(&["name~=|^docker.io/library/|"]));
        assert!(m(&[r"name~=/^docker.io\/library/"]));
        assert!(m(&[r#"name=="docker.io/library/busybox:latest""#]));
        assert!(!m(&["labels.missing~=.*"]));
    }

    #[test]
    fn bad_filters_are_invalid_argument() {
        for f in [
            "==x",
            "name==",
            "name~=b(",
            r#"labels."open"#,
            "name==a b",
            "topic==/tasks/exit",
        ] {
            let e = Filter::parse_all(&[f]).unwrap_err();
            assert_eq!(kind_of(&e), ErrorKind::InvalidArgument, "{f}");
        }
    }
}
