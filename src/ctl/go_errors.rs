//! Registry transport errors in the words ctr (Go's `net/http`) prints them: a request the
//! registry client reports as `HEAD http://h:p/v2/…: io: Connection refused (os error 111)`
//! reads `failed to do request: Head "http://h:p/v2/…": dial tcp h:p: connect: connection
//! refused`, as containerd's docker resolver and pusher wrap it.

const REFUSED: &str = ": io: Connection refused (os error 111)";

fn go_method(m: &str) -> Option<&'static str> {
    Some(match m {
        "HEAD" => "Head",
        "GET" => "Get",
        "PUT" => "Put",
        "POST" => "Post",
        "PATCH" => "Patch",
        "DELETE" => "Delete",
        _ => return None,
    })
}

/// `msg` with every refused registry request in Go's words; anything else unchanged.
pub fn go_request_errors(msg: &str) -> String {
    let Some(at) = msg.find(REFUSED) else {
        return msg.to_string();
    };
    let head = &msg[..at];
    let rest = &msg[at + REFUSED.len()..];
    // The request is the last "METHOD URL" before the marker.
    let Some(url_start) = head.rfind(' ') else {
        return msg.to_string();
    };
    let url = &head[url_start + 1..];
    let before = &head[..url_start];
    let (prefix, method) = match before.rfind(' ') {
        Some(i) => (&before[..=i], &before[i + 1..]),
        None => ("", before),
    };
    let Some(gm) = go_method(method) else {
        return msg.to_string();
    };
    let authority = url
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or(""))
        .unwrap_or("");
    format!(
        "{prefix}failed to do request: {gm} {url:?}: dial tcp {authority}: connect: connection refused{}",
        go_request_errors(rest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_requests_read_as_go_prints_them() {
        assert_eq!(
            go_request_errors(
                "failed to resolve reference \"127.0.0.1:1/b:latest\": HEAD http://127.0.0.1:1/v2/b/manifests/latest: io: Connection refused (os error 111)"
            ),
            "failed to resolve reference \"127.0.0.1:1/b:latest\": failed to do request: Head \"http://127.0.0.1:1/v2/b/manifests/latest\": dial tcp 127.0.0.1:1: connect: connection refused"
        );
        assert_eq!(
            go_request_errors("image \"x\": not found"),
            "image \"x\": not found"
        );
    }
}
