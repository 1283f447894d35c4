//! Answering a registry's 401: remember per host what it asked for (`Basic` or `Bearer` with a
//! realm and service), then send credentials or a token for the request's scope. A host is
//! asked anonymously first, as containerd does; after one 401 the scheme is known and later
//! requests carry it from the start.

use anyhow::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::challenge::Challenge;
use super::credentials::Credentials;
use super::hosts::TlsSettings;
use super::token::{fetch_token, TokenCache, TokenKey};
use super::transport::Transport;

/// Credentials for a registry host, looked up when the host asks for them.
pub type CredentialSource = Arc<dyn Fn(&str) -> Option<Credentials> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostAuth {
    Basic,
    Bearer { realm: String, service: String },
}

pub struct Authorizer {
    credentials: CredentialSource,
    hosts: Mutex<HashMap<String, HostAuth>>,
    tokens: TokenCache,
}

/// The scope a request needs: `repository:NAME:pull` or `repository:NAME:pull,push`.
pub fn repository_scope(repository: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{repository}:{actions}")
}

impl Authorizer {
    pub fn new(credentials: CredentialSource) -> Authorizer {
        Authorizer {
            credentials,
            hosts: Mutex::new(HashMap::new()),
            tokens: TokenCache::default(),
        }
    }

    fn host_auth(&self, host: &str) -> Option<HostAuth> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.get(host).cloned()
    }

    /// The `Authorization` value for a request to `host` needing `scope`; `None` while the
    /// host has not asked. `refresh` skips the token cache (the last token was refused).
    pub fn authorization(
        &self,
        transport: &Transport,
        host: &str,
        tls: &TlsSettings,
        scope: &str,
        refresh: bool,
    ) -> Result<Option<String>> {
        match self.host_auth(host) {
            None => Ok(None),
            Some(HostAuth::Basic) => Ok((self.credentials)(host).map(|c| c.basic_header())),
            Some(HostAuth::Bearer { realm, service }) => {
                let key = TokenKey {
                    realm,
                    service,
                    scope: scope.to_string(),
                };
                if refresh {
                    self.tokens.remove(&key);
                } else if let Some(t) = self.tokens.get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let creds = (self.credentials)(host);
                let (token, lifetime) = fetch_token(transport, tls, &key, creds.as_ref())?;
                self.tokens.put(key, token.clone(), lifetime);
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Learn from a 401's challenges. True when a retry can do better: a Bearer realm, or
    /// Basic with credentials at hand.
    pub fn learn(&self, host: &str, challenges: &[Challenge]) -> bool {
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let learned =
            if let Some(c) = bearer.filter(|c| c.param("realm").is_some_and(|r| !r.is_empty())) {
                // The challenge's own `scope` names the request that failed; the scope is
                // computed per request instead, so one host entry serves every repository.
                HostAuth::Bearer {
                    realm: c.param("realm").unwrap_or_default().to_string(),
                    service: c.param("service").unwrap_or_default().to_string(),
                }
            } else if challenges.iter().any(|c| c.scheme == "basic") {
                if (self.credentials)(host).is_none() {
                    return false;
                }
                HostAuth::Basic
            } else {
                return false;
            };
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.insert(host.to_string(), learned);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::challenge::parse_challenges;
    use crate::registry::transport::RetryPolicy;

    #[test]
    fn learns_what_the_host_asks_for() {
        let transport = Transport::new(RetryPolicy::default(), "t".into());
        let tls = TlsSettings::default();
        let anonymous = Authorizer::new(Arc::new(|_: &str| None));
        // Basic without credentials: retrying cannot help.
        assert!(!anonymous.learn("h", &parse_challenges([r#"Basic realm="r""#])));
        assert_eq!(
            anonymous
                .authorization(&transport, "h", &tls, "s", false)
                .unwrap(),
            None
        );
        // A Bearer challenge without a realm is no challenge.
        assert!(!anonymous.learn("h", &parse_challenges(["Bearer service=x"])));

        let creds = Credentials::parse_user_flag("user:pass").unwrap();
        let with = Authorizer::new(Arc::new(move |h: &str| (h == "h").then(|| creds.clone())));
        assert!(with.learn("h", &parse_challenges([r#"Basic realm="r""#])));
        assert_eq!(
            with.authorization(&transport, "h", &tls, "s", false)
                .unwrap()
                .as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
        // Another host is asked anonymously until it asks.
        assert_eq!(
            with.authorization(&transport, "other", &tls, "s", false)
                .unwrap(),
            None
        );
        assert_eq!(repository_scope("a/b", true), "repository:a/b:pull,push");
    }
}
