//! The typed printers against a walk of the same message by protobuf reflection (the
//! printer ocibox had before; reflection stays out of the binary, in the tests only), on
//! messages with every field set, and on empty ones.

use super::*;
use containerd_shim_protos::api::StateResponse;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use protobuf::reflect::{
    ReflectFieldRef, ReflectValueBox, ReflectValueRef, RuntimeFieldType, RuntimeType,
};
use protobuf::{MessageDyn, MessageFull};
use serde_json::Map;

const TIMESTAMP: &str = "google.protobuf.Timestamp";

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        v => is_empty_scalar(v),
    }
}

fn oracle_value(v: ReflectValueRef<'_>) -> Value {
    match v {
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
        ReflectValueRef::Message(m) => oracle_message(&*m),
    }
}

fn oracle_message(m: &dyn MessageDyn) -> Value {
    let d = m.descriptor_dyn();
    if d.full_name() == TIMESTAMP {
        let (mut secs, mut nanos) = (0i64, 0u32);
        for f in d.fields() {
            match (f.name(), f.get_singular(m)) {
                ("seconds", Some(ReflectValueRef::I64(n))) => secs = n,
                ("nanos", Some(ReflectValueRef::I32(n))) => nanos = n.max(0) as u32,
                _ => {}
            }
        }
        return Value::from(crate::timefmt::format_unix(secs, nanos));
    }
    let mut out = Map::new();
    for f in d.fields() {
        let v = match f.get_reflect(m) {
            ReflectFieldRef::Optional(o) => match o.value() {
                Some(ReflectValueRef::Message(mm)) => Some(oracle_message(&*mm)),
                Some(v) => Some(oracle_value(v)).filter(|v| !is_empty(v)),
                None => {
                    let is_time = matches!(
                        f.runtime_field_type(),
                        RuntimeFieldType::Singular(RuntimeType::Message(ref md))
                            if md.full_name() == TIMESTAMP
                    );
                    is_time.then(|| Value::from(ZERO_TIME))
                }
            },
            ReflectFieldRef::Repeated(r) => {
                let items: Vec<Value> = (0..r.len()).map(|i| oracle_value(r.get(i))).collect();
                (!items.is_empty()).then_some(Value::Array(items))
            }
            ReflectFieldRef::Map(_) => panic!("no printed message has a map field"),
        };
        if let Some(v) = v {
            out.insert(f.name().to_string(), v);
        }
    }
    Value::Object(out)
}

/// A distinct non-zero value for each scalar (so a field printed under another's name
/// shows), zero for `zero`.
fn sample(t: &RuntimeType, n: &mut u32, zero: bool) -> ReflectValueBox {
    *n += 1;
    let k = if zero { 0 } else { *n };
    match t {
        RuntimeType::U32 => ReflectValueBox::U32(k),
        RuntimeType::U64 => ReflectValueBox::U64(u64::from(k) << 33 | u64::from(k)),
        RuntimeType::I32 => ReflectValueBox::I32(k as i32),
        RuntimeType::I64 => ReflectValueBox::I64(i64::from(k) * 1_000_003),
        RuntimeType::F64 => ReflectValueBox::F64(f64::from(k) + 0.25),
        RuntimeType::Bool => ReflectValueBox::Bool(!zero),
        RuntimeType::String => {
            ReflectValueBox::String(if zero { String::new() } else { format!("s{k}") })
        }
        RuntimeType::Enum(e) => ReflectValueBox::Enum(e.clone(), (k % 5) as i32),
        RuntimeType::Message(md) => {
            let mut m = md.new_instance();
            fill(&mut *m, n);
            ReflectValueBox::Message(m)
        }
        other => panic!("no printed message has a {other:?} field"),
    }
}

