use super::*;
use serde_json::json;

const LIMIT: usize = 4096;

fn parse(value: Value) -> Result<Content, Error> {
    Content::from_value(value, LIMIT)
}

fn code(result: Result<Content, Error>) -> &'static str {
    result.map(|_| "ok").unwrap_or_else(|e| e.code())
}

#[test]
fn text_content_parses() {
    let content = parse(json!({"type": "text", "text": "hi"})).expect("valid");
    assert_eq!(content, Content::Text { text: "hi".into() });
    assert_eq!(content.type_name(), "text");
}

#[test]
fn text_at_the_limit_is_accepted_and_one_byte_over_is_too_large() {
    assert_eq!(
        code(parse(json!({"type": "text", "text": "a".repeat(LIMIT)}))),
        "ok"
    );
    assert_eq!(
        code(parse(
            json!({"type": "text", "text": "a".repeat(LIMIT + 1)})
        )),
        "too_large"
    );
}

#[test]
fn text_limit_counts_utf8_bytes_not_characters() {
    let text = "é".repeat(LIMIT / 2 + 1); // 2 bytes each
    assert_eq!(
        code(parse(json!({"type": "text", "text": text}))),
        "too_large"
    );
}

#[test]
fn empty_or_missing_or_non_string_text_is_a_bad_request() {
    assert_eq!(
        code(parse(json!({"type": "text", "text": ""}))),
        "bad_request"
    );
    assert_eq!(code(parse(json!({"type": "text"}))), "bad_request");
    assert_eq!(
        code(parse(json!({"type": "text", "text": 5}))),
        "bad_request"
    );
}

#[test]
fn unknown_or_missing_type_is_a_bad_request() {
    assert_eq!(
        code(parse(json!({"type": "video", "url": "https://x"}))),
        "bad_request"
    );
    assert_eq!(code(parse(json!({"text": "hi"}))), "bad_request");
    assert_eq!(code(parse(json!("hi"))), "bad_request");
}

#[test]
fn image_and_file_need_an_http_url_only() {
    let image = parse(json!({"type": "image", "url": "https://cdn/x.png"})).expect("valid");
    assert_eq!(
        image,
        Content::Image(Media {
            url: "https://cdn/x.png".into(),
            name: None,
            size: None,
            mime: None
        })
    );
    let file = json!({"type": "file", "url": "HTTP://h/f", "name": "f.pdf", "size": 0, "mime": "application/pdf"});
    assert_eq!(code(parse(file)), "ok");
    assert_eq!(
        code(parse(json!({"type": "file", "name": "f"}))),
        "bad_request"
    );
}

#[test]
fn media_rejects_other_schemes_and_bad_urls() {
    for url in [
        "ftp://h/x",
        "javascript:alert(1)",
        "https://",
        "https://a b",
        "/relative",
        "",
    ] {
        assert_eq!(
            code(parse(json!({"type": "image", "url": url}))),
            "bad_request",
            "{url}"
        );
    }
    let long = format!("https://{}", "a".repeat(MAX_URL_BYTES));
    assert_eq!(
        code(parse(json!({"type": "image", "url": long}))),
        "bad_request"
    );
}

#[test]
fn media_field_limits_and_size_type_are_checked() {
    let base = |extra: Value| {
        let mut v = json!({"type": "file", "url": "https://h/f"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        parse(v)
    };
    assert_eq!(
        code(base(json!({"name": "n".repeat(MAX_NAME_BYTES)}))),
        "ok"
    );
    assert_eq!(
        code(base(json!({"name": "n".repeat(MAX_NAME_BYTES + 1)}))),
        "bad_request"
    );
    assert_eq!(
        code(base(json!({"mime": "m".repeat(MAX_MIME_BYTES + 1)}))),
        "bad_request"
    );
    assert_eq!(code(base(json!({"size": -1}))), "bad_request");
    assert_eq!(code(base(json!({"size": 1.5}))), "bad_request");
    assert_eq!(code(base(json!({"size": "10"}))), "bad_request");
    assert_eq!(
        code(base(json!({"size": 9_223_372_036_854_775_807_i64}))),
        "ok"
    );
    assert_eq!(
        code(base(json!({"size": 9_223_372_036_854_775_808_u64}))),
        "bad_request"
    );
}

#[test]
fn custom_data_must_be_an_object_of_at_most_16_kib() {
    assert_eq!(
        code(parse(json!({"type": "custom", "data": {"k": [1, 2]}}))),
        "ok"
    );
    assert_eq!(
        code(parse(json!({"type": "custom", "data": [1]}))),
        "bad_request"
    );
    assert_eq!(code(parse(json!({"type": "custom"}))), "bad_request");
    // {"k":"…"} is 8 bytes of framing.
    let fits = "x".repeat(MAX_CUSTOM_BYTES - 8);
    assert_eq!(
        code(parse(json!({"type": "custom", "data": {"k": fits}}))),
        "ok"
    );
    let over = "x".repeat(MAX_CUSTOM_BYTES - 7);
    assert_eq!(
        code(parse(json!({"type": "custom", "data": {"k": over}}))),
        "too_large"
    );
}

#[test]
fn canonical_json_ignores_key_order_whitespace_and_unknown_fields() {
    let a = Content::from_value(
        serde_json::from_str(r#"{"type":"custom","data":{"b":1,"a":{"y":2,"x":3}},"extra":true}"#)
            .expect("json"),
        LIMIT,
    )
    .expect("valid");
    let b = Content::from_value(
        serde_json::from_str(
            r#"{ "data" : { "a" : {"x":3, "y":2}, "b" : 1 }, "type" : "custom" }"#,
        )
        .expect("json"),
        LIMIT,
    )
    .expect("valid");
    assert_eq!(a.canonical_json(), b.canonical_json());
    assert_eq!(
        a.canonical_json(),
        r#"{"data":{"a":{"x":3,"y":2},"b":1},"type":"custom"}"#
    );
}

#[test]
fn canonical_json_differs_when_content_differs() {
    let hi = Content::Text { text: "hi".into() };
    let ho = Content::Text { text: "ho".into() };
    assert_ne!(hi.canonical_json(), ho.canonical_json());
    assert_eq!(hi.canonical_json(), r#"{"text":"hi","type":"text"}"#);
}

#[test]
fn canonical_json_round_trips_through_from_stored() {
    let content = parse(json!({"type": "file", "url": "https://h/f", "size": 3})).expect("valid");
    assert_eq!(Content::from_stored(&content.canonical_json()), Ok(content));
    assert_eq!(
        Content::from_stored("{").map_err(|e| e.code()),
        Err("internal")
    );
}

#[test]
fn content_serializes_in_the_api_shape() {
    let image = Content::Image(Media {
        url: "https://x".into(),
        name: None,
        size: Some(1),
        mime: None,
    });
    assert_eq!(
        serde_json::to_value(&image).expect("serializes"),
        json!({"type": "image", "url": "https://x", "size": 1})
    );
}
