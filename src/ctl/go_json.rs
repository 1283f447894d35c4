//! A protobuf message as Go's `encoding/json` prints the gogo-generated struct ctr 1.6 holds
//! (`task metrics --format json`, `shim state`): keys are the proto field names in field
//! order, every field `omitempty` (zero numbers, false, "", empty lists and unset messages
//! left out), enums as numbers, 64-bit integers as plain numbers, bytes as base64.
//! Walks the message by protobuf reflection, so one function serves every message type.

use protobuf::reflect::{ReflectFieldRef, ReflectValueRef};
use protobuf::MessageDyn;
use serde_json::{Map, Value};

fn value(v: ReflectValueRef<'_>) -> Option<Value> {
    Some(match v {
        ReflectValueRef::U32(n) => Value::from(n),
        ReflectValueRef::U64(n) => Value::from(n),
        ReflectValueRef::I32(n) => Value::from(n),
        ReflectValueRef::I64(n) => Value::from(n),
        ReflectValueRef::F32(n) => Value::from(f64::from(n)),
        ReflectValueRef::F64(n) => Value::from(n),
        ReflectValueRef::Bool(b) => Value::from(b),
        ReflectValueRef::String(s) => Value::from(s),
        ReflectValueRef::Bytes(b) => Value::from(crate::registry::base64::encode(b)),
        ReflectValueRef::Enum(_, n) => Value::from(n),
        ReflectValueRef::Message(m) => message(&*m),
    })
}

const TIMESTAMP: &str = "google.protobuf.Timestamp";

/// A message's JSON; a Timestamp is a Go `time.Time` (gogo `stdtime`), printed RFC 3339.
fn message(m: &dyn MessageDyn) -> Value {
    let d = m.descriptor_dyn();
    if d.full_name() == TIMESTAMP {
        let mut secs = 0i64;
        let mut nanos = 0u32;
        for f in d.fields() {
            if let ReflectFieldRef::Optional(o) = f.get_reflect(m) {
                match (f.name(), o.value()) {
                    ("seconds", Some(ReflectValueRef::I64(n))) => secs = n,
                    ("nanos", Some(ReflectValueRef::I32(n))) => nanos = n.max(0) as u32,
                    _ => {}
                }
            }
        }
        return Value::from(crate::timefmt::format_unix(secs, nanos));
    }
    Value::Object(object(m))
}

/// Go's zero `time.Time`, which an unset stdtime field prints as.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        // An empty struct behind a pointer is still printed by Go ({}), a set message is
        // kept even when all its fields are zero.
        Value::Object(_) => false,
    }
}

fn object(m: &dyn MessageDyn) -> Map<String, Value> {
    let mut out = Map::new();
    for f in m.descriptor_dyn().fields() {
        let v = match f.get_reflect(m) {
            ReflectFieldRef::Optional(o) => match o.value() {
                Some(ReflectValueRef::Message(mm)) => Some(message(&*mm)),
                Some(v) => value(v).filter(|v| !is_empty(v)),
                None => {
                    let is_time = matches!(
                        f.runtime_field_type(),
                        protobuf::reflect::RuntimeFieldType::Singular(
                            protobuf::reflect::RuntimeType::Message(ref md)
                        ) if md.full_name() == TIMESTAMP
                    );
                    is_time.then(|| Value::from(ZERO_TIME))
                }
            },
            ReflectFieldRef::Repeated(r) => {
                let items: Vec<Value> = (0..r.len()).filter_map(|i| value(r.get(i))).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            ReflectFieldRef::Map(mp) => {
                let mut o = Map::new();
                for (k, v) in &mp {
                    let key = match k {
                        ReflectValueRef::String(s) => s.to_string(),
                        other => value(other).map(|v| v.to_string()).unwrap_or_default(),
                    };
                    if let Some(v) = value(v) {
                        o.insert(key, v);
                    }
                }
                (!o.is_empty()).then_some(Value::Object(o))
            }
        };
        if let Some(v) = v {
            out.insert(f.name().to_string(), v);
        }
    }
    out
}

/// The message as Go's `json.Marshal` of its gogo struct would structure it.
pub fn to_value(m: &dyn MessageDyn) -> Value {
    Value::Object(object(m))
}

/// `json.MarshalIndent(m, "", indent)`.
pub fn to_string_indent(m: &dyn MessageDyn, indent: &str) -> String {
    let v = to_value(m);
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(&v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::cgroups::metrics as v1;

    #[test]
    fn zero_fields_are_left_out_and_order_is_protos() {
        let mut m = v1::Metrics::new();
        let mut pids = v1::PidsStat::new();
        pids.current = 3;
        m.pids = protobuf::MessageField::some(pids);
        let mut cpu = v1::CPUStat::new();
        let mut usage = v1::CPUUsage::new();
        usage.total = 10;
        usage.per_cpu = vec![4, 6];
        cpu.usage = protobuf::MessageField::some(usage);
        m.cpu = protobuf::MessageField::some(cpu);
        assert_eq!(
            serde_json::to_string(&to_value(&m)).unwrap(),
            r#"{"pids":{"current":3},"cpu":{"usage":{"total":10,"per_cpu":[4,6]}}}"#
        );
        assert_eq!(crate::timefmt::format_unix(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            crate::timefmt::format_unix(1_798_761_600, 120_000_000),
            "2027-01-01T00:00:00.12Z"
        );
        assert_eq!(crate::timefmt::format_unix(-62135596800, 0), ZERO_TIME);
        assert!(to_string_indent(&m, "  ").starts_with("{\n  \"pids\": {\n    \"current\": 3"));
    }
}
