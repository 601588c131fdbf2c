//! Simulator tier: each provider kind against the simulator over real HTTP on 127.0.0.1.
use anorag::provider::factory::http_client;
use anorag::provider::ollama::OllamaClient;
use anorag::provider::openai::OpenAiCompat;
use anorag::provider::{
    ChatRequest, ErrorClass, EventStream, Provider, ProviderKind, SamplingDefaults, StreamEvent,
    Usage,
};
use anorag::secret::Secret;
use anorag::sim::{self, Flavor, SimConfig, SimHandle};
use futures::StreamExt;
use std::time::{Duration, Instant};

async fn sim(flavor: Flavor, ttft: u64, itl: u64, tokens: u32) -> SimHandle {
    sim::start(SimConfig::new(flavor).timing(ttft, itl, tokens))
        .await
        .expect("simulator starts")
}

fn client() -> reqwest::Client {
    http_client(Duration::from_secs(2)).unwrap()
}

fn provider_for(s: &SimHandle, kind: ProviderKind, key: Option<Secret>) -> Box<dyn Provider> {
    let d = SamplingDefaults::default();
    match kind {
        ProviderKind::Ollama => Box::new(OllamaClient::new(&s.base_url(), s.model(), client(), d)),
        k => Box::new(OpenAiCompat::new(
            k,
            &s.base_url(),
            s.model(),
            client(),
            key,
            d,
        )),
    }
}

/// Reads a stream to its end: (text, usage, content events, first/last arrival).
async fn drain(mut st: EventStream) -> (String, Option<Usage>, usize, Option<String>) {
    let mut text = String::new();
    let (mut usage, mut n, mut finish) = (None, 0, None);
    while let Some(ev) = st.next().await {
        match ev.expect("no stream error") {
            StreamEvent::Delta {
                text: t,
                finish_reason,
                ..
            } => {
                if !t.is_empty() {
                    n += 1;
                }
                text.push_str(&t);
                if finish_reason.is_some() {
                    finish = finish_reason;
                }
            }
            StreamEvent::Usage { usage: u, .. } => usage = Some(u),
        }
    }
    (text, usage, n, finish)
}

