//! Simulator tier: the router's retries, fallbacks, circuits and deadlines, end to end through
//! the factory and real HTTP.
use anorag::config;
use anorag::provider::circuit::{CircuitPolicy, CircuitState};
use anorag::provider::factory;
use anorag::provider::router::{RouteFailure, RoutedStream, Router, RouterPolicy, Timeouts};
use anorag::provider::{ChatRequest, ErrorClass, StreamEvent};
use anorag::sim::{self, Fault, FaultKind, Flavor, SimConfig, SimHandle};
use futures::StreamExt;
use std::time::{Duration, Instant};

async fn sim_with(flavor: Flavor, faults: Vec<Fault>) -> SimHandle {
    let mut c = SimConfig::new(flavor).timing(5, 2, 8);
    c.faults = faults;
    sim::start(c).await.unwrap()
}

/// A port nothing listens on: bind, note it, close.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/v1")
}

fn quick_policy() -> RouterPolicy {
    RouterPolicy {
        max_attempts: 4,
        timeouts: Timeouts {
            connect: Duration::from_millis(500),
            headers: Duration::from_secs(5),
            first_token: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            total: Duration::from_secs(20),
        },
        max_wait: Duration::from_secs(5),
        backoff_base: Duration::from_millis(50),
    }
}

async fn router(yaml: &str, policy: RouterPolicy, circuit: CircuitPolicy) -> Router {
    let cfg = config::load_str(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    factory::build_with(&cfg, policy, circuit).await.unwrap()
}

fn two_routes(primary: &str, fallback: &str) -> String {
    format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      primary: {{base_url: {primary}, model: qwen2_5_0_5b, fallback: [backup]}}\n      backup: {{base_url: {fallback}, model: qwen2_5_0_5b}}\n    default_route: primary\n"
    )
}

/// A primary with these faults, a healthy backup it falls back to, and the router over both.
async fn primary_and_backup(faults: Vec<Fault>) -> (SimHandle, SimHandle, Router) {
    let primary = sim_with(Flavor::Vllm, faults).await;
    let backup = sim_with(Flavor::Vllm, vec![]).await;
    let r = router(
        &two_routes(&primary.base_url(), &backup.base_url()),
        quick_policy(),
        CircuitPolicy::default(),
    )
    .await;
    (primary, backup, r)
}

/// The simulator's answer with this status (and `Retry-After` seconds).
fn status(code: u16, retry_after: Option<f64>) -> Fault {
    Fault::new(FaultKind::Status { code, retry_after })
}

/// A router of one route on `s`, with the default circuit.
async fn only_route(s: &SimHandle, policy: RouterPolicy) -> Router {
    router(&one_route(&s.base_url()), policy, CircuitPolicy::default()).await
}

/// One streamed question to the default route.
async fn ask(r: &Router) -> Result<RoutedStream, RouteFailure> {
    r.chat_stream(None, &ChatRequest::prompt("hi")).await
}

fn one_route(url: &str) -> String {
    format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      only: {{base_url: {url}, model: qwen2_5_0_5b}}\n"
    )
}

async fn collect(
    mut s: anorag::provider::EventStream,
) -> (String, Option<anorag::provider::ProviderError>) {
    let mut text = String::new();
    while let Some(ev) = s.next().await {
        match ev {
            Ok(StreamEvent::Delta { text: t, .. }) => text.push_str(&t),
            Ok(_) => {}
            Err(e) => return (text, Some(e)),
        }
    }
    (text, None)
}

