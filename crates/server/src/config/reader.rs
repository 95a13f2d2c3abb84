//! Reads the merged configuration tree into the settings types, and says in plain words what
//! is wrong: a setting path, what was found and what is expected. Unknown keys are collected
//! (with the nearest known key) instead of stopping the read; the types' own field and value
//! lists come from serde, so the suggestions cannot drift from the settings.

use super::suggest::nearest;
use config::{Value, ValueKind};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

/// One step of a setting path: a table key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Renders `federated_login.providers.google.preset`, `account_linking.match_by[1]`.
pub fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Why a value could not be read, without the path (the path travels beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A required setting of a table is absent.
    Missing(&'static str),
    /// A value outside a fixed list.
    NotOneOf {
        found: String,
        expected: &'static [&'static str],
    },
    /// Wrong kind of value (`"eighty"` for a port).
    Kind { found: String, expected: String },
    /// Any other sentence (from a type's own check, e.g. an id).
    Other(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(_) => write!(f, "required"),
            Problem::NotOneOf { found, expected } => {
                write!(f, "{found:?}: expected one of {}", expected.join(", "))?;
                if let Some(near) = nearest(found, expected.iter().copied()) {
                    write!(f, "; did you mean {near:?}?")?;
                }
                Ok(())
            }
            Problem::Kind { found, expected } => write!(f, "{found}: expected {expected}"),
            Problem::Other(s) => write!(f, "{s}"),
        }
    }
}

/// A problem at a path. The path grows as the error travels up the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Outermost segment first.
    pub path: Vec<Segment>,
    pub problem: Problem,
}

impl ReadError {
    fn new(problem: Problem) -> Self {
        Self {
            path: Vec::new(),
            problem,
        }
    }

    fn at(mut self, segment: Segment) -> Self {
        self.path.insert(0, segment);
        self
    }

    /// The setting the operator must change: for a missing setting, the setting itself.
    pub fn setting(&self) -> String {
        let mut path = self.path.clone();
        if let Problem::Missing(field) = self.problem {
            path.push(Segment::Key(field.to_owned()));
        }
        render(&path)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting(), self.problem)
    }
}

impl std::error::Error for ReadError {}