/// Every field set, recursively; every list with a zero item and a set one.
fn fill(m: &mut dyn MessageDyn, n: &mut u32) {
    let d = m.descriptor_dyn();
    if d.full_name() == TIMESTAMP {
        *n += 1;
        let f = d.field_by_name("seconds").unwrap();
        f.set_singular_field(m, ReflectValueBox::I64(1_700_000_000 + i64::from(*n)));
        let f = d.field_by_name("nanos").unwrap();
        f.set_singular_field(m, ReflectValueBox::I32(120_000_000 + *n as i32));
        return;
    }
    for f in d.fields() {
        match f.runtime_field_type() {
            RuntimeFieldType::Singular(RuntimeType::Message(_)) => fill(f.mut_message(m), n),
            RuntimeFieldType::Singular(t) => {
                let v = sample(&t, n, false);
                f.set_singular_field(m, v);
            }
            RuntimeFieldType::Repeated(t) => {
                let zero = sample(&t, n, true);
                let set = sample(&t, n, false);
                let mut r = f.mut_repeated(m);
                r.push(zero);
                r.push(set);
            }
            RuntimeFieldType::Map(..) => panic!("no printed message has a map field"),
        }
    }
}

/// The JSON text (a `Value`'s own equality ignores the order of keys).
fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

fn check<M: MessageFull + GoJson>() {
    let empty = M::new();
    assert_eq!(
        text(&empty.json()),
        text(&oracle_message(&empty)),
        "{} empty",
        M::NAME
    );
    let mut full = M::new();
    fill(&mut full, &mut 0);
    let want = oracle_message(&full);
    assert_eq!(
        text(&full.json()),
        text(&want),
        "{} with every field set",
        M::NAME
    );
    // every field of the message made it into the output
    let fields = M::descriptor().fields().count();
    assert_eq!(want.as_object().unwrap().len(), fields, "{}", M::NAME);
}

#[test]
fn every_printed_message_matches_the_reflection_walk() {
    check::<v1::Metrics>();
    check::<v2::Metrics>();
    check::<StateResponse>();
}

#[test]
fn zero_fields_are_left_out_and_order_is_protos() {
    let mut m = v1::Metrics::new();
    let mut pids = v1::PidsStat::new();
    pids.current = 3;
    m.pids = protobuf::MessageField::some(pids);
    let mut cpu = v1::CPUStat::new();
    let mut usage = v1::CPUUsage::new();
    usage.total = 10;
    usage.per_cpu = vec![4, 0, 6];
    cpu.usage = protobuf::MessageField::some(usage);
    cpu.throttling = protobuf::MessageField::some(v1::Throttle::new());
    m.cpu = protobuf::MessageField::some(cpu);
    assert_eq!(
        serde_json::to_string(&m.json()).unwrap(),
        r#"{"pids":{"current":3},"cpu":{"usage":{"total":10,"per_cpu":[4,0,6]},"throttling":{}}}"#
    );
    assert_eq!(text(&oracle_message(&m)), text(&m.json()));
    assert_eq!(crate::timefmt::format_unix(0, 0), "1970-01-01T00:00:00Z");
    assert_eq!(
        crate::timefmt::format_unix(1_798_761_600, 120_000_000),
        "2027-01-01T00:00:00.12Z"
    );
    assert_eq!(crate::timefmt::format_unix(-62135596800, 0), ZERO_TIME);
    assert!(to_string_indent(&m, "  ").starts_with("{\n  \"pids\": {\n    \"current\": 3"));
}

#[test]
fn an_unset_time_is_gos_zero_time_and_a_set_one_rfc3339() {
    let mut s = StateResponse::new();
    s.pid = 7;
    assert_eq!(
        serde_json::to_string(&s.json()).unwrap(),
        r#"{"pid":7,"exited_at":"0001-01-01T00:00:00Z"}"#
    );
    let mut t = Timestamp::new();
    t.seconds = 1_798_761_600;
    t.nanos = 5;
    s.exited_at = protobuf::MessageField::some(t);
    assert_eq!(
        serde_json::to_string(&s.json()).unwrap(),
        r#"{"pid":7,"exited_at":"2027-01-01T00:00:00.000000005Z"}"#
    );
}