#[tokio::test]
async fn refused_primary_is_answered_by_the_fallback_with_the_attempt_reported() {
    let backup = sim_with(Flavor::Vllm, vec![]).await;
    let r = router(
        &two_routes(&dead_url(), &backup.base_url()),
        quick_policy(),
        CircuitPolicy::default(),
    )
    .await;
    let rs = ask(&r).await.unwrap();
    assert_eq!(rs.served_by.route, "backup");
    assert_eq!(rs.attempts.len(), 1, "{:?}", rs.attempts);
    assert_eq!(rs.attempts[0].route, "primary");
    assert_eq!(rs.attempts[0].class, ErrorClass::Connect);
    assert!(
        rs.attempts[0].message.contains("refused"),
        "{}",
        rs.attempts[0].message
    );
    let (text, err) = collect(rs.stream).await;
    assert!(err.is_none() && !text.is_empty());

    // The refused target's circuit opened at once: the next request does not knock again.
    let rs = ask(&r).await.unwrap();
    assert_eq!(rs.served_by.route, "backup");
    assert_eq!(rs.attempts[0].class, ErrorClass::CircuitOpen);
    let (_, circuit) = &r.circuits("primary")[0];
    assert_eq!(circuit.state, CircuitState::Open);

    // Non-streamed answers take the same path.
    let rr = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap();
    assert_eq!(rr.served_by.route, "backup");
}

#[tokio::test]
async fn fallbacks_of_fallbacks_are_followed_each_route_once() {
    // large -> [tiny], tiny -> [spare, large]: a request to large walks large, tiny, spare
    // (tiny's own fallback), never large twice, and the cycle back to large ends there.
    let spare = sim_with(Flavor::Vllm, vec![]).await;
    let (d1, d2) = (dead_url(), dead_url());
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      \
         large: {{base_url: {d1}, model: m, fallback: [tiny]}}\n      \
         tiny: {{base_url: {d2}, model: m, fallback: [spare, large]}}\n      \
         spare: {{base_url: {}, model: qwen2_5_0_5b}}\n    default_route: large\n",
        spare.base_url()
    );
    let r = router(&yaml, quick_policy(), CircuitPolicy::default()).await;
    let plan: Vec<String> = r
        .plan(r.route("large").unwrap())
        .iter()
        .map(|x| x.name.clone())
        .collect();
    assert_eq!(plan, ["large", "tiny", "spare"]);
    let rs = ask(&r).await.unwrap();
    assert_eq!(rs.served_by.route, "spare");
    let tried: Vec<&str> = rs.attempts.iter().map(|a| a.route.as_str()).collect();
    assert_eq!(tried, ["large", "tiny"]);
}

#[tokio::test]
async fn retry_after_on_503_is_honoured_before_trying_again() {
    let s = sim_with(Flavor::Vllm, vec![status(503, Some(1.0)).count(1)]).await;
    let r = only_route(&s, quick_policy()).await;
    let t0 = Instant::now();
    let rs = ask(&r).await.unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "retried after only {waited:?}"
    );
    assert_eq!(rs.attempts.len(), 1);
    assert_eq!(rs.attempts[0].class, ErrorClass::Overloaded);
    assert_eq!(rs.attempts[0].status, Some(503));
    let (text, err) = collect(rs.stream).await;
    assert!(err.is_none() && !text.is_empty());
    assert_eq!(s.stats().requests, 2);
}

#[tokio::test]
async fn retry_after_longer_than_the_wait_bound_fails_at_once() {
    let s = sim_with(Flavor::Vllm, vec![status(429, Some(60.0))]).await;
    let r = only_route(&s, quick_policy()).await;
    let t0 = Instant::now();
    let f = ask(&r).await.err().unwrap();
    // Waiting would take the whole minute the server asked for; half of it is no speed claim.
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(f.error.class, ErrorClass::RateLimited);
    assert_eq!(
        s.stats().requests,
        1,
        "no request before Retry-After passes"
    );
}

#[tokio::test]
async fn a_stream_failing_after_its_first_content_ends_in_band_and_is_not_retried() {
    let (primary, backup, r) =
        primary_and_backup(vec![Fault::new(FaultKind::Reset { after: 3 })]).await;
    let rs = ask(&r).await.unwrap();
    assert_eq!(rs.served_by.route, "primary");
    let (text, err) = collect(rs.stream).await;
    let err = err.expect("an in-band error, not a silent truncation");
    assert_eq!(err.class, ErrorClass::StreamBroken, "{err}");
    assert!(err.message.contains("not retried"), "{err}");
    assert_eq!(
        text, "This answer comes",
        "exactly the three delivered tokens, no duplicate"
    );
    assert_eq!(primary.stats().requests, 1);
    assert_eq!(
        backup.stats().requests,
        0,
        "no fallback after content was delivered"
    );
}

