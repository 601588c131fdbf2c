//! Property tests for everything that reads outside input: the SSE and NDJSON parsers (and the
//! load test's lean stream reader against the full decoder), the
//! Prometheus reader, the config loader, the simulator's fault specs, key specs, the number
//! checks and the log highlighter. Each property runs `ANORAG_FUZZ_CASES` inputs (256 by
//! default, so CI stays quick); `scripts/fuzz MINUTES` runs many more. Every test prints how
//! many inputs it ran.
use anorag::config::{self, keys::KeySpec};
use anorag::provider::ndjson::NdjsonParser;
use anorag::provider::sse::{SseEvent, SseParser};
use anorag::sim::Fault;
use anorag::telemetry::prometheus::Page;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};

fn cases() -> u32 {
    std::env::var("ANORAG_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Runs `prop` on `cases()` inputs from `strategy` and prints how many ran.
fn check<S: Strategy>(name: &str, strategy: S, prop: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        prop(v)
    });
    println!("fuzz {name}: {} inputs", ran.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Cuts `bytes` at the given points (any order, any values).
fn pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in at.into_iter().chain([bytes.len()]) {
        out.push(bytes[prev..c].to_vec());
        prev = c;
    }
    out
}

fn sse_all(chunks: &[Vec<u8>]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.push(c, &mut out);
    }
    out
}

#[test]
fn sse_any_bytes_any_split_same_events() {
    check(
        "sse_any_bytes",
        (
            proptest::collection::vec(any::<u8>(), 0..2048),
            proptest::collection::vec(any::<usize>(), 0..16),
        ),
        |(bytes, cuts)| {
            let whole = sse_all(std::slice::from_ref(&bytes));
            let split = sse_all(&pieces(&bytes, &cuts));
            prop_assert_eq!(whole, split);
            Ok(())
        },
    );
}

#[test]
fn sse_written_events_come_back() {
    let line_end = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
    check(
        "sse_round_trip",
        (
            proptest::collection::vec("[^\r\n]{0,40}", 0..20),
            line_end,
            proptest::collection::vec(any::<usize>(), 0..16),
            any::<bool>(),
        ),
        |(datas, nl, cuts, comments)| {
            let mut text = String::new();
            for d in &datas {
                if comments {
                    text.push_str(&format!(": keep-alive{nl}"));
                }
                text.push_str(&format!("data: {d}{nl}{nl}"));
            }
            let got = sse_all(&pieces(text.as_bytes(), &cuts));
            let got: Vec<String> = got.into_iter().map(|e| e.data).collect();
            prop_assert_eq!(got, datas);
            Ok(())
        },
    );
}

#[test]
fn ndjson_any_bytes_any_split_same_lines() {
    check(
        "ndjson",
        (
            proptest::collection::vec("[^\n]{0,60}", 0..20),
            proptest::collection::vec(any::<usize>(), 0..16),
            proptest::collection::vec(any::<u8>(), 0..256),
        ),
        |(lines, cuts, junk)| {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut p = NdjsonParser::new();
            let mut out = Vec::new();
            for c in pieces(text.as_bytes(), &cuts) {
                p.push(&c, &mut out);
            }
            let want: Vec<String> = lines
                .iter()
                .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
                .filter(|l| !l.bytes().all(|b| b.is_ascii_whitespace()))
                .collect();
            prop_assert_eq!(out, want);
            // Arbitrary bytes: no panic, and what ends is a line or nothing.
            let mut p = NdjsonParser::new();
            let mut out = Vec::new();
            p.push(&junk, &mut out);
            let _ = p.finish();
            Ok(())
        },
    );
}

