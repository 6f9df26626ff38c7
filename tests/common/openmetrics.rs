//! A small, strict reader of the text that `/metrics` serves (OpenMetrics
//! 1.0 as prometheus-client writes it), so that a malformed exposition
//! fails the test instead of silently breaking a Prometheus scrape.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with its suffix (`_total`, `_bucket`, ...).
    pub name: String,
    /// Label pairs, unescaped.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

const TYPES: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
    "unknown",
];
const SUFFIXES: [&str; 7] = [
    "", "_total", "_created", "_bucket", "_count", "_sum", "_info",
];

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Reads the whole exposition; Err names the first bad line.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with("# EOF\n") {
        return Err("does not end with `# EOF`".into());
    }
    let lines: Vec<&str> = text.lines().collect();
    let (last, body) = lines.split_last().ok_or("empty")?;
    if *last != "# EOF" {
        return Err(format!("last line {last:?} is not `# EOF`"));
    }
    let mut family: Option<String> = None;
    let mut samples = Vec::new();
    for (index, line) in body.iter().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", index + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.filter(|n| is_name(n)).ok_or_else(|| at("bad name"))?;
            match (keyword, rest) {
                (Some("HELP"), Some(_)) => {}
                (Some("TYPE"), Some(kind)) if TYPES.contains(&kind) => {
                    family = Some(name.to_owned());
                }
                (Some("UNIT"), Some(unit)) if is_name(unit) => {}
                _ => return Err(at("bad comment line")),
            }
            continue;
        }
        let sample = parse_sample(line).map_err(|why| at(&why))?;
        let family = family
            .as_deref()
            .ok_or_else(|| at("sample before # TYPE"))?;
        let belongs = SUFFIXES
            .iter()
            .any(|suffix| sample.name.strip_suffix(suffix) == Some(family));
        if !belongs {
            return Err(at(&format!("sample outside its family {family}")));
        }
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or("no value after the metric name")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = parse_labels(inner, &mut labels)?;
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other
            .parse::<f64>()
            .ok()
            .filter(|_| !other.contains(['i', 'I', 'n', 'N']))
            .ok_or_else(|| format!("bad value {other:?}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<f64>()
            .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads `key="value",...}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let (key, rest) = text.split_once("=\"").ok_or("label without =\"")?;
        if !is_name(key) || key.starts_with("__") {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        text = &rest[end + 1..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

/// Where Debian's `prometheus` package puts promtool.
const PROMTOOL: &str = "/usr/bin/promtool";

/// Runs `promtool check metrics` on `text`; panics when promtool is not
/// installed (as the Prometheus tests do without Prometheus).
///
/// promtool (2.x) reads the classic Prometheus text format: `# EOF` and
/// `# UNIT` are plain comments to it, and parse errors fail it (exit 1).
/// Its linter (exit 3) flags every OpenMetrics counter sample, because
/// OpenMetrics names the family `x` in HELP/TYPE and the sample `x_total`,
/// so the classic reader sees `x_total` without help text. That one
/// finding is expected; any other fails the test.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    assert!(
        std::path::Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: run scripts/test, which installs the Debian package `prometheus`"
    );
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => {}
        Some(3) => {
            for finding in report.lines().filter(|l| !l.trim().is_empty()) {
                let expected = finding
                    .strip_suffix(" no help text")
                    .is_some_and(|name| name.ends_with("_total") && is_name(name));
                assert!(expected, "promtool: unexpected finding {finding:?}\n{text}");
            }
            println!("note: promtool flags OpenMetrics counters as without help text:\n{report}");
        }
        code => panic!("promtool check metrics failed ({code:?}):\n{report}\n{text}"),
    }
}