#[tokio::test]
async fn failure_before_first_content_falls_back_without_the_caller_seeing_it() {
    // Reset before any content: nothing reached the caller, so fallback is allowed.
    let (_primary, _backup, r) =
        primary_and_backup(vec![Fault::new(FaultKind::Reset { after: 0 })]).await;
    let rs = ask(&r).await.unwrap();
    assert_eq!(rs.served_by.route, "backup");
    assert_eq!(rs.attempts[0].class, ErrorClass::StreamBroken);
    let (text, err) = collect(rs.stream).await;
    assert!(err.is_none());
    assert!(text.starts_with("This answer"));
}

#[tokio::test]
async fn circuit_opens_after_repeated_failures_and_closes_after_a_half_open_probe() {
    let s = sim_with(Flavor::Vllm, vec![status(500, None).count(3)]).await;
    let policy = RouterPolicy {
        max_attempts: 1,
        max_wait: Duration::ZERO,
        ..quick_policy()
    };
    let circuit = CircuitPolicy {
        failure_threshold: 3,
        base_cooldown: Duration::from_millis(400),
        ..CircuitPolicy::default()
    };
    let r = router(&one_route(&s.base_url()), policy, circuit).await;
    for i in 0..3 {
        let f = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap_err();
        assert_eq!(f.error.class, ErrorClass::Server, "failure {i}");
        let want = if i < 2 {
            CircuitState::Closed
        } else {
            CircuitState::Open
        };
        assert_eq!(r.circuits("only")[0].1.state, want, "after failure {i}");
    }
    // Open: refused without a request reaching the server.
    let f = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap_err();
    assert_eq!(f.error.class, ErrorClass::CircuitOpen);
    assert_eq!(s.stats().requests, 3);

    tokio::time::sleep(Duration::from_millis(450)).await;
    // Cooldown over: a /health probe, then the request itself.
    let ok = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap();
    assert_eq!(ok.served_by.route, "only");
    assert_eq!(s.stats().requests, 4);
    let snap = &r.circuits("only")[0].1;
    assert_eq!(snap.state, CircuitState::Closed);
    assert_eq!(snap.consecutive_failures, 0);
}

#[tokio::test]
async fn a_failed_half_open_probe_reopens_with_a_longer_cooldown() {
    let s = sim_with(Flavor::Vllm, vec![]).await;
    let circuit = CircuitPolicy {
        base_cooldown: Duration::from_millis(200),
        ..CircuitPolicy::default()
    };
    let policy = RouterPolicy {
        max_attempts: 1,
        max_wait: Duration::ZERO,
        ..quick_policy()
    };
    let r = router(&one_route(&s.base_url()), policy, circuit).await;
    s.set_refusing(true);
    let f = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap_err();
    assert_eq!(f.error.class, ErrorClass::Connect);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let f = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap_err();
    assert!(
        f.attempts
            .iter()
            .any(|a| a.message.contains("half-open probe failed")),
        "{f}"
    );
    let snap = &r.circuits("only")[0].1;
    assert_eq!(snap.state, CircuitState::Open);
    assert_eq!(snap.trips, 2);
    assert!(snap.reopens_in_ms.unwrap() > 200, "cooldown grew: {snap:?}");
}

