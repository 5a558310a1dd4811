//! Hostile bodies made from a route's valid one, hostile path ids and query values.

use serde_json::{Value, json};

use super::world::Route;

/// Every string → a number and every number → a string.
pub(super) fn retyped(value: &Value) -> Value {
    match value {
        Value::String(_) => json!(12345),
        Value::Number(n) => json!(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(retyped).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), retyped(v))).collect())
        }
        other => other.clone(),
    }
}

/// The id fields of the request bodies.
pub(super) const ID_KEYS: &[&str] = &[
    "user",
    "group",
    "owner",
    "members",
    "add",
    "remove",
    "msg_ids",
    "org",
    "client_msg_id",
];

/// `value` with SQL metacharacters appended to every id field; `None` if it has none.
pub(super) fn sql_in_ids(value: &Value) -> Option<Value> {
    pub(super) fn walk(value: &mut Value, in_id: bool, hit: &mut bool) {
        match value {
            Value::String(s) if in_id => {
                s.push_str("' OR '1'='1");
                *hit = true;
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, in_id, hit)),
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    walk(v, ID_KEYS.contains(&k.as_str()), hit);
                }
            }
            _ => {}
        }
    }
    let mut out = value.clone();
    let mut hit = false;
    walk(&mut out, false, &mut hit);
    hit.then_some(out)
}

/// The serialized body with every number written as `replacement`; `None` if it has
/// no number.
pub(super) fn numbers_as(value: &Value, replacement: &str) -> Option<String> {
    const MARK: &str = "\u{1}NUMBER\u{1}";
    pub(super) fn walk(value: &mut Value, hit: &mut bool) {
        match value {
            Value::Number(_) => {
                *value = json!(MARK);
                *hit = true;
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, hit)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, hit)),
            _ => {}
        }
    }
    let mut out = value.clone();
    let mut hit = false;
    walk(&mut out, &mut hit);
    let marked = serde_json::to_string(&json!(MARK)).expect("string");
    hit.then(|| out.to_string().replace(&marked, replacement))
}

/// The body with its first key given twice (the same value both times).
pub(super) fn duplicate_first_key(value: &Value) -> Option<String> {
    let map = value.as_object()?;
    let (key, first) = map.iter().next()?;
    let text = value.to_string();
    let pair = format!("{}:{}", json!(key), first);
    Some(format!("{{{pair},{}", &text[1..]))
}

/// `bytes` inserted at the start of the first string value (or of the body).
pub(super) fn in_first_string(body: &[u8], bytes: &[u8]) -> Vec<u8> {
    let at = body
        .windows(2)
        .position(|w| w == b":\"")
        .map_or(0, |i| i + 2);
    let mut out = body[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&body[at..]);
    out
}

/// Bodies refused with 400 `bad_request` whatever the route: `(case, body)`.
pub(super) fn bad_bodies(
    route: &Route,
    valid: &Value,
) -> Vec<(String, Vec<u8>, Option<&'static str>)> {
    let text = valid.to_string().into_bytes();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut bodies: Vec<(String, Vec<u8>, Option<&'static str>)> = vec![
        ("empty body".into(), Vec::new(), None),
        ("JSON null".into(), b"null".to_vec(), None),
        ("a JSON array".into(), b"[]".to_vec(), None),
        ("10,000 nested [".into(), deep.clone().into_bytes(), None),
        (
            "invalid UTF-8".into(),
            in_first_string(&text, b"\xc3\x28\xff"),
            None,
        ),
        ("truncated".into(), text[..text.len() / 2].to_vec(), None),
        ("trailing garbage".into(), [&text[..], b"}x"].concat(), None),
        (
            "a form body".into(),
            b"name=x&org=acme".to_vec(),
            Some("application/x-www-form-urlencoded"),
        ),
        (
            "XML".into(),
            b"<user><name>x</name></user>".to_vec(),
            Some("application/xml"),
        ),
        (
            "retyped scalars (numbers as strings, strings as numbers)".into(),
            retyped(valid).to_string().into_bytes(),
            None,
        ),
    ];
    if valid.to_string().contains(":\"") {
        bodies.push((
            "a lone surrogate escape".into(),
            in_first_string(&text, b"\\ud800"),
            None,
        ));
    }
    if let Some(body) = sql_in_ids(valid) {
        bodies.push((
            "SQL metacharacters in id fields".into(),
            body.to_string().into_bytes(),
            None,
        ));
    }
    if route.strict {
        if let Some(body) = duplicate_first_key(valid) {
            bodies.push(("a duplicate key".into(), body.into_bytes(), None));
        }
        for number in [
            "9223372036854775808",
            "-9223372036854775809",
            "-1",
            "1e309",
            "1.5",
            "1e2",
        ] {
            if let Some(body) = numbers_as(valid, number) {
                bodies.push((format!("numbers as {number}"), body.into_bytes(), None));
            }
        }
    }
    bodies
}

/// Path segments that are no id: refused with the route's `bad_id`.
pub(super) fn bad_ids() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("SQL quote", b"x'%20OR%20'1'='1".to_vec()),
        ("SQL statement", b"x;DROP%20TABLE%20users;--".to_vec()),
        ("%00", b"x%00".to_vec()),
        ("%2F traversal", b"..%2F..%2Fetc%2Fpasswd".to_vec()),
        ("escaped invalid UTF-8", b"%FF%FE".to_vec()),
        ("escaped overlong UTF-8", b"%C0%AE%C0%AE".to_vec()),
        ("a space", b"a%20b".to_vec()),
        ("65 characters", "a".repeat(65).into_bytes()),
        ("a percent sign", b"100%".to_vec()),
    ]
}

/// Well-formed ids that name nothing: the route's `unknown_id`.
pub(super) const ODD_IDS: &[&str] = &["..", ".", "a:b", "-", "x.y-z_0:1"];

/// Values refused for an integer query key.
pub(super) const BAD_INTS: &[&str] = &[
    "-1",
    "9223372036854775808",
    "99999999999999999999",
    "1e309",
    "1.5",
    "0x10",
    "%00",
    "1%00",
    "%31",
    "abc",
    "",
    "1'%20OR%20'1'='1",
];
