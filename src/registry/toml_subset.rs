//! The part of TOML a containerd `hosts.toml` and `config.toml` use: `key = value` with
//! strings (basic and literal), booleans, integers, plain decimal floats (the GC scheduler's
//! `pause_threshold = 0.02` in `containerd config default`) and (nested, multi-line) arrays; `[table."quoted.key"]`
//! headers; comments. Written here rather than pulling the `toml` crate and its parser stack
//! into the binary for a file of a dozen keys. What it does not know (inline tables, dates,
//! multi-line strings, array tables) is a clear error, never a silent misread.

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Bool(bool),
    Integer(i64),
    Float(f64),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One `key = value` with the table it sits in (`["host", "https://m"]`) and its key path
/// (dotted keys split), in file order: order matters, hosts are tried as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub table: Vec<String>,
    pub key: Vec<String>,
    pub value: Value,
}

const MAX_INPUT: usize = 1 << 20;
const MAX_DEPTH: usize = 8;

pub fn parse(input: &str) -> Result<Vec<Entry>> {
    if input.len() > MAX_INPUT {
        bail!("TOML document larger than 1 MiB");
    }
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
        line: 1,
    };
    let mut table = Vec::new();
    let mut out = Vec::new();
    loop {
        p.skip_blank_and_comments();
        let Some(c) = p.peek() else { break };
        if c == b'[' {
            p.i += 1;
            if p.peek() == Some(b'[') {
                return Err(p.error("array tables ([[...]]) are not supported"));
            }
            table = p.key_path(b']')?;
            p.expect(b']')?;
        } else {
            let key = p.key_path(b'=')?;
            p.expect(b'=')?;
            p.skip_ws();
            let value = p.value(0)?;
            out.push(Entry {
                table: table.clone(),
                key,
                value,
            });
        }
        p.end_of_line()?;
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!("TOML line {}: {what}", self.line)
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_comment(&mut self) {
        if self.peek() == Some(b'#') {
            while self.peek().is_some_and(|c| c != b'\n') {
                self.i += 1;
            }
        }
    }
    fn skip_blank_and_comments(&mut self) {
        loop {
            self.skip_ws();
            self.skip_comment();
            match self.peek() {
                Some(b'\n' | b'\r') => {
                    self.bump();
                }
                _ => return,
            }
        }
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", c as char)))
        }
    }
    fn end_of_line(&mut self) -> Result<()> {
        self.skip_ws();
        self.skip_comment();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.bump();
                Ok(())
            }
            Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => {
                self.i += 1;
                self.bump();
                Ok(())
            }
            _ => Err(self.error("unexpected text after the value")),
        }
    }
    /// `a.b."c.d"` up to (not including) `end`.
    fn key_path(&mut self, end: u8) -> Result<Vec<String>> {
        let mut parts = Vec::new();
        loop {
            self.skip_ws();
            let part = match self.peek() {
                Some(b'"') => self.basic_string()?,
                Some(b'\'') => self.literal_string()?,
                Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                    {
                        self.i += 1;
                    }
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
                }
                _ => return Err(self.error("expected a key")),
            };
            parts.push(part);
            self.skip_ws();
            match self.peek() {
                Some(b'.') => self.i += 1,
                Some(c) if c == end => return Ok(parts),
                _ => return Err(self.error(&format!("expected '.' or '{}'", end as char))),
            }
        }
    }
    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'"') => {
                if self.s[self.i..].starts_with(b"\"\"\"") {
                    return Err(self.error("multi-line strings are not supported"));
                }
                Ok(Value::String(self.basic_string()?))
            }
            Some(b'\'') => {
                if self.s[self.i..].starts_with(b"'''") {
                    return Err(self.error("multi-line strings are not supported"));
                }
                Ok(Value::String(self.literal_string()?))
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.error("arrays nested too deep"));
                }
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_blank_and_comments();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_blank_and_comments();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err(self.error("expected ',' or ']' in an array")),
                    }
                }
            }
            Some(b'{') => Err(self.error("inline tables are not supported")),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.i;
                self.i += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'_') {
                    self.i += 1;
                }
                // A fraction or exponent makes it a float (`0.02`, `1e3`, `-1.5E-2`).
                let mut float = false;
                if self.peek() == Some(b'.')
                    && self.s.get(self.i + 1).is_some_and(|c| c.is_ascii_digit())
                {
                    float = true;
                    self.i += 1;
                    while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'_') {
                        self.i += 1;
                    }
                }
                if matches!(self.peek(), Some(b'e' | b'E')) {
                    float = true;
                    self.i += 1;
                    if matches!(self.peek(), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                    while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'_') {
                        self.i += 1;
                    }
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
                if float {
                    return text
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(Value::Float)
                        .ok_or_else(|| self.error("invalid or unsupported number"));
                }
                text.parse::<i64>()
                    .map(Value::Integer)
                    .map_err(|_| self.error("invalid or unsupported number"))
            }
            _ => Err(self.error("expected a value")),
        }
    }
    fn basic_string(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None | Some(b'\n') => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(b'"') => out.push(b'"'),
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'n') => out.push(b'\n'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b'b') => out.push(8),
                    Some(b'f') => out.push(12),
                    Some(u @ (b'u' | b'U')) => {
                        let n = if u == b'u' { 4 } else { 8 };
                        let hex = self.s.get(self.i..self.i + n).unwrap_or_default();
                        let c = std::str::from_utf8(hex)
                            .ok()
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.error("invalid unicode escape"))?;
                        self.i += n;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => return Err(self.error("invalid escape in a string")),
                },
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.error("string is not UTF-8"))
    }
    fn literal_string(&mut self) -> Result<String> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.bump() {
                None | Some(b'\n') => return Err(self.error("unterminated string")),
                Some(b'\'') => break,
                Some(_) => {}
            }
        }
        String::from_utf8(self.s[start..self.i - 1].to_vec())
            .map_err(|_| self.error("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.to_string())
    }

    #[test]
    fn reads_a_hosts_toml() {
        let doc = r#"
# a comment
server = "https://registry-1.docker.io"   # trailing comment

[host."https://mirror.example:5000/v2/x"]
  capabilities = ["pull",
     "resolve", # comment inside
  ]
  ca = '/etc/certs/m.pem'
  skip_verify = true
  client = [["/c.cert", "/c.key"], ["/c.pem", ""]]
  [host."https://mirror.example:5000/v2/x".header]
    x-custom = ["a", "b\"c"]
dial_timeout = -1_000
"#;
        let e = parse(doc).unwrap();
        assert_eq!(e[0].table, Vec::<String>::new());
        assert_eq!(e[0].key, ["server"]);
        assert_eq!(e[0].value, s("https://registry-1.docker.io"));
        assert_eq!(e[1].table, ["host", "https://mirror.example:5000/v2/x"]);
        assert_eq!(e[1].value, Value::Array(vec![s("pull"), s("resolve")]));
        assert_eq!(e[2].value, s("/etc/certs/m.pem"));
        assert_eq!(e[3].value, Value::Bool(true));
        assert_eq!(
            e[4].value,
            Value::Array(vec![
                Value::Array(vec![s("/c.cert"), s("/c.key")]),
                Value::Array(vec![s("/c.pem"), s("")])
            ])
        );
        assert_eq!(
            e[5].table,
            ["host", "https://mirror.example:5000/v2/x", "header"]
        );
        assert_eq!(e[5].key, ["x-custom"]);
        assert_eq!(e[5].value, Value::Array(vec![s("a"), s("b\"c")]));
        assert_eq!(e[6].value, Value::Integer(-1000));
    }

    #[test]
    fn reads_floats() {
        let e = parse("a = 0.02\nb = -1.5e-2\nc = 2E3\nd = 7\n").unwrap();
        let v: Vec<&Value> = e.iter().map(|e| &e.value).collect();
        assert_eq!(
            v,
            [
                &Value::Float(0.02),
                &Value::Float(-0.015),
                &Value::Float(2000.0),
                &Value::Integer(7)
            ]
        );
        assert!(parse("a = 1.").is_err());
        assert!(parse("a = 1e").is_err());
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for (doc, msg) in [
            ("a = {b = 1}", "inline tables"),
            ("[[x]]", "array tables"),
            ("a = \"\"\"x\"\"\"", "multi-line"),
            ("a = \"x", "unterminated"),
            ("a = 1 b", "unexpected text"),
            ("a = [1, 2", "expected"),
            ("= 1", "expected a key"),
            ("a = 1979-05-27", "unexpected text"),
            (
                &format!("a = {}1{}", "[".repeat(20), "]".repeat(20)),
                "too deep",
            ),
        ] {
            let err = parse(doc).unwrap_err().to_string();
            assert!(err.contains(msg), "{doc:?}: {err}");
        }
    }
}