#[tokio::test]
async fn the_total_deadline_holds_before_and_after_commit() {
    let mut p = quick_policy();
    p.timeouts.total = Duration::from_millis(800);
    p.timeouts.headers = Duration::from_secs(30);
    p.timeouts.idle = Duration::from_secs(30);

    // Headers held back for 5 s: the request gives up at the deadline, not at 5 s.
    let slow = sim_with(
        Flavor::Vllm,
        vec![Fault::new(FaultKind::SlowHeaders { ms: 5000 })],
    )
    .await;
    let r = router(
        &one_route(&slow.base_url()),
        p.clone(),
        CircuitPolicy::default(),
    )
    .await;
    let t0 = Instant::now();
    let f = ask(&r).await.err().unwrap();
    let took = t0.elapsed();
    // The class says the deadline ended it (the server would answer after 5 s); it never
    // fires early.
    assert_eq!(f.error.class, ErrorClass::TotalTimeout, "{f}");
    assert!(took >= Duration::from_millis(800), "{took:?}");

    // A stream that stalls forever after two tokens ends with an error at the deadline.
    let stall = sim_with(
        Flavor::Vllm,
        vec![Fault::new(FaultKind::Stall { after: 2, ms: None })],
    )
    .await;
    let r = only_route(&stall, p).await;
    let t0 = Instant::now();
    let rs = ask(&r).await.unwrap();
    let (text, err) = collect(rs.stream).await;
    let took = t0.elapsed();
    assert_eq!(text, "This answer");
    assert_eq!(err.unwrap().class, ErrorClass::TotalTimeout);
    assert!(took >= Duration::from_millis(800), "{took:?}");
}

#[tokio::test]
async fn idle_gap_and_first_token_timeouts_are_separate() {
    let mut p = quick_policy();
    p.timeouts.idle = Duration::from_millis(300);
    let stall = sim_with(
        Flavor::Vllm,
        vec![Fault::new(FaultKind::Stall { after: 2, ms: None })],
    )
    .await;
    let r = router(
        &one_route(&stall.base_url()),
        p.clone(),
        CircuitPolicy::default(),
    )
    .await;
    let rs = ask(&r).await.unwrap();
    let (_, err) = collect(rs.stream).await;
    assert_eq!(err.unwrap().class, ErrorClass::IdleTimeout);

    let mut p = quick_policy();
    p.timeouts.first_token = Duration::from_millis(300);
    p.max_attempts = 1;
    let stall0 = sim_with(
        Flavor::Vllm,
        vec![Fault::new(FaultKind::Stall { after: 0, ms: None })],
    )
    .await;
    let r = only_route(&stall0, p).await;
    let f = ask(&r).await.err().unwrap();
    assert_eq!(f.error.class, ErrorClass::FirstTokenTimeout, "{f}");
}

#[tokio::test]
async fn bad_requests_return_to_the_caller_without_fallback() {
    let (_primary, backup, r) = primary_and_backup(vec![]).await;
    let req = ChatRequest {
        max_tokens: Some(100_000),
        ..ChatRequest::prompt("hi")
    };
    let f = r.chat_stream(None, &req).await.err().unwrap();
    assert_eq!(f.error.class, ErrorClass::ContextLength);
    assert_eq!(backup.stats().requests, 0);
    assert_eq!(
        r.circuits("primary")[0].1.state,
        CircuitState::Closed,
        "the caller's fault, not the target's"
    );
}

#[tokio::test]
async fn the_attempt_budget_is_shared_across_the_whole_chain() {
    let a = sim_with(Flavor::Vllm, vec![status(502, None)]).await;
    let b = sim_with(Flavor::Vllm, vec![status(502, None)]).await;
    let policy = RouterPolicy {
        max_attempts: 3,
        ..quick_policy()
    };
    let r = router(
        &two_routes(&a.base_url(), &b.base_url()),
        policy,
        CircuitPolicy::default(),
    )
    .await;
    let f = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap_err();
    assert_eq!(f.attempts.len(), 3, "{f}");
    assert_eq!(a.stats().requests + b.stats().requests, 3);
}

