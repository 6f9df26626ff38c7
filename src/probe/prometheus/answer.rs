//! Prometheus' JSON answers (`/api/v1/query`, `/api/v1/query_range`),
//! read without holding what a metric does not use.
//!
//! A metric needs one number, or one series of numbers: so only the first
//! series of an answer is kept, without its labels, and the others are
//! counted and skipped. Counting stops past `prometheus.max_series`, and
//! the answer is then an error that says to aggregate the query. What is
//! read is at most `prometheus.max_response_bytes` (`request.rs`), so a
//! query that forgot its `sum()` costs a bounded buffer, never the whole
//! answer parsed into memory.
//!
//! The envelope (API documentation, "Format overview"):
//! `{"status": "success"|"error", "data": {"resultType": ..., "result":
//! ...}, "errorType": ..., "error": ..., "warnings": [...]}`. Sample values
//! are strings, `"NaN"`, `"+Inf"` and `"-Inf"` included. Keys may come in
//! any order; unknown ones are skipped.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

/// What Prometheus answered, reduced to what a metric can use.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// `status: success`.
    Success(Data),
    /// `status: error`, with Prometheus' own words.
    Failure {
        /// `errorType`, such as `bad_data` or `timeout`.
        error_type: String,
        /// `error`, such as `parse error: ...`.
        message: String,
    },
}

/// A successful answer's `data`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data {
    /// `resultType: scalar`: its value.
    Scalar(f64),
    /// `resultType: vector`: an instant query's series.
    Vector(Series),
    /// `resultType: matrix`: a range query's series.
    Matrix(Series),
    /// `resultType: string`, or one rollguard does not know.
    Other(String),
}

/// The series of an answer: how many, and the first one's samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Series {
    /// How many series the answer holds (at most `max_series`).
    pub(super) count: usize,
    /// The first series' samples as (Unix seconds, value); one for a
    /// vector.
    pub(super) first: Vec<(f64, f64)>,
    /// Whether the first series holds native histograms, which are not
    /// numbers, instead of samples.
    pub(super) histogram: bool,
}

/// Why a body is not an answer rollguard can use.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Unusable {
    /// More series than `max_series` (the number).
    TooManySeries(usize),
    /// Not the API's JSON: why, in serde's words.
    Malformed(String),
}

/// Reads an API answer, counting at most `max_series` series.
pub(super) fn parse(body: &[u8], max_series: usize) -> Result<Reply, Unusable> {
    let over = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let envelope = EnvelopeSeed {
        max_series,
        over: &over,
    }
    .deserialize(&mut deserializer)
    .and_then(|envelope| deserializer.end().map(|()| envelope));
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(_) if over.get() => return Err(Unusable::TooManySeries(max_series)),
        Err(error) => return Err(Unusable::Malformed(error.to_string())),
    };
    match envelope.status.as_deref() {
        Some("success") => {
            let (kind, result) = envelope.data.ok_or_else(|| missing("data"))?;
            let kind = kind.ok_or_else(|| missing("data.resultType"))?;
            let result = result.ok_or_else(|| missing("data.result"))?;
            Ok(Reply::Success(match (kind.as_str(), result) {
                ("scalar", Result_::Scalar(value)) => Data::Scalar(value),
                ("vector", Result_::Series(series)) => Data::Vector(series),
                ("matrix", Result_::Series(series)) => Data::Matrix(series),
                ("scalar" | "vector" | "matrix", _) => {
                    return Err(Unusable::Malformed(format!(
                        "data.result does not match resultType {kind:?}"
                    )));
                }
                _ => Data::Other(kind),
            }))
        }
        Some("error") => Ok(Reply::Failure {
            error_type: envelope.error_type.unwrap_or_default(),
            message: envelope.error.unwrap_or_default(),
        }),
        Some(other) => Err(Unusable::Malformed(format!("unknown status {other:?}"))),
        None => Err(missing("status")),
    }
}

/// The one number a query's answer stands for: `None` for no data (an
/// empty vector, NaN, ±Inf), an error for anything that is not one number.
pub(super) fn single_value(data: &Data) -> Result<Option<f64>, String> {
    let finite = |v: f64| v.is_finite().then_some(v);
    match data {
        Data::Scalar(value) => Ok(finite(*value)),
        Data::Vector(series) => match series.count {
            0 => Ok(None),
            1 if series.histogram => Err(HISTOGRAMS.to_owned()),
            1 => Ok(series.first.first().and_then(|(_, v)| finite(*v))),
            many => Err(too_many(many)),
        },
        Data::Matrix(_) => {
            Err("query returns a range vector; wrap it in a function such as rate()".to_owned())
        }
        Data::Other(kind) => Err(format!("query returns a {kind}, not a number")),
    }
}

