//! Registry credentials: `--user user[:password]` (ctr's flag) and a docker `config.json`
//! (`auths.<registry>.auth` = base64 `user:password`, or `username` + `password`).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::base64;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    /// `None` when `--user` named only a user: the ctl asks for the password, as ctr does.
    pub password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret into a log or an error.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credentials {
    /// `user:password` or `user` (split at the first ':', as ctr does: a password may hold ':').
    pub fn parse_user_flag(s: &str) -> Result<Credentials> {
        let (user, pass) = match s.split_once(':') {
            Some((u, p)) => (u, Some(p.to_string())),
            None => (s, None),
        };
        if user.is_empty() {
            bail!("invalid --user {:?}: empty user name", redact(s));
        }
        Ok(Credentials {
            username: user.to_string(),
            password: pass,
        })
    }

    /// The `Authorization: Basic` value.
    pub fn basic_header(&self) -> String {
        let pair = format!(
            "{}:{}",
            self.username,
            self.password.as_deref().unwrap_or_default()
        );
        format!("Basic {}", base64::encode(pair.as_bytes()))
    }
}

fn redact(s: &str) -> String {
    match s.split_once(':') {
        Some((u, _)) => format!("{u}:<redacted>"),
        None => s.to_string(),
    }
}

/// The `auths` of a docker `config.json`, keyed by registry host.
#[derive(Debug, Default, Clone)]
pub struct DockerConfig {
    auths: BTreeMap<String, Credentials>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Docker Hub is filed under its v1 index URL; the registry host the client talks to is
/// another name of it.
const DOCKER_HUB_KEYS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(d).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
    }

    /// Load a config file; a missing file is an empty config (no credentials), as docker's.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        Self::parse(&data).with_context(|| format!("parse docker config {}", path.display()))
    }

    pub fn parse(data: &[u8]) -> Result<DockerConfig> {
        if data.len() > 4 << 20 {
            bail!("docker config is larger than 4 MiB");
        }
        let file: ConfigFile = serde_json::from_slice(data).context("invalid JSON")?;
        let mut auths = BTreeMap::new();
        for (key, entry) in file.auths {
            let creds = if let Some(a) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let raw = base64::decode(a)
                    .with_context(|| format!("auths.{key:?}.auth is not base64"))?;
                let raw = String::from_utf8(raw)
                    .with_context(|| format!("auths.{key:?}.auth is not UTF-8"))?;
                let Some((u, p)) = raw.split_once(':') else {
                    bail!("auths.{key:?}.auth is not user:password");
                };
                Credentials {
                    username: u.to_string(),
                    password: Some(p.to_string()),
                }
            } else if let Some(u) = entry.username {
                Credentials {
                    username: u,
                    password: entry.password,
                }
            } else {
                // An entry without secrets (a credential helper's, an identity token): not ours.
                continue;
            };
            auths.insert(normalize_key(&key), creds);
        }
        Ok(DockerConfig { auths })
    }

    /// The credentials for a registry host (`127.0.0.1:5000`, `docker.io`).
    pub fn lookup(&self, host: &str) -> Option<&Credentials> {
        let host = normalize_key(host);
        self.auths.get(&host)
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/v2/` → `h:5000`.
fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if DOCKER_HUB_KEYS.contains(&k.as_str()) {
        "docker.io".to_string()
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_flag() {
        let c = Credentials::parse_user_flag("alice:pa:ss").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.as_deref(), Some("pa:ss"));
        assert_eq!(Credentials::parse_user_flag("bob").unwrap().password, None);
        assert!(Credentials::parse_user_flag(":x").is_err());
        assert!(!format!("{c:?}").contains("pa:ss"));
        let c = Credentials::parse_user_flag("user:pass").unwrap();
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn docker_config_auths() {
        let cfg = DockerConfig::parse(
            br#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
                "127.0.0.1:5000": {"username": "u2", "password": "p2"},
                "http://mirror.example:8080/v2/": {"auth": "bTpwOng="},
                "helper.example": {}
            }, "credsStore": "desktop"}"#,
        )
        .unwrap();
        let hub = cfg.lookup("docker.io").unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_deref()),
            ("user", Some("pass"))
        );
        assert_eq!(cfg.lookup("registry-1.docker.io"), Some(hub));
        assert_eq!(cfg.lookup("127.0.0.1:5000").unwrap().username, "u2");
        assert_eq!(
            cfg.lookup("mirror.example:8080")
                .unwrap()
                .password
                .as_deref(),
            Some("p:x")
        );
        assert!(cfg.lookup("helper.example").is_none());
        assert!(DockerConfig::parse(br#"{"auths": {"h": {"auth": "!!"}}}"#).is_err());
        assert!(DockerConfig::parse(br#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#).is_err());
        assert!(DockerConfig::load(Path::new("/nonexistent/config.json"))
            .unwrap()
            .lookup("x")
            .is_none());
    }
}
