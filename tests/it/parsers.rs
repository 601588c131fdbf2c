//! Unit tier: the SSE and NDJSON stream decoders on captured bytes, split at every byte
//! boundary, and the error classifier on every captured vLLM error body.
use anorag::provider::body::{BodyDecoder, Item};
use anorag::provider::error::{classify_http, ErrorClass};
use anorag::provider::ollama::NdjsonChatDecoder;
use anorag::provider::openai::SseChatDecoder;
use anorag::provider::sse::{SseEvent, SseParser};
use anorag::provider::{ServerTimings, StreamEvent, Usage};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

fn fixture(rel: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The body of a `curl -si` capture: everything after the blank line ending the headers.
fn http_body(raw: &[u8]) -> Vec<u8> {
    let pos = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("headers end");
    raw[pos + 2..].to_vec()
}

/// What a decoder yields, with the arrival instants replaced by the index of the piece that
/// completed each event, so runs with different splits can be compared.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Delta(String, Option<String>),
    Usage(Usage, Option<ServerTimings>),
    Err(ErrorClass, String),
}

fn run<D: BodyDecoder>(mut dec: D, pieces: &[&[u8]], end: bool) -> (Vec<Seen>, bool) {
    let at = Instant::now();
    let mut out: VecDeque<Item> = VecDeque::new();
    let mut complete = false;
    for p in pieces {
        if dec.push(p, at, &mut out) {
            complete = true;
            break;
        }
    }
    if !complete && end {
        out.push_back(Err(dec.truncated()));
    }
    let seen = out
        .into_iter()
        .map(|i| match i {
            Ok(StreamEvent::Delta {
                text,
                finish_reason,
                ..
            }) => Seen::Delta(text, finish_reason),
            Ok(StreamEvent::Usage { usage, server, .. }) => Seen::Usage(usage, server),
            Err(e) => Seen::Err(e.class, e.message),
        })
        .collect();
    (seen, complete)
}

