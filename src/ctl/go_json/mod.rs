//! A protobuf message as Go's `encoding/json` prints the gogo-generated struct ctr 1.6 holds
//! (`task metrics --format json`, `shim state`): keys are the proto field names in field
//! order, every field `omitempty` (zero numbers, false, "", empty lists and unset messages
//! left out), enums as numbers, 64-bit integers as plain numbers, a Timestamp as Go's
//! `time.Time` (gogo `stdtime`: RFC 3339, and Go's zero time when unset).
//!
//! Typed: [`GoJson`] is implemented for the scalars here and for each printed message by
//! the field lists in [`messages`]. Walking the messages by protobuf reflection would serve
//! every type with one function, but it links rust-protobuf's descriptors and reflection
//! runtime into the binary; the tests keep that walker as the oracle the field lists are
//! checked against.

mod messages;

use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::{Enum, EnumOrUnknown, MessageField};
use serde_json::Value;

/// A value as Go's `json.Marshal` prints it, as a struct field or a list item.
pub trait GoJson {
    /// What an unset message field of this type prints (`omitempty` never omits a struct
    /// value, so a gogo `stdtime` field prints Go's zero time); `None`: the field is left out.
    const UNSET: Option<&'static str> = None;
    /// The value.
    fn json(&self) -> Value;
    /// `omitempty` leaves this field out.
    fn omit(&self) -> bool;
}

/// Go's zero `time.Time`, which an unset stdtime field prints as.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What `omitempty` leaves out among the scalars: zero numbers, false, "". (A float that
/// JSON cannot hold is null, and left out too.)
fn is_empty_scalar(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl GoJson for $t {
            fn json(&self) -> Value {
                Value::from(self.clone())
            }
            fn omit(&self) -> bool {
                is_empty_scalar(&self.json())
            }
        }
    )*};
}
scalar!(u32, u64, i32, i64, f64, bool, String);

impl<E: Enum> GoJson for EnumOrUnknown<E> {
    fn json(&self) -> Value {
        Value::from(self.value())
    }
    fn omit(&self) -> bool {
        self.value() == 0
    }
}

/// A list's items are printed whatever their value; an empty list is left out.
impl<T: GoJson> GoJson for Vec<T> {
    fn json(&self) -> Value {
        Value::Array(self.iter().map(GoJson::json).collect())
    }
    fn omit(&self) -> bool {
        self.is_empty()
    }
}

/// A set message is printed even when all its fields are zero (Go prints `{}` for a
/// pointer to an empty struct).
impl<T: GoJson> GoJson for MessageField<T> {
    fn json(&self) -> Value {
        match self.as_ref() {
            Some(m) => m.json(),
            None => T::UNSET.map_or(Value::Null, Value::from),
        }
    }
    fn omit(&self) -> bool {
        self.is_none() && T::UNSET.is_none()
    }
}

impl GoJson for Timestamp {
    const UNSET: Option<&'static str> = Some(ZERO_TIME);
    fn json(&self) -> Value {
        Value::from(crate::timefmt::format_unix(
            self.seconds,
            self.nanos.max(0) as u32,
        ))
    }
    fn omit(&self) -> bool {
        false
    }
}

/// `json.MarshalIndent(m, "", indent)`.
pub fn to_string_indent(m: &impl GoJson, indent: &str) -> String {
    let v = m.json();
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(&v, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests;