/// A range query's one series as finite values by timestamp (ms); an
/// instant answer is one point.
pub(super) fn points(data: &Data) -> Result<BTreeMap<i64, f64>, String> {
    match data {
        Data::Matrix(series) => match series.count {
            0 => Ok(BTreeMap::new()),
            1 if series.histogram => Err(HISTOGRAMS.to_owned()),
            1 => Ok(series
                .first
                .iter()
                .filter(|(_, v)| v.is_finite())
                .map(|(at, v)| ((at * 1000.0).round() as i64, *v))
                .collect()),
            many => Err(too_many(many)),
        },
        other => single_value(other).map(|v| v.into_iter().map(|v| (0, v)).collect()),
    }
}

/// Why native histograms cannot be judged.
const HISTOGRAMS: &str = "query returns native histograms, not numbers; \
    reduce them with histogram_quantile(), histogram_count() or histogram_sum()";

/// Why several series (but no more than `max_series`) cannot be judged.
fn too_many(count: usize) -> String {
    format!("query returns {count} series; aggregate it (sum, max) to one")
}

fn missing(key: &str) -> Unusable {
    Unusable::Malformed(format!("no {key}"))
}

/// The envelope's keys rollguard reads.
#[derive(Default)]
struct Envelope {
    status: Option<String>,
    /// `data.resultType` and `data.result`.
    data: Option<(Option<String>, Option<Result_>)>,
    error_type: Option<String>,
    error: Option<String>,
}

/// `data.result`, before `resultType` (which may come after it) says
/// what it is.
enum Result_ {
    /// `[time, "value"]`.
    Scalar(f64),
    /// `[{"metric": ..., "value"|"values": ...}, ...]`.
    Series(Series),
    /// `[time, "text"]` or anything else that is not a series.
    Other,
}

/// Reads the envelope; `over` is set when reading stopped at the series
/// cap.
struct EnvelopeSeed<'a> {
    max_series: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Envelope, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Prometheus API answer")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => envelope.status = Some(map.next_value()?),
                "errorType" => envelope.error_type = map.next_value()?,
                "error" => envelope.error = map.next_value()?,
                "data" => {
                    let seed = DataSeed {
                        max_series: self.max_series,
                        over: self.over,
                    };
                    envelope.data = map.next_value_seed(seed)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// Reads `data` (null in some error answers).
struct DataSeed<'a> {
    max_series: usize,
    over: &'a Cell<bool>,
}

type DataKeys = Option<(Option<String>, Option<Result_>)>;

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = DataKeys;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<DataKeys, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = DataKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with resultType and result")
    }

    fn visit_unit<E: de::Error>(self) -> Result<DataKeys, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataKeys, A::Error> {
        let (mut kind, mut result) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => kind = Some(map.next_value()?),
                "result" => {
                    result = Some(map.next_value_seed(ResultSeed {
                        max_series: self.max_series,
                        over: self.over,
                    })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some((kind, result)))
    }
}

/// Reads `data.result`: keeps the first series, counts the others.
struct ResultSeed<'a> {
    max_series: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for ResultSeed<'_> {
    type Value = Result_;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Result_, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_> {
    type Value = Result_;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of series or a [time, value] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Result_, A::Error> {
        match seq.next_element::<Item>()? {
            None => Ok(Result_::Series(Series::default())),
            Some(Item::Number) => {
                let value = seq.next_element::<String>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(value
                    .and_then(|v| v.parse().ok())
                    .map_or(Result_::Other, Result_::Scalar))
            }
            Some(Item::Series(mut series)) => {
                series.count = 1;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    series.count += 1;
                    if series.count > self.max_series {
                        self.over.set(true);
                        return Err(de::Error::custom("more series than max_series"));
                    }
                }
                Ok(Result_::Series(series))
            }
            Some(Item::Other) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Result_::Other)
            }
        }
    }
}

/// The first element of `data.result`.
enum Item {
    /// A scalar's or a string's time (not needed: rollguard evaluates
    /// at the time it asked for).
    Number,
    /// A series, without its labels.
    Series(Series),
    /// Anything else.
    Other,
}

impl<'de> serde::Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Item, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a series or a time")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Item, E> {
        Ok(Item::Number)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Item, E> {
        Ok(Item::Number)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Item, E> {
        Ok(Item::Number)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Item, E> {
        Ok(Item::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut series = Series::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "value" => series.first = vec![sample::<A::Error>(map.next_value()?)?],
                "values" => {
                    let pairs: Vec<(f64, String)> = map.next_value()?;
                    series.first = pairs.into_iter().map(sample).collect::<Result<_, _>>()?;
                }
                "histogram" | "histograms" => {
                    map.next_value::<IgnoredAny>()?;
                    series.histogram = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Item::Series(series))
    }
}

/// A `[time, "value"]` pair as numbers; Go's `NaN`, `+Inf` and `-Inf`
/// parse as such.
fn sample<E: de::Error>((at, value): (f64, String)) -> Result<(f64, f64), E> {
    value
        .parse()
        .map(|v| (at, v))
        .map_err(|_| E::custom(format!("sample value {value:?} is not a number")))
}

#[cfg(test)]
#[path = "tests_answer.rs"]
mod tests;