/// Feeds `body` split at `k`, for every k, and checks each run gives `expected`.
fn every_split<D: BodyDecoder>(new: impl Fn() -> D, body: &[u8], expected: &[Seen]) {
    for k in 0..=body.len() {
        let (seen, complete) = run(new(), &[&body[..k], &body[k..]], true);
        assert!(complete, "split at {k}: stream not complete");
        assert_eq!(seen, expected, "split at byte {k}");
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    let (seen, _) = run(new(), &bytes, true);
    assert_eq!(seen, expected, "one byte at a time");
}

#[test]
fn vllm_stream_fixture_decodes_the_same_at_every_split() {
    let body = http_body(&fixture("vllm-0.32/stream.txt"));
    let (expected, complete) = run(SseChatDecoder::new(), &[&body], true);
    assert!(complete);
    // Role chunk + 16 content chunks (vLLM puts finish_reason on the last one), then usage.
    assert_eq!(expected.len(), 18, "{expected:#?}");
    assert_eq!(expected[0], Seen::Delta(String::new(), None));
    assert_eq!(expected[1], Seen::Delta("ort".into(), None));
    assert!(matches!(&expected[16], Seen::Delta(_, Some(r)) if r == "length"));
    assert_eq!(
        expected[17],
        Seen::Usage(
            Usage {
                prompt_tokens: 26,
                completion_tokens: 16
            },
            None
        )
    );
    // A chunk with empty content (UTF-8 hold-back) is still an event: chunks are not tokens.
    let empty = expected[1..17]
        .iter()
        .filter(|s| matches!(s, Seen::Delta(t, _) if t.is_empty()))
        .count();
    assert_eq!(empty, 1);
    every_split(SseChatDecoder::new, &body, &expected);

    // The same stream with CRLF line ends, comments and `data:` without a space.
    let text = String::from_utf8(body.clone()).unwrap();
    let variant =
        format!(": keep-alive\r\n\r\n{}", text.replace("data: ", "data:")).replace('\n', "\r\n");
    every_split(SseChatDecoder::new, variant.as_bytes(), &expected);
}

#[test]
fn sse_parser_handles_multiline_data_events_and_lone_cr() {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    p.push(b"event: message\rdata: a\r", &mut out);
    p.push(b"\ndata: b\n\n: ping\n\ndata: c", &mut out);
    assert_eq!(
        out,
        vec![SseEvent {
            event: Some("message".into()),
            data: "a\nb".into()
        }]
    );
    assert!(p.has_partial());
    p.push(b"\n\n", &mut out);
    assert_eq!(out[1].data, "c");
    assert!(!p.has_partial());
}

#[test]
fn sse_error_event_after_a_200_is_classified_and_ends_the_stream() {
    // vLLM sends an in-band error with `code` as an integer, then [DONE].
    let body = b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
data: {\"error\":{\"message\":\"EngineCore encountered an issue.\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\n\
data: [DONE]\n\n";
    let (seen, complete) = run(SseChatDecoder::new(), &[body], true);
    assert!(complete);
    assert_eq!(seen[0], Seen::Delta("Hi".into(), None));
    match &seen[1] {
        Seen::Err(ErrorClass::Server, m) => assert!(m.contains("EngineCore"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.len(), 2);
}

#[test]
fn sse_truncated_and_malformed_streams_are_errors_not_silent_ends() {
    let cut = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choi";
    let (seen, complete) = run(SseChatDecoder::new(), &[cut], true);
    assert!(!complete);
    assert!(
        matches!(&seen[1], Seen::Err(ErrorClass::StreamBroken, m) if m.contains("middle")),
        "{seen:?}"
    );
    let no_done = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    let (seen, _) = run(SseChatDecoder::new(), &[no_done], true);
    assert!(
        matches!(&seen[1], Seen::Err(ErrorClass::StreamBroken, m) if m.contains("[DONE]")),
        "{seen:?}"
    );
    let bad = b"data: {\"choices\":[{\"delta\":{\"content\":\n\n";
    let (seen, complete) = run(SseChatDecoder::new(), &[bad], true);
    assert!(complete);
    assert!(
        matches!(&seen[0], Seen::Err(ErrorClass::StreamBroken, m) if m.contains("malformed")),
        "{seen:?}"
    );
}

#[test]
fn ollama_ndjson_decodes_the_same_at_every_split_with_ns_durations() {
    let body = fixture("ollama/chat_stream.ndjson");
    let (expected, complete) = run(NdjsonChatDecoder::new(), &[&body], true);
    assert!(complete);
    assert_eq!(expected.len(), 7, "{expected:#?}");
    assert_eq!(expected[3], Seen::Delta(" blue é中".into(), None));
    assert_eq!(expected[5], Seen::Delta(String::new(), Some("stop".into())));
    assert_eq!(
        expected[6],
        Seen::Usage(
            Usage {
                prompt_tokens: 26,
                completion_tokens: 282
            },
            Some(ServerTimings {
                total: Some(Duration::from_nanos(4_883_583_458)),
                load: Some(Duration::from_nanos(1_334_875)),
                prompt_eval: Some(Duration::from_millis(342) + Duration::from_micros(546)),
                eval: Some(Duration::from_nanos(4_535_599_000)),
            })
        )
    );
    every_split(NdjsonChatDecoder::new, &body, &expected);
    let crlf = String::from_utf8(body).unwrap().replace('\n', "\r\n");
    every_split(NdjsonChatDecoder::new, crlf.as_bytes(), &expected);
}

#[test]
fn ollama_omitted_zero_fields_and_error_lines() {
    let (seen, _) = run(
        NdjsonChatDecoder::new(),
        &[&fixture("ollama/chat_cached_prompt.ndjson")],
        true,
    );
    match &seen[2] {
        Seen::Usage(u, Some(t)) => {
            assert_eq!(u.prompt_tokens, 0, "absent prompt_eval_count means zero");
            assert_eq!(u.completion_tokens, 1);
            assert_eq!(t.load, None);
            assert_eq!(t.eval, Some(Duration::from_millis(1)));
        }
        other => panic!("{other:?}"),
    }
    let (seen, complete) = run(
        NdjsonChatDecoder::new(),
        &[&fixture("ollama/chat_stream_error.ndjson")],
        true,
    );
    assert!(complete);
    assert_eq!(seen[0], Seen::Delta("The".into(), None));
    assert!(
        matches!(&seen[1], Seen::Err(ErrorClass::Server, m) if m.contains("while running the model")),
        "{seen:?}"
    );
}

/// Every capture in errors.txt: `### title`, `HTTP NNN`, headers, then the body line.
fn captured_errors() -> Vec<(String, u16, String)> {
    let text = String::from_utf8(fixture("vllm-0.32/errors.txt")).unwrap();
    let mut out = Vec::new();
    for section in text.split("### ").skip(1) {
        let title = section.lines().next().unwrap().to_string();
        let status = section
            .lines()
            .find_map(|l| l.strip_prefix("HTTP "))
            .and_then(|s| s.trim().parse().ok())
            .unwrap();
        let body = section
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap()
            .to_string();
        out.push((title, status, body));
    }
    out
}

#[test]
fn every_captured_vllm_error_gets_its_class() {
    let expect = [
        ("unknown model", ErrorClass::NotFound),
        ("max_tokens too large", ErrorClass::ContextLength),
        ("malformed JSON", ErrorClass::BadRequest),
        ("missing messages", ErrorClass::BadRequest),
        ("unknown route", ErrorClass::NotFound),
        (
            "prompt longer than max_model_len",
            ErrorClass::ContextLength,
        ),
    ];
    let caps = captured_errors();
    assert_eq!(caps.len(), expect.len());
    for (title, status, body) in caps {
        let (_, class) = expect
            .iter()
            .find(|(t, _)| title.starts_with(t))
            .unwrap_or_else(|| panic!("no expectation for `{title}`"));
        let e = classify_http(status, &body, None);
        assert_eq!(e.class, *class, "{title}: {e}");
        assert_eq!(e.status, Some(status));
        assert!(
            !e.message.is_empty() && !e.message.starts_with('{'),
            "{title}: {}",
            e.message
        );
    }
}

#[test]
fn other_envelopes_and_statuses_are_classified() {
    let cases: &[(u16, &str, ErrorClass)] = &[
        (401, r#"{"error":"Unauthorized"}"#, ErrorClass::Auth),
        (
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            ErrorClass::Quota,
        ),
        (
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            ErrorClass::RateLimited,
        ),
        (
            503,
            r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
            ErrorClass::Overloaded,
        ),
        (
            400,
            r#"{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 2723 tokens","type":"BadRequestError","param":null,"code":400}"#,
            ErrorClass::ContextLength,
        ),
        (
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            ErrorClass::ContextLength,
        ),
        (
            404,
            r#"{"error":"model 'foo' not found"}"#,
            ErrorClass::NotFound,
        ),
        (502, "<html>Bad Gateway</html>", ErrorClass::Server),
        (500, "", ErrorClass::Server),
        (422, r#"{"detail":"Unprocessable"}"#, ErrorClass::BadRequest),
    ];
    for (status, body, class) in cases {
        let e = classify_http(*status, body, None);
        assert_eq!(e.class, *class, "{status} {body}");
    }
}