impl de::Error for ReadError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(Problem::Other(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::new(Problem::Kind {
            found: found(&unexp),
            expected: plain_expected(&exp.to_string()),
        })
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(Problem::NotOneOf {
            found: variant.to_owned(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Self::new(Problem::Missing(field))
    }
}

fn found(unexp: &de::Unexpected<'_>) -> String {
    match unexp {
        de::Unexpected::Str(s) => format!("{s:?}"),
        de::Unexpected::Unsigned(n) => n.to_string(),
        de::Unexpected::Signed(n) => n.to_string(),
        de::Unexpected::Float(n) => n.to_string(),
        de::Unexpected::Bool(b) => b.to_string(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Map => "a table".into(),
        de::Unexpected::Unit => "nothing".into(),
        other => other.to_string(),
    }
}

/// serde's names for types (`u16`, `struct ServerSettings`) in an operator's words.
fn plain_expected(exp: &str) -> String {
    let whole = |max: &str| format!("a whole number from 0 to {max}");
    match exp {
        "u8" => whole("255"),
        "u16" => whole("65535"),
        "u32" => whole("4294967295"),
        "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a string" | "a character" => "a string".into(),
        e if e.starts_with("struct ") || e.starts_with("a map") => "a table".into(),
        e if e.starts_with("enum ") => "one of the listed values".into(),
        e => e.into(),
    }
}

/// Reads `value`, sending each key no setting has to `unknown` (its path and the nearest
/// known key).
pub fn read<T: de::DeserializeOwned>(
    value: Value,
    unknown: &RefCell<Vec<(Vec<Segment>, Option<&'static str>)>>,
) -> Result<T, ReadError> {
    T::deserialize(Reader {
        value,
        path: Vec::new(),
        unknown,
    })
}

struct Reader<'u> {
    value: Value,
    path: Vec<Segment>,
    unknown: &'u RefCell<Vec<(Vec<Segment>, Option<&'static str>)>>,
}

impl Reader<'_> {
    fn text(&self) -> Option<&str> {
        match &self.value.kind {
            ValueKind::String(s) => Some(s.trim()),
            _ => None,
        }
    }
}

/// Table entries in a fixed order, so the same file always gives the same report.
fn sorted(table: config::Map<String, Value>) -> Vec<(String, Value)> {
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

macro_rules! number {
    ($method:ident, $ty:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
            // The environment gives text; "9090" is a port there.
            if let Some(n) = self.text().and_then(|s| s.parse::<$ty>().ok()) {
                return visitor.$visit(n);
            }
            self.deserialize_any(visitor)
        }
    };
}

impl<'de> de::Deserializer<'de> for Reader<'_> {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        let unknown = self.unknown;
        let path = self.path.clone();
        match self.value.kind {
            ValueKind::Nil => visitor.visit_unit(),
            ValueKind::Boolean(b) => visitor.visit_bool(b),
            ValueKind::I64(n) => visitor.visit_i64(n),
            ValueKind::I128(n) => visitor.visit_i128(n),
            ValueKind::U64(n) => visitor.visit_u64(n),
            ValueKind::U128(n) => visitor.visit_u128(n),
            ValueKind::Float(n) => visitor.visit_f64(n),
            ValueKind::String(s) => visitor.visit_string(s),
            ValueKind::Array(items) => visitor.visit_seq(Seq {
                items: items.into_iter().enumerate(),
                path,
                unknown,
            }),
            ValueKind::Table(table) => visitor.visit_map(Table {
                entries: sorted(table).into_iter(),
                pending: None,
                path,
                unknown,
            }),
        }
    }

    number!(deserialize_u8, u8, visit_u8);
    number!(deserialize_u16, u16, visit_u16);
    number!(deserialize_u32, u32, visit_u32);
    number!(deserialize_u64, u64, visit_u64);
    number!(deserialize_i8, i8, visit_i8);
    number!(deserialize_i16, i16, visit_i16);
    number!(deserialize_i32, i32, visit_i32);
    number!(deserialize_i64, i64, visit_i64);
    number!(deserialize_f32, f32, visit_f32);
    number!(deserialize_f64, f64, visit_f64);

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        // The words the configuration loader has always taken from the environment.
        match self.text().map(str::to_lowercase).as_deref() {
            Some("true" | "yes" | "on" | "1") => visitor.visit_bool(true),
            Some("false" | "no" | "off" | "0") => visitor.visit_bool(false),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        // A number or boolean where text is expected is read as its text (`client_id = 1234`).
        match self.value.kind {
            ValueKind::Boolean(b) => visitor.visit_string(b.to_string()),
            ValueKind::I64(n) => visitor.visit_string(n.to_string()),
            ValueKind::U64(n) => visitor.visit_string(n.to_string()),
            ValueKind::Float(n) => visitor.visit_string(n.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ReadError> {
        match self.value.kind {
            ValueKind::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        let ValueKind::Table(table) = self.value.kind else {
            return self.deserialize_any(visitor);
        };
        let mut known = config::Map::new();
        for (key, value) in table {
            if fields.contains(&key.as_str()) {
                known.insert(key, value);
            } else {
                let mut path = self.path.clone();
                let near = nearest(&key, fields.iter().copied());
                path.push(Segment::Key(key));
                self.unknown.borrow_mut().push((path, near));
            }
        }
        visitor.visit_map(Table {
            entries: sorted(known).into_iter(),
            pending: None,
            path: self.path,
            unknown: self.unknown,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ReadError> {
        match self.text() {
            Some(s) if variants.contains(&s) => {
                visitor.visit_enum(s.to_owned().into_deserializer())
            }
            Some(s) => Err(de::Error::unknown_variant(s, variants)),
            None => Err(ReadError::new(Problem::NotOneOf {
                found: describe(&self.value.kind),
                expected: variants,
            })),
        }
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

fn describe(kind: &ValueKind) -> String {
    match kind {
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "a list".into(),
        ValueKind::Nil => "nothing".into(),
        ValueKind::Boolean(b) => b.to_string(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(n) => n.to_string(),
        ValueKind::String(s) => format!("{s:?}"),
    }
}

struct Seq<'u> {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: Vec<Segment>,
    unknown: &'u RefCell<Vec<(Vec<Segment>, Option<&'static str>)>>,
}

impl<'de> de::SeqAccess<'de> for Seq<'_> {
    type Error = ReadError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ReadError> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        let mut path = self.path.clone();
        path.push(Segment::Index(i));
        seed.deserialize(Reader {
            value,
            path,
            unknown: self.unknown,
        })
        .map(Some)
        .map_err(|e| e.at(Segment::Index(i)))
    }
}

struct Table<'u> {
    entries: std::vec::IntoIter<(String, Value)>,
    pending: Option<(String, Value)>,
    path: Vec<Segment>,
    unknown: &'u RefCell<Vec<(Vec<Segment>, Option<&'static str>)>>,
}

impl<'de> de::MapAccess<'de> for Table<'_> {
    type Error = ReadError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ReadError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed
            .deserialize(key.clone().into_deserializer())
            .map_err(|e: ReadError| e.at(Segment::Key(key.clone())))?;
        self.pending = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ReadError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("a value without its key"));
        };
        let mut path = self.path.clone();
        path.push(Segment::Key(key.clone()));
        seed.deserialize(Reader {
            value,
            path,
            unknown: self.unknown,
        })
        .map_err(|e| e.at(Segment::Key(key)))
    }
}