#[test]
fn prometheus_any_text_no_panic_and_written_samples_read_back() {
    check(
        "prometheus",
        (
            ".{0,400}",
            proptest::collection::vec(
                (
                    "[a-z_:][a-z0-9_:]{0,20}",
                    "[a-z_]{1,8}",
                    "[ -~&&[^\"\\\\]]{0,12}",
                    -1e12f64..1e12,
                ),
                1..10,
            ),
        ),
        |(junk, samples)| {
            let _ = Page::parse(&junk);
            let mut text = String::from("# HELP x y\n# TYPE x gauge\n");
            for (name, label, value, v) in &samples {
                text.push_str(&format!("{name}{{{label}=\"{value}\"}} {v}\n"));
            }
            let page = Page::parse(&text);
            prop_assert_eq!(page.samples.len(), samples.len());
            for (s, (name, label, value, v)) in page.samples.iter().zip(&samples) {
                prop_assert_eq!(&s.name, name);
                prop_assert_eq!(s.label(label), Some(value.as_str()));
                prop_assert!((s.value - v).abs() <= v.abs() * 1e-12);
            }
            Ok(())
        },
    );
}

/// Every error of the loader has a file:line:col inside the file (or just past its end).
fn located(errs: &config::ConfigErrors, text: &str) -> Result<(), TestCaseError> {
    // Lines as YAML counts them: `\r\n`, `\r` and `\n` each end one.
    let lines = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .matches('\n')
        .count()
        + 2;
    for e in &errs.0 {
        prop_assert!(
            e.line >= 1 && e.line <= lines,
            "line {} of {lines}: {e}",
            e.line
        );
        prop_assert!(e.col >= 1, "{e}");
        prop_assert!(!e.message.is_empty());
    }
    Ok(())
}

#[test]
fn config_loader_never_panics_and_locates_every_error() {
    check("config_any_text", ".{0,300}", |text| {
        if let Err(e) = config::load_str_with_env(&text, "f.yaml", &|_| None) {
            located(&e, &text)?;
        }
        Ok(())
    });
    // The shipped file with a few bytes changed: near-valid input reaches deeper checks.
    let base = config::DEFAULT_YAML.to_string();
    check(
        "config_mutated",
        proptest::collection::vec((any::<usize>(), 0u8..3, "[ -~\n]{0,3}"), 1..6),
        |edits| {
            let mut t = base.clone().into_bytes();
            for (at, op, ins) in edits {
                let at = at % (t.len() + 1);
                match op {
                    0 if at < t.len() => {
                        t.remove(at);
                    }
                    _ => {
                        for (i, b) in ins.bytes().enumerate() {
                            t.insert(at + i, b);
                        }
                    }
                }
            }
            let text = String::from_utf8_lossy(&t).into_owned();
            let env = |k: &str| (k == "HOME").then(|| "/home/x".to_string());
            if let Err(e) = config::load_str_with_env(&text, "dashboard.yaml", &env) {
                located(&e, &text)?;
            }
            Ok(())
        },
    );
}

#[test]
fn fault_specs_parse_or_say_why() {
    check(
        "fault_spec",
        prop_oneof![
            ".{0,40}",
            "(status=[0-9]{1,4}|reset|stall|malformed|oversize|slow_headers|refuse)(,(rate|count|after|ms|retry_after|for_ms)=[-0-9.e]{0,6}){0,3}",
        ],
        |spec| {
            match spec.parse::<Fault>() {
                Ok(f) => prop_assert!((0.0..=1.0).contains(&f.rate), "{spec}: rate {}", f.rate),
                Err(e) => prop_assert!(!e.is_empty()),
            }
            Ok(())
        },
    );
}

