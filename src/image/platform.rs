//! Platforms as containerd's `platforms` package handles them: parse a specifier
//! (`linux`, `amd64`, `linux/arm64`, `linux/arm/v7`), normalise names (`x86_64` → `amd64`,
//! `aarch64` → `arm64` with variant `v8`, `armhf` → `arm/v7`, `macos` → `darwin`), format
//! (`linux/arm64/v8`), and match with the default fallbacks of `platforms.Only`: amd64 also
//! takes 386 (and amd64 vN takes lower vM), arm vN takes lower variants down to v5, arm64
//! takes arm v8 and below. The host default is linux/amd64 on x86-64.

use crate::errdefs::{err, ErrorKind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An OCI platform (the fields containerd compares, plus the two it carries along).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// GOARCH style: `amd64`, `arm64`, `arm`, `386`, `s390x`…
    pub architecture: String,
    /// GOOS style: `linux`, `windows`…
    pub os: String,
    /// `os.version` (Windows build).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    /// `os.features`.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant: `v8`, `v7`, `v3`…
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// os/arch/variant.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.to_owned(),
            ..Platform::default()
        }
    }

    /// The platform of this host, normalised (linux/amd64 on x86-64).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" => "ppc64",
            "riscv64" => "riscv64",
            other => other,
        };
        let p = Platform::new(std::env::consts::OS, arch, "");
        p.normalize()
    }

    /// Parse a specifier as `platforms.Parse` does.
    pub fn parse(specifier: &str) -> anyhow::Result<Platform> {
        if specifier.contains('*') {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!("{specifier:?}: wildcards not yet supported"),
            ));
        }
        let parts: Vec<&str> = specifier.split('/').collect();
        for part in &parts {
            let ok = !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
            if !ok {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{part:?} is an invalid component of {specifier:?}: platform specifier component must match \"^[A-Za-z0-9_-]+$\""
                    ),
                ));
            }
        }
        let host = Platform::host();
        let mut p = Platform::default();
        match parts.as_slice() {
            [one] => {
                p.os = normalize_os(one);
                if is_known_os(&p.os) {
                    p.architecture = host.architecture.clone();
                    p.variant = host.variant.clone();
                    if p.architecture == "arm" && p.variant == "v7" {
                        p.variant.clear();
                    }
                    return Ok(p);
                }
                (p.architecture, p.variant) = normalize_arch(one, "");
                if p.architecture == "arm" && p.variant == "v7" {
                    p.variant.clear();
                }
                if is_known_arch(&p.architecture) {
                    p.os = host.os;
                    return Ok(p);
                }
                Err(err(
                    ErrorKind::InvalidArgument,
                    format!("{specifier:?}: unknown operating system or architecture"),
                ))
            }
            [os, arch] => {
                p.os = normalize_os(os);
                (p.architecture, p.variant) = normalize_arch(arch, "");
                if p.architecture == "arm" && p.variant == "v7" {
                    p.variant.clear();
                }
                Ok(p)
            }
            [os, arch, variant] => {
                p.os = normalize_os(os);
                (p.architecture, p.variant) = normalize_arch(arch, variant);
                if p.architecture == "arm64" && p.variant.is_empty() {
                    p.variant = "v8".into();
                }
                Ok(p)
            }
            _ => Err(err(
                ErrorKind::InvalidArgument,
                format!("{specifier:?}: cannot parse platform specifier"),
            )),
        }
    }

    /// `platforms.Normalize`: canonical names; the deprecated os.version/os.features dropped.
    pub fn normalize(&self) -> Platform {
        let (architecture, variant) = normalize_arch(&self.architecture, &self.variant);
        Platform {
            os: normalize_os(&self.os),
            architecture,
            variant,
            os_version: String::new(),
            os_features: Vec::new(),
        }
    }

    /// From an oci-spec platform (a descriptor's `platform`). Note: oci-spec 0.7 names the
    /// field `os_version` in JSON instead of `os.version`, so Windows OS versions from
    /// registries are dropped there; parse into [`Platform`] directly where that matters.
    pub fn from_oci(p: &oci_spec::image::Platform) -> Platform {
        Platform {
            architecture: p.architecture().to_string(),
            os: p.os().to_string(),
            os_version: p.os_version().clone().unwrap_or_default(),
            os_features: p.os_features().clone().unwrap_or_default(),
            variant: p.variant().clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Platform {
    /// `platforms.Format`: `os/arch[/variant]`, `unknown` without an OS.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.os.is_empty() {
            return f.write_str("unknown");
        }
        let parts: Vec<&str> = [self.os.as_str(), &self.architecture, &self.variant]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        f.write_str(&parts.join("/"))
    }
}

