//! `WWW-Authenticate` challenges (RFC 7235): a scheme and its parameters, several
//! challenges per header allowed. The registry answers 401 with `Bearer realm=..,service=..,
//! scope=..` (token flow) or `Basic realm=..`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased: `bearer`, `basic`.
    pub scheme: String,
    /// Parameter names lowercased, values unquoted.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse every challenge in the header values; what cannot be read is skipped (a registry's
/// odd header must not hide the challenge next to it).
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values {
        parse_one_header(v, &mut out);
    }
    out
}

fn parse_one_header(s: &str, out: &mut Vec<Challenge>) {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_ws_commas();
        let Some(scheme) = p.token() else { return };
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            p.skip_ws();
            let save = p.i;
            let Some(name) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                // Not `name=`: the start of the next challenge (or a token68, skipped).
                p.i = save;
                if ch.params.is_empty() && p.token68_follows() {
                    p.token68();
                }
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            ch.params.insert(name.to_ascii_lowercase(), value);
            p.skip_ws();
            if !p.eat(b',') {
                break;
            }
        }
        out.push(ch);
        if p.i >= p.s.len() {
            return;
        }
        // Guard against a byte the grammar has no use for: skip it and go on.
        if p.peek()
            .is_some_and(|c| !is_tchar(c) && c != b',' && !c.is_ascii_whitespace())
        {
            p.i += 1;
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c == b' ' || c == b'\t') {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while self
            .peek()
            .is_some_and(|c| c == b' ' || c == b'\t' || c == b',')
        {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| is_tchar(c) && c != b'=') {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn token68_follows(&self) -> bool {
        self.peek().is_some_and(|c| is_tchar(c) || c == b'=')
    }
    fn token68(&mut self) {
        while self.peek().is_some_and(|c| is_tchar(c) || c == b'=') {
            self.i += 1;
        }
    }
    fn quoted(&mut self) -> String {
        self.i += 1; // the opening quote
        let mut v = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                _ => v.push(c),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_params() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn several_challenges_and_escapes() {
        let c = parse_challenges([
            r#"Basic realm="Registry \"R\"", Bearer realm=https://t/token , service=s"#,
            "Negotiate abc==",
            "",
        ]);
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[0].param("realm"), Some("Registry \"R\""));
        assert_eq!(c[1].param("realm"), Some("https://t/token"));
        assert_eq!(c[1].param("service"), Some("s"));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "=",
            "\"",
            "Bearer realm=\"unterminated",
            ",,,",
            "Bearer ===",
            "\u{7f}x y=z",
        ] {
            let _ = parse_challenges([s]);
        }
    }
}