#[test]
fn key_specs_parse_or_say_why_and_labels_read_back() {
    check("key_spec", ".{0,12}", |spec| {
        match KeySpec::parse(&spec) {
            Ok(k) => {
                let label = k.label();
                // Arrows are shown as symbols; every other label reads back as the same key.
                if !label.contains(['↑', '↓', '←', '→']) {
                    prop_assert_eq!(KeySpec::parse(&label), Ok(k), "{} -> {}", spec, label);
                }
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
        Ok(())
    });
}

#[test]
fn number_checks_never_panic_and_never_pass_what_a_timer_cannot_hold() {
    check(
        "numbers",
        prop_oneof![".{0,12}", any::<f64>().prop_map(|f| f.to_string())],
        |t| {
            if let Ok(v) = anorag::input::seconds_text(&t, 0.001) {
                prop_assert!(v.is_finite() && (0.001..=anorag::input::MAX_SECONDS).contains(&v));
                let _ = anorag::input::duration(v);
            }
            if let Ok(v) = anorag::input::rate(&t) {
                prop_assert!(v.is_finite() && v > 0.0);
            }
            let _ = anorag::input::concurrency(&t);
            let _ = anorag::input::temperature(&t);
            let _ = anorag::input::burstiness(&t);
            Ok(())
        },
    );
}

#[test]
fn the_log_highlighter_keeps_every_character() {
    check("highlight", (".{0,60}", ".{1,4}"), |(text, needle)| {
        let line = anorag::tui::view::common::highlight(&text, &needle);
        let back: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        prop_assert_eq!(back, text);
        Ok(())
    });
}

/// Any JSON in the shape of Ray's node table, cluster status and job list (and any JSON at
/// all) is read without a panic; what is read keeps its invariants.
#[test]
fn ray_json_never_panics() {
    use anorag::cluster::ray::{parse_jobs, parse_nodes};
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[A-Z_a-z0-9:]{0,12}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("nodeId".to_string()),
                    Just("state".to_string()),
                    Just("resourcesTotal".to_string()),
                    Just("gpus".to_string()),
                    Just("memoryUsed".to_string()),
                    Just("submission_id".to_string()),
                    Just("status".to_string()),
                    Just("metadata".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    check("ray_json", (value.clone(), value), |(a, b)| {
        let summary = json!({"data": {"summary": [ {"raylet": a.clone(), "gpus": [b.clone()], "mem": b.clone()} ]}});
        let status =
            json!({"data": {"clusterStatus": {"loadMetricsReport": {"usageByNode": a.clone()}}}});
        for n in parse_nodes(&summary, &status) {
            prop_assert!(!n.id.is_empty());
            for g in &n.gpus {
                prop_assert!(g.utilization_pct.is_none_or(|u| u <= 100));
            }
        }
        let _ = parse_nodes(&a, &b);
        for j in parse_jobs(&json!([a.clone(), b.clone()])) {
            prop_assert!(!j.id.is_empty());
        }
        let _ = parse_jobs(&a);
        Ok(())
    });
}

/// The load test's lean reader of chat streams and the provider's full decoder, on the same
/// bytes cut at the same points: the same events (choices or not, content empty or not, the
/// text, usage) and the same end (done, or the same error class and message).
fn lean_and_full(chunks: &[Vec<u8>]) -> Result<(), TestCaseError> {
    use anorag::provider::body::BodyDecoder;
    use anorag::provider::lean::scan::{End, LeanEvent, Scanner};
    use anorag::provider::openai::SseChatDecoder;
    use anorag::provider::StreamEvent;
    let at = std::time::Instant::now();
    let mut full = SseChatDecoder::new();
    let mut q = std::collections::VecDeque::new();
    let mut full_done = false;
    for c in chunks {
        if full.push(c, at, &mut q) {
            full_done = true;
            break;
        }
    }
    let mut full_events = Vec::new();
    let mut full_end = if full_done { Some(None) } else { None };
    for item in q {
        match item {
            Ok(StreamEvent::Delta {
                text,
                finish_reason,
                ..
            }) => full_events.push(LeanEvent::Delta {
                empty: text.is_empty(),
                text: Some(text),
                finish_reason,
            }),
            Ok(StreamEvent::Usage { usage, .. }) => full_events.push(LeanEvent::Usage(usage)),
            Err(e) => full_end = Some(Some((e.class, e.message))),
        }
    }
    if full_end.is_none() {
        let e = full.truncated();
        full_end = Some(Some((e.class, e.message)));
    }
    let mut lean = Scanner::new(true);
    let mut lean_events = Vec::new();
    let mut lean_end = None;
    for c in chunks {
        if let Some(end) = lean.push(c, &mut lean_events) {
            lean_end = Some(match end {
                End::Done => None,
                End::Error(e) => Some((e.class, e.message)),
            });
            break;
        }
    }
    if lean_end.is_none() {
        let e = lean.truncated();
        lean_end = Some(Some((e.class, e.message)));
    }
    prop_assert_eq!(lean_events, full_events);
    prop_assert_eq!(lean_end, full_end);
    Ok(())
}

#[test]
fn the_lean_stream_reader_agrees_on_vllms_stream_and_edge_cases() {
    // vLLM's own bytes: the role chunk, tokens, the finish, usage, [DONE].
    let captured = include_str!("../fixtures/vllm-0.32/stream.txt");
    let vllm = captured.split_once("\n\n").unwrap().1.as_bytes();
    let cases: &[&[u8]] = &[
        vllm,
        b"data: {\"choices\":[{\"delta\":{\"content\":\"a\\nb \\u00e9\"}}]}\r\n\r\n: keep-alive\r\n\r\ndata: {\"choices\":[{\"delta\":{}},{\"delta\":{\"content\":\"x\"}}]}\r\rdata:[DONE]\n\n",
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n",
        b"data: {\"choices\":[{\"message\":{\"content\":\"whole\"}}]}\n\n",
        b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]\ndata: }\n\n",
        b"data: {\"choices\": null}\n\n",
        b"data: {\"error\":{\"message\":\"boom\",\"type\":\"InternalServerError\",\"code\":500}}\n\n",
        b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\"}}]}\n\n",
        b"event: x\ndata: not json\n\n",
        // Chunks alike but for their text, whose text is not a plain string: another key
        // spliced in, a raw control character, an escape; then the finish.
        b"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"ab\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"cd\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"x\",\"role\":\"y\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"q\\n\\\"\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"e\x01f\"},\"finish_reason\":null}]}\n\n",
        // Unicode white space around the JSON (U+00A0, U+2003), trimmed by both.
        "data: \u{a0}{\"choices\":[{\"delta\":{\"content\":\"t\"}}]}\u{2003}\n\n".as_bytes(),
    ];
    for raw in cases {
        for step in [1, 2, 3, 7, raw.len().max(1)] {
            let chunks: Vec<Vec<u8>> = raw.chunks(step).map(<[u8]>::to_vec).collect();
            if let Err(e) = lean_and_full(&chunks) {
                panic!("{} in steps of {step}: {e}", String::from_utf8_lossy(raw));
            }
        }
    }
}

#[test]
fn the_lean_stream_reader_agrees_with_the_full_decoder() {
    let event = prop_oneof![
        "[a-zA-Z é\\\\\"\n\u{1F600}]{0,12}".prop_map(|t| format!(
            "{{\"id\":\"x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}",
            serde_json::to_string(&t).unwrap()
        )),
        Just("{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}".to_string()),
        Just("{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}".to_string()),
        Just("{\"choices\":[{\"message\":{\"content\":\"m\"}},{\"delta\":{}}]}".to_string()),
        Just("{\"error\":{\"message\":\"overloaded\",\"code\":503}}".to_string()),
        Just("{\"choices\":null}".to_string()),
        Just("[DONE]".to_string()),
        "[ -~]{0,20}",
    ];
    check(
        "lean_vs_full",
        (
            proptest::collection::vec((event, 0..3usize, any::<bool>()), 0..12),
            proptest::collection::vec(any::<usize>(), 0..16),
        ),
        |(events, cuts)| {
            let mut text = String::new();
            for (data, nl, comment) in &events {
                let nl = ["\n", "\r\n", "\r"][*nl];
                if *comment {
                    text.push_str(&format!(": ping{nl}"));
                }
                // Data with a line end in it goes over several data lines, as SSE writes it.
                for part in data.split('\n') {
                    text.push_str(&format!("data: {part}{nl}"));
                }
                text.push_str(nl);
            }
            lean_and_full(&pieces(text.as_bytes(), &cuts))
        },
    );
    check(
        "lean_vs_full_any_bytes",
        (
            proptest::collection::vec(any::<u8>(), 0..400),
            proptest::collection::vec(any::<usize>(), 0..16),
        ),
        |(bytes, cuts)| lean_and_full(&pieces(&bytes, &cuts)),
    );
}