#[tokio::test]
async fn ollama_pool_prefers_least_in_flight_and_skips_unhealthy_instances() {
    let mk = |ttft| async move {
        sim::start(SimConfig::new(Flavor::Ollama).timing(ttft, 5, 40))
            .await
            .unwrap()
    };
    let (a, b, c) = (mk(5).await, mk(5).await, mk(5).await);
    let yaml = format!(
        "llm:\n  provider: multi_ollama\n  multi_ollama:\n    instances: [{}, {}, {}]\n    model: qwen2.5:0.5b\n",
        a.base_url(),
        b.base_url(),
        c.base_url()
    );
    let r = router(&yaml, quick_policy(), CircuitPolicy::default()).await;
    // Three concurrent streams land on three different instances.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            r.chat_stream(None, &ChatRequest::prompt("hi"))
                .await
                .unwrap(),
        );
    }
    let mut used: Vec<String> = open.iter().map(|s| s.served_by.base_url.clone()).collect();
    used.sort();
    used.dedup();
    assert_eq!(used.len(), 3, "{used:?}");
    drop(open);

    // One instance goes down: requests keep being answered by the others.
    b.set_refusing(true);
    for _ in 0..6 {
        let rs = ask(&r).await.unwrap();
        assert_ne!(rs.served_by.base_url, b.base_url());
        let (_, err) = collect(rs.stream).await;
        assert!(err.is_none());
    }
    assert_eq!(r.circuits("multi_ollama")[1].1.state, CircuitState::Open);
}

#[tokio::test]
async fn unknown_route_is_a_clear_error() {
    let s = sim_with(Flavor::Vllm, vec![]).await;
    let r = only_route(&s, quick_policy()).await;
    let f = r
        .chat(Some("nope"), &ChatRequest::prompt("x"))
        .await
        .unwrap_err();
    assert!(f.to_string().contains("unknown route `nope`"), "{f}");
    assert!(f.to_string().contains("only"), "{f}");
}

#[tokio::test]
async fn a_missing_model_is_tried_once_per_target_then_falls_back() {
    let primary = sim_with(Flavor::Vllm, vec![]).await;
    let backup = sim::start(SimConfig::new(Flavor::Vllm).model("other").timing(1, 1, 4))
        .await
        .unwrap();
    let yaml = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      primary: {{base_url: {}, model: not-loaded-here, fallback: [backup]}}\n      backup: {{base_url: {}, model: other}}\n",
        primary.base_url(),
        backup.base_url()
    );
    let r = router(&yaml, quick_policy(), CircuitPolicy::default()).await;
    let rr = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap();
    assert_eq!(rr.served_by.route, "backup");
    assert_eq!(rr.attempts.len(), 1);
    assert_eq!(rr.attempts[0].class, ErrorClass::NotFound);

    let only = format!(
        "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      only: {{base_url: {}, model: nope}}\n",
        primary.base_url()
    );
    let before = primary.stats().requests;
    let r = router(&only, quick_policy(), CircuitPolicy::default()).await;
    let f = r.chat(None, &ChatRequest::prompt("hi")).await.unwrap_err();
    assert_eq!(f.error.class, ErrorClass::NotFound);
    assert_eq!(
        primary.stats().requests - before,
        1,
        "no pointless retries of a 404"
    );
}

#[tokio::test]
async fn local_llm_generate_answers_on_the_default_route() {
    let s = sim_with(Flavor::Vllm, vec![]).await;
    let cfg = config::load_str(&one_route(&s.base_url()), "t.yaml").unwrap();
    let llm = anorag::provider::LocalLlm::new(&cfg).await.unwrap();
    let text = llm.generate("hello").await.unwrap();
    assert_eq!(
        text,
        "This answer comes from the anorag-tui built-in simulator."
    );
}

#[tokio::test]
async fn a_malformed_chunk_after_commit_ends_the_stream_with_an_error() {
    let s = sim_with(
        Flavor::Vllm,
        vec![Fault::new(FaultKind::Malformed { after: 2 })],
    )
    .await;
    let r = only_route(&s, quick_policy()).await;
    let rs = ask(&r).await.unwrap();
    let (text, err) = collect(rs.stream).await;
    assert_eq!(text, "This answer");
    let err = err.unwrap();
    assert_eq!(err.class, ErrorClass::StreamBroken);
    assert!(err.message.contains("malformed"), "{err}");
}