#[tokio::test]
async fn every_provider_kind_streams_and_answers_with_usage() {
    for (flavor, kind) in [
        (Flavor::Vllm, ProviderKind::VllmOpenai),
        (Flavor::Openai, ProviderKind::Openai),
        (Flavor::Ollama, ProviderKind::Ollama),
    ] {
        let s = sim(flavor, 5, 1, 12).await;
        let p = provider_for(&s, kind, None);
        let req = ChatRequest {
            max_tokens: Some(7),
            ..ChatRequest::prompt("Say hello")
        };

        let (text, usage, content_events, finish) = drain(p.chat_stream(&req).await.unwrap()).await;
        let usage = usage.unwrap_or_else(|| panic!("{kind}: no usage"));
        assert_eq!(usage.completion_tokens, 7, "{kind}");
        assert!(usage.prompt_tokens > 0, "{kind}");
        assert_eq!(content_events, 7, "{kind}");
        assert_eq!(finish.as_deref(), Some("length"), "{kind}");
        assert!(text.starts_with("This answer"), "{kind}: {text}");

        let r = p.chat(&req).await.unwrap();
        assert_eq!(r.text, text, "{kind}: streamed and whole answers agree");
        assert_eq!(r.usage.unwrap().completion_tokens, 7, "{kind}");
        assert_eq!(r.finish_reason.as_deref(), Some("length"), "{kind}");

        assert_eq!(
            p.list_models().await.unwrap(),
            vec![s.model().to_string()],
            "{kind}"
        );
        p.health().await.unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[tokio::test]
async fn each_dialect_sends_its_own_token_budget_field_and_asks_for_usage() {
    let req = ChatRequest {
        max_tokens: Some(5),
        ignore_eos: true,
        ..ChatRequest::prompt("x")
    };
    let s = sim(Flavor::Vllm, 1, 1, 8).await;
    drain(
        provider_for(&s, ProviderKind::VllmOpenai, None)
            .chat_stream(&req)
            .await
            .unwrap(),
    )
    .await;
    let body = s.last_request().unwrap();
    assert_eq!(body["max_tokens"], 5);
    assert!(body.get("max_completion_tokens").is_none());
    assert_eq!(body["ignore_eos"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);

    let s = sim(Flavor::Openai, 1, 1, 8).await;
    drain(
        provider_for(&s, ProviderKind::Openai, None)
            .chat_stream(&req)
            .await
            .unwrap(),
    )
    .await;
    let body = s.last_request().unwrap();
    assert_eq!(body["max_completion_tokens"], 5);
    assert!(
        body.get("max_tokens").is_none(),
        "OpenAI rejects max_tokens on new models"
    );
    assert!(
        body.get("ignore_eos").is_none(),
        "OpenAI rejects unknown fields"
    );

    let s = sim(Flavor::Ollama, 1, 1, 8).await;
    drain(
        provider_for(&s, ProviderKind::Ollama, None)
            .chat_stream(&req)
            .await
            .unwrap(),
    )
    .await;
    let body = s.last_request().unwrap();
    assert_eq!(body["options"]["num_predict"], 5);
    assert_eq!(body["stream"], true);
}

#[tokio::test]
async fn route_defaults_fill_unset_request_fields() {
    let s = sim(Flavor::Vllm, 1, 1, 8).await;
    let d = SamplingDefaults {
        temperature: Some(0.0),
        top_p: Some(1.0),
        max_tokens: Some(3),
    };
    let p = OpenAiCompat::new(
        ProviderKind::VllmOpenai,
        &s.base_url(),
        s.model(),
        client(),
        None,
        d,
    );
    let r = p.chat(&ChatRequest::prompt("x")).await.unwrap();
    assert_eq!(r.usage.unwrap().completion_tokens, 3);
    let body = s.last_request().unwrap();
    assert_eq!(body["temperature"], 0.0);
    let r = p
        .chat(&ChatRequest {
            max_tokens: Some(6),
            ..ChatRequest::prompt("x")
        })
        .await
        .unwrap();
    assert_eq!(
        r.usage.unwrap().completion_tokens,
        6,
        "the request's own value wins"
    );
}

#[tokio::test]
async fn api_key_goes_in_the_header_and_never_in_debug_output() {
    let mut cfg = SimConfig::new(Flavor::Vllm).timing(1, 1, 4);
    cfg.api_key = Some(Secret::new("sk-test-very-secret"));
    let s = sim::start(cfg).await.unwrap();
    let with = provider_for(
        &s,
        ProviderKind::VllmOpenai,
        Some(Secret::new("sk-test-very-secret")),
    );
    with.chat(&ChatRequest::prompt("x")).await.unwrap();
    let without = provider_for(&s, ProviderKind::VllmOpenai, None);
    let e = without.chat(&ChatRequest::prompt("x")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Auth);
    assert_eq!(e.status, Some(401));
    let shown = format!(
        "{:?}",
        OpenAiCompat::new(
            ProviderKind::VllmOpenai,
            &s.base_url(),
            "m",
            client(),
            Some(Secret::new("sk-test-very-secret")),
            SamplingDefaults::default()
        )
    );
    assert!(!shown.contains("very-secret"), "{shown}");
}

#[tokio::test]
async fn unknown_model_and_context_overflow_are_classified_from_the_wire() {
    for (flavor, kind) in [
        (Flavor::Vllm, ProviderKind::VllmOpenai),
        (Flavor::Openai, ProviderKind::Openai),
        (Flavor::Ollama, ProviderKind::Ollama),
    ] {
        let s = sim(flavor, 1, 1, 4).await;
        let p = provider_for(&s, kind, None);
        let req = ChatRequest {
            model: Some("no-such-model".into()),
            ..ChatRequest::prompt("x")
        };
        let e = p.chat_stream(&req).await.err().unwrap();
        assert_eq!(e.class, ErrorClass::NotFound, "{kind}: {e}");
    }
    let s = sim(Flavor::Vllm, 1, 1, 4).await;
    let p = provider_for(&s, ProviderKind::VllmOpenai, None);
    let req = ChatRequest {
        max_tokens: Some(100_000),
        ..ChatRequest::prompt("x")
    };
    let e = p.chat_stream(&req).await.err().unwrap();
    assert_eq!(e.class, ErrorClass::ContextLength, "{e}");
    assert!(e.message.contains("max_model_len"), "{e}");
}

/// Waits (bounded) for the simulator to see the client go away.
async fn wait_aborted(s: &SimHandle, n: u64) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let st = s.stats();
        if st.aborted >= n && st.active == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "server still streaming after the client dropped: {:?}",
        s.stats()
    );
}

#[tokio::test]
async fn dropping_a_stream_closes_the_connection() {
    for (flavor, kind) in [
        (Flavor::Vllm, ProviderKind::VllmOpenai),
        (Flavor::Ollama, ProviderKind::Ollama),
    ] {
        let s = sim(flavor, 5, 20, 500).await;
        let p = provider_for(&s, kind, None);
        let mut st = p.chat_stream(&ChatRequest::prompt("x")).await.unwrap();
        let mut got = 0;
        while got < 3 {
            if let Some(Ok(StreamEvent::Delta { text, .. })) = st.next().await {
                if !text.is_empty() {
                    got += 1;
                }
            }
        }
        assert_eq!(s.stats().active, 1);
        drop(st);
        wait_aborted(&s, 1).await;
        assert_eq!(s.stats().completed, 0, "{kind}");
    }
}

#[tokio::test]
async fn chunks_are_stamped_on_arrival_on_the_simulators_schedule() {
    let s = sim(Flavor::Vllm, 60, 20, 6).await;
    let p = provider_for(&s, ProviderKind::VllmOpenai, None);
    let t0 = Instant::now();
    let mut st = p.chat_stream(&ChatRequest::prompt("x")).await.unwrap();
    let mut stamps = Vec::new();
    while let Some(ev) = st.next().await {
        if let StreamEvent::Delta { text, at, .. } = ev.unwrap() {
            if !text.is_empty() {
                stamps.push(at.duration_since(t0));
            }
        }
    }
    assert_eq!(stamps.len(), 6);
    assert!(stamps[0] >= Duration::from_millis(60), "{stamps:?}");
    for w in stamps.windows(2) {
        assert!(w[1] > w[0], "monotonic: {stamps:?}");
    }
    // The simulator writes on an absolute schedule: the sixth chunk cannot come before
    // 60 + 5 x 20 ms, however late the first one was read on a busy machine.
    assert!(
        stamps[5] >= Duration::from_millis(160),
        "5 gaps of 20 ms: {stamps:?}"
    );
}

/// An event or line larger than any real chunk ends the stream with an error that names the
/// cap, after the content before it, instead of growing without bound.
#[tokio::test]
async fn an_oversized_event_is_an_error_naming_the_cap() {
    for (flavor, kind, what) in [
        (Flavor::Vllm, ProviderKind::VllmOpenai, "one SSE event"),
        (Flavor::Ollama, ProviderKind::Ollama, "one NDJSON line"),
    ] {
        let mut c = SimConfig::new(flavor).timing(1, 1, 8);
        c.faults = vec!["oversize,after=2".parse().unwrap()];
        let s = sim::start(c).await.unwrap();
        let p = provider_for(&s, kind, None);
        let mut st = p.chat_stream(&ChatRequest::prompt("hi")).await.unwrap();
        let (mut content, mut err) = (0, None);
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), st.next())
            .await
            .expect("no hang")
        {
            match ev {
                Ok(StreamEvent::Delta { text, .. }) if !text.is_empty() => content += 1,
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let e = err.unwrap_or_else(|| panic!("{kind:?}: no error"));
        assert_eq!(e.class, ErrorClass::Decode, "{kind:?}: {e:?}");
        assert!(
            e.message.contains(what) && e.message.contains("over the 1.0 MiB cap"),
            "{kind:?}: {}",
            e.message
        );
        assert_eq!(content, 2, "{kind:?}: the chunks before it arrive");
    }
}
