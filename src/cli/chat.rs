//! `anorag-tui chat`: one question, the answer streamed to stdout, the facts to stderr.
use crate::provider::router::{Attempt, RouteFailure, ServedBy};
use crate::provider::timing::{ms, AnswerTiming};
use crate::provider::{ChatRequest, Message, StreamEvent, Usage};
use futures::StreamExt;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub use super::adhoc::{adhoc_config, AdhocProvider, AdhocTarget};

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// Route to ask (default: the config's default route).
    #[arg(long)]
    pub route: Option<String>,
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: Option<u32>,
    #[arg(long, value_parser = crate::input::temperature)]
    pub temperature: Option<f32>,
    /// Ask for the whole answer at once (`stream: false`).
    #[arg(long)]
    pub no_stream: bool,
    /// Print one JSON object (text, usage, timings, served_by, attempts) instead of the text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub adhoc: AdhocTarget,
    /// The question; `-` reads it from stdin.
    pub prompt: String,
}

fn read_prompt(p: &str) -> Result<String, String> {
    if p != "-" {
        return Ok(p.to_string());
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
        .map_err(|e| format!("cannot read the prompt from stdin: {e}"))?;
    Ok(s)
}

/// What a finished chat reports (stderr summary and `--json`).
struct Outcome {
    text: String,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    ttft_ms: Option<f64>,
    e2e_ms: f64,
    decode_tps: Option<f64>,
    served_by: ServedBy,
    attempts: Vec<Attempt>,
    error: Option<String>,
}

pub async fn run(explicit: Option<&Path>, a: ChatArgs) -> ExitCode {
    let cfg = match adhoc_config(&a.adhoc).await {
        Ok(Some(c)) => c,
        Ok(None) => or_exit!(super::config_or_exit(explicit)),
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    };
    let prompt = match read_prompt(&a.prompt) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let router = or_exit!(super::router_or_exit(&cfg).await);
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::system(s.clone()));
    }
    messages.push(Message::user(prompt));
    let req = ChatRequest {
        messages,
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        ..ChatRequest::default()
    };
    let route = if a.adhoc.provider.is_some() {
        None
    } else {
        a.route.as_deref()
    };
    let result = if a.no_stream {
        router.chat(route, &req).await.map(|r| Outcome {
            e2e_ms: ms(r.started.elapsed()),
            text: r.response.text,
            usage: r.response.usage,
            finish_reason: r.response.finish_reason,
            ttft_ms: None,
            decode_tps: None,
            served_by: r.served_by,
            attempts: r.attempts,
            error: None,
        })
    } else {
        stream(&router, route, &req, !a.json).await
    };
    match result {
        Ok(o) => report(&o, a.json),
        Err(f) => fail(&f, a.json),
    }
}

async fn stream(
    router: &crate::provider::Router,
    route: Option<&str>,
    req: &ChatRequest,
    echo: bool,
) -> Result<Outcome, RouteFailure> {
    let mut rs = router.chat_stream(route, req).await?;
    if echo {
        print_attempts(&rs.attempts);
    }
    let mut timing = AnswerTiming::new(rs.started);
    let mut o = Outcome {
        text: String::new(),
        usage: None,
        finish_reason: None,
        ttft_ms: None,
        e2e_ms: 0.0,
        decode_tps: None,
        served_by: rs.served_by.clone(),
        attempts: std::mem::take(&mut rs.attempts),
        error: None,
    };
    let mut out = std::io::stdout().lock();
    while let Some(ev) = rs.stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                o.error = Some(e.to_string());
                break;
            }
        };
        timing.record(&ev);
        if let StreamEvent::Delta { text, .. } = ev {
            if echo {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            o.text.push_str(&text);
        }
    }
    if echo {
        let _ = writeln!(out);
    }
    o.ttft_ms = timing.ttft().map(ms);
    o.e2e_ms = ms(timing.e2e().unwrap_or_else(|| rs.started.elapsed()));
    o.decode_tps = timing.decode_tokens_per_s();
    o.usage = timing.usage;
    o.finish_reason = timing.finish_reason.take();
    Ok(o)
}

fn print_attempts(attempts: &[Attempt]) {
    for a in attempts {
        let status = a.status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
        eprintln!(
            "[anorag] route {} failed ({}{status}): {} — {}",
            a.route, a.class, a.target, a.message
        );
    }
}

fn report(o: &Outcome, as_json: bool) -> ExitCode {
    if as_json {
        let v = json!({
            "text": o.text,
            "usage": o.usage,
            "finish_reason": o.finish_reason,
            "timings": {"ttft_ms": o.ttft_ms, "e2e_ms": o.e2e_ms, "decode_tokens_per_s": o.decode_tps},
            "served_by": o.served_by.route,
            "target": o.served_by,
            "attempts": o.attempts,
            "error": o.error,
        });
        println!("{v}");
    } else {
        if o.ttft_ms.is_none() {
            print_attempts(&o.attempts);
            println!("{}", o.text);
        }
        let s = &o.served_by;
        let fell_back = if o.attempts.is_empty() {
            String::new()
        } else {
            format!(" after {} failed attempt(s)", o.attempts.len())
        };
        eprintln!(
            "[anorag] served by route {} ({} {}, model {}){fell_back}",
            s.route, s.kind, s.base_url, s.model
        );
        let mut facts = Vec::new();
        if let Some(t) = o.ttft_ms {
            facts.push(format!("TTFT {t:.0} ms"));
        }
        if let Some(t) = o.decode_tps {
            facts.push(format!("{t:.1} tok/s"));
        }
        if let Some(u) = o.usage {
            facts.push(format!(
                "{} tokens out, {} in",
                u.completion_tokens, u.prompt_tokens
            ));
        }
        facts.push(format!("{:.0} ms total", o.e2e_ms));
        if let Some(f) = &o.finish_reason {
            facts.push(format!("finish: {f}"));
        }
        eprintln!("[anorag] {}", facts.join(" · "));
        if let Some(e) = &o.error {
            eprintln!("[anorag] error: {e}");
        }
    }
    if o.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn fail(f: &RouteFailure, as_json: bool) -> ExitCode {
    if as_json {
        println!(
            "{}",
            json!({"error": {"route": f.route, "class": f.error.class, "status": f.error.status, "message": f.error.message}, "attempts": f.attempts})
        );
    } else {
        eprintln!("error: {f}");
    }
    ExitCode::from(1)
}
