//! `events`: runc's JSON event stream: `stats` every interval, `oom` when the kernel
//! OOM-kills in the container; `--stats` prints one stats event and exits.

use super::id::ContainerId;
use super::state::State;
use super::status::Status;
use crate::linux::cgroups::OomEvent;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

fn emit<T: Serialize>(kind: &str, id: &str, data: Option<T>) -> Result<()> {
    let line = serde_json::to_string(&Event { kind, id, data })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .context("write event")
}

pub fn events(root: &Path, id: &ContainerId, stats_once: bool, interval: Duration) -> Result<()> {
    let st = State::load(root, id)?;
    if st.status(root) == Status::Stopped {
        bail!("container with id {id} is not running");
    }
    let cg = st.cgroup.as_ref().context("container has no cgroup")?;
    if stats_once {
        return emit("stats", id.as_str(), Some(cg.stats()?));
    }
    let mut oom = cg.oom_notifier().ok();
    loop {
        if !st.is_alive() {
            return Ok(());
        }
        let oom_ready = match &oom {
            Some(n) => {
                let mut fds = [nix::poll::PollFd::new(
                    n.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = u16::try_from(interval.as_millis()).unwrap_or(u16::MAX);
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap_or(0) > 0
            }
            None => {
                std::thread::sleep(interval);
                false
            }
        };
        if oom_ready {
            if let Some(n) = oom.as_mut() {
                match n.wait()? {
                    OomEvent::Oom => emit::<()>("oom", id.as_str(), None)?,
                    OomEvent::CgroupRemoved => return Ok(()),
                }
            }
            continue;
        }
        if !st.is_alive() {
            return Ok(());
        }
        if let Ok(s) = cg.stats() {
            emit("stats", id.as_str(), Some(s))?;
        }
    }
}

/// Go duration strings as runc's `--interval` takes them: "5s", "500ms", "1m", "1m30s".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    if s.is_empty() {
        bail!("invalid duration {s:?}");
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        num.clear();
        let secs = match unit.as_str() {
            "ns" => v / 1e9,
            "us" | "µs" => v / 1e6,
            "ms" => v / 1e3,
            "s" => v,
            "m" => v * 60.0,
            "h" => v * 3600.0,
            _ => bail!("invalid duration {s:?}: unknown unit {unit:?}"),
        };
        total += Duration::from_secs_f64(secs);
    }
    if !num.is_empty() {
        bail!("invalid duration {s:?}: missing unit");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("x").is_err());
    }
}