fn normalize_os(os: &str) -> String {
    if os.is_empty() {
        return std::env::consts::OS.to_owned();
    }
    match os.to_lowercase().as_str() {
        "macos" => "darwin".into(),
        other => other.into(),
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_lowercase(), variant.to_lowercase());
    let (a, v): (&str, String) = match arch.as_str() {
        "i386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64",
            if variant == "v1" {
                String::new()
            } else {
                variant
            },
        ),
        "aarch64" | "arm64" => (
            "arm64",
            match variant.as_str() {
                "" | "8" => "v8".into(),
                _ => variant,
            },
        ),
        "armhf" => ("arm", "v7".into()),
        "armel" => ("arm", "v6".into()),
        "arm" => (
            "arm",
            match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        _ => return (arch, variant),
    };
    (a.to_owned(), v)
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
    )
}

fn is_known_arch(arch: &str) -> bool {
    matches!(
        arch,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

/// `platformVector`: the platform and what it also runs, best first.
fn vector(p: &Platform) -> Vec<Platform> {
    let mut out = vec![p.clone()];
    let version = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(n) = version(&p.variant).filter(|n| *n > 1) {
                for m in (1..n).rev() {
                    out.push(Platform {
                        variant: format!("v{m}"),
                        ..p.clone()
                    });
                }
            }
            out.push(Platform {
                architecture: "386".into(),
                variant: String::new(),
                ..p.clone()
            });
        }
        "arm" => {
            if let Some(n) = version(&p.variant).filter(|n| *n > 5) {
                for m in (5..n).rev() {
                    out.push(Platform {
                        variant: format!("v{m}"),
                        ..p.clone()
                    });
                }
            }
        }
        "arm64" => {
            let variant = if p.variant.is_empty() {
                "v8".to_owned()
            } else {
                p.variant.clone()
            };
            out.extend(vector(&Platform {
                architecture: "arm".into(),
                variant,
                ..p.clone()
            }));
        }
        _ => {}
    }
    out
}

/// Chooses among platforms: containerd's `MatchComparer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// `platforms.Only(p)` (or `Ordered`): these platforms, preferred in this order.
    Ordered(Vec<Platform>),
    /// `platforms.All` (`--all-platforms`).
    All,
}

impl Matcher {
    /// `platforms.Only`: `p` and what it runs (amd64 → 386, arm64 → arm/v8…v5).
    pub fn only(p: &Platform) -> Matcher {
        Matcher::Ordered(
            vector(&p.normalize())
                .iter()
                .map(Platform::normalize)
                .collect(),
        )
    }

    /// `platforms.OnlyStrict`: exactly `p` (normalised).
    pub fn only_strict(p: &Platform) -> Matcher {
        Matcher::Ordered(vec![p.normalize()])
    }

    /// `platforms.Default()`: `only(host)`.
    pub fn default_for_host() -> Matcher {
        Matcher::only(&Platform::host())
    }

    /// `platforms.Ordered(ps…)` from `--platform` flags (each parsed as a specifier), or the
    /// host default when there are none.
    pub fn from_specifiers(specs: &[&str]) -> anyhow::Result<Matcher> {
        if specs.is_empty() {
            return Ok(Matcher::default_for_host());
        }
        let mut ps = Vec::new();
        for s in specs {
            ps.push(Platform::parse(s)?.normalize());
        }
        Ok(Matcher::Ordered(ps))
    }

    fn rank(&self, p: &Platform) -> Option<usize> {
        match self {
            Matcher::All => Some(0),
            Matcher::Ordered(list) => {
                let n = p.normalize();
                list.iter().position(|m| {
                    m.os == n.os && m.architecture == n.architecture && m.variant == n.variant
                })
            }
        }
    }

    /// Whether `p` is wanted.
    pub fn matches(&self, p: &Platform) -> bool {
        self.rank(p).is_some()
    }

