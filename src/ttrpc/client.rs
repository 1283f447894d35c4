//! A ttrpc client that reconnects: the connection is opened on first use, dropped when a
//! call fails for transport reasons (the peer restarted), and opened again on the next one.

use std::time::{Duration, Instant};

use containerd_shim_protos::ttrpc::{self, Client};

/// First and longest wait between attempts.
const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(2);

pub struct ReconnectingClient {
    /// `unix:///path`.
    address: String,
    client: Option<Client>,
}

impl ReconnectingClient {
    /// `address`: a socket path, with or without `unix://`.
    pub fn new(address: &str) -> ReconnectingClient {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        ReconnectingClient {
            address: format!("unix://{path}"),
            client: None,
        }
    }

    /// The connection, opened if need be; None while the peer is not there.
    pub fn get(&mut self) -> Option<&Client> {
        if self.client.is_none() {
            self.client = Client::connect(&self.address).ok();
        }
        self.client.as_ref()
    }

    /// Closes the connection (its threads end); says whether there was one.
    pub fn disconnect(&mut self) -> bool {
        self.client.take().is_some()
    }

    /// Calls `f` until the peer answers (success or an error status, which retrying will
    /// not change), reconnecting with backoff while it is away, for at most `retry_for`.
    /// None: the peer never answered in time.
    pub fn call_with_retry<T>(
        &mut self,
        retry_for: Duration,
        mut f: impl FnMut(&Client) -> ttrpc::Result<T>,
    ) -> Option<ttrpc::Result<T>> {
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            if let Some(c) = self.get() {
                match f(c) {
                    Ok(v) => return Some(Ok(v)),
                    Err(e @ ttrpc::Error::RpcStatus(_)) => return Some(Err(e)),
                    Err(_) => self.client = None,
                }
            }
            if started.elapsed() > retry_for {
                return None;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_DELAY);
        }
    }
}
