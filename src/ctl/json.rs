//! JSON as Go's `json.MarshalIndent(v, "", "    ")` writes it (ctr's `PrintAsJSON`): four
//! spaces, keys in the order given, `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`…
//! (Go's HTML-safe default).

use serde::Serialize;

/// `v` as ctr prints it, without the trailing newline.
pub fn indent<T: Serialize>(v: &T) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser)?;
    let s = String::from_utf8(buf)?;
    // These characters only ever appear inside strings in JSON text, so replacing them
    // everywhere escapes exactly the strings Go would.
    Ok(s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn indents_and_escapes_as_go() {
        let v = serde_json::json!({"Name": "a<b>&c", "List": [], "Map": {}});
        assert_eq!(
            super::indent(&v).unwrap(),
            "{\n    \"Name\": \"a\\u003cb\\u003e\\u0026c\",\n    \"List\": [],\n    \"Map\": {}\n}"
        );
    }
}