    /// `Less`: whether `a` is preferred over `b` (sort candidates with this).
    pub fn less(&self, a: &Platform, b: &Platform) -> bool {
        match (self.rank(a), self.rank(b)) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Indexes of `candidates` that match, best first (a stable sort as containerd's).
    pub fn select(&self, candidates: &[Platform]) -> Vec<usize> {
        let mut idx: Vec<(usize, usize)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.rank(p).map(|r| (r, i)))
            .collect();
        idx.sort();
        idx.into_iter().map(|(_, i)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::kind_of;

    #[test]
    fn parse_and_format_as_containerd() {
        // containerd platforms_test.go TestParseSelector (for a linux/amd64 host)
        let cases = [
            ("linux", "linux/amd64"),
            ("amd64", "linux/amd64"),
            ("x86_64", "linux/amd64"),
            ("x86-64", "linux/amd64"),
            ("i386", "linux/386"),
            ("linux/amd64", "linux/amd64"),
            ("Linux/x86_64", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/amd64/v1", "linux/amd64"),
            ("aarch64", "linux/arm64/v8"),
            ("arm64", "linux/arm64/v8"),
            ("linux/arm64", "linux/arm64/v8"),
            ("linux/arm64/v8", "linux/arm64/v8"),
            ("linux/aarch64/8", "linux/arm64/v8"),
            ("arm", "linux/arm"),
            ("armhf", "linux/arm"),
            ("armel", "linux/arm/v6"),
            ("linux/arm", "linux/arm"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/arm/v5", "linux/arm/v5"),
            ("windows/amd64", "windows/amd64"),
            ("macos/arm64", "darwin/arm64/v8"),
            ("darwin", "darwin/amd64"),
            ("linux/s390x", "linux/s390x"),
            ("linux/ppc64le", "linux/ppc64le"),
            ("linux/riscv64", "linux/riscv64"),
        ];
        for (input, want) in cases {
            let p = Platform::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.to_string(), want, "{input}");
        }
        for bad in [
            "",
            "linux/",
            "foo",
            "linux/amd64/v1/x",
            "linux/*",
            "linux/am d64",
            "/amd64",
            "linux/arm64/v8.2",
        ] {
            let e = Platform::parse(bad).expect_err(bad);
            assert_eq!(kind_of(&e), ErrorKind::InvalidArgument, "{bad}");
        }
        assert_eq!(Platform::default().to_string(), "unknown");
        assert_eq!(Platform::host().to_string(), "linux/amd64");
    }

    #[test]
    fn only_matches_fallbacks_in_order() {
        let p = |s: &str| Platform::parse(s).unwrap();
        let amd = Matcher::only(&p("linux/amd64"));
        assert!(amd.matches(&p("linux/amd64")));
        assert!(amd.matches(&p("linux/386")));
        assert!(!amd.matches(&p("linux/arm64")));
        assert!(!amd.matches(&p("windows/amd64")));
        assert!(
            !amd.matches(&p("linux/amd64/v2")),
            "a v2 image needs a v2 host"
        );
        assert!(amd.less(&p("linux/amd64"), &p("linux/386")));
        let v3 = Matcher::only(&p("linux/amd64/v3"));
        for ok in [
            "linux/amd64/v3",
            "linux/amd64/v2",
            "linux/amd64",
            "linux/386",
        ] {
            assert!(v3.matches(&p(ok)), "{ok}");
        }
        assert!(!v3.matches(&p("linux/amd64/v4")));
        let arm64 = Matcher::only(&p("linux/arm64"));
        for ok in [
            "linux/arm64",
            "linux/arm64/v8",
            "linux/arm/v8",
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/arm/v5",
        ] {
            assert!(arm64.matches(&p(ok)), "{ok}");
        }
        // an unnormalised descriptor platform (what indexes carry)
        assert!(arm64.matches(&Platform::new("linux", "aarch64", "")));
        let arm7 = Matcher::only(&p("linux/arm/v7"));
        assert!(arm7.matches(&p("linux/arm/v6")) && !arm7.matches(&p("linux/arm64")));
        let strict = Matcher::only_strict(&p("linux/amd64"));
        assert!(!strict.matches(&p("linux/386")));
        assert!(Matcher::All.matches(&p("windows/arm64")));
        // select: the index order of candidates, best first
        let cands = [p("linux/386"), p("linux/arm64"), p("linux/amd64")];
        assert_eq!(amd.select(&cands), vec![2, 0]);
        let m = Matcher::from_specifiers(&["linux/arm64", "linux/amd64"]).unwrap();
        assert_eq!(m.select(&cands), vec![1, 2]);
        assert_eq!(
            Matcher::from_specifiers(&[]).unwrap(),
            Matcher::default_for_host()
        );
    }

    #[test]
    fn serde_uses_oci_field_names() {
        let j = r#"{"architecture":"arm64","os":"linux","variant":"v8","os.version":"1"}"#;
        let p: Platform = serde_json::from_str(j).unwrap();
        assert_eq!(
            (p.os_version.as_str(), p.to_string().as_str()),
            ("1", "linux/arm64/v8")
        );
        // oci-spec 0.7 reads `os_version`, not the spec's `os.version`: it is lost there.
        let o: oci_spec::image::Platform = serde_json::from_str(j).unwrap();
        assert_eq!(Platform::from_oci(&o).to_string(), p.to_string());
    }
}
