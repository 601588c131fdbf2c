//! `anorag-tui traffic`: what the gateways carry, headless: per gateway its load, errors,
//! fallbacks and overhead; per route its rate, TTFT and circuits; the recent requests with
//! their attempt chains; the events. `--watch` follows the live feeds; `--json` for scripts.
use crate::secret::Secret;
use crate::traffic::{self, FeedEvent, GatewayView};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct TrafficArgs {
    /// A gateway to read (HOST:PORT), repeatable. Default: the config's `gateway.listen` and
    /// every `kind: gateway` server profile.
    #[arg(long = "gateway", value_name = "ADDR")]
    pub gateways: Vec<String>,
    /// The environment variable holding a client key, for gateways with `keys_env`.
    #[arg(long, default_value = "ANORAG_GATEWAY_KEY", value_name = "VAR")]
    pub key_env: String,
    #[arg(long)]
    pub json: bool,
    /// Follow the live feeds, printing once a second (Ctrl-C ends).
    #[arg(long)]
    pub watch: bool,
    /// Requests listed per gateway.
    #[arg(long, default_value_t = 15)]
    pub requests: usize,
}

pub async fn run(explicit: Option<&Path>, a: TrafficArgs) -> ExitCode {
    let addrs = if a.gateways.is_empty() {
        traffic::gateways_of(&or_exit!(super::config_or_exit(explicit)))
    } else {
        a.gateways.clone()
    };
    let key = Secret::from_env(&a.key_env);
    if a.watch {
        return watch(addrs, key, &a).await;
    }
    let mut views = Vec::new();
    let mut reachable = 0;
    for addr in &addrs {
        let mut v = GatewayView::new(addr);
        match traffic::snapshot(addr, key.as_ref()).await {
            Ok((events, s)) => {
                reachable += 1;
                v.connected();
                for e in events {
                    v.apply(e);
                }
                for sec in s["seconds"].as_array().into_iter().flatten() {
                    if let Ok(sec) = serde_json::from_value(sec.clone()) {
                        v.apply(FeedEvent::Second(Box::new(sec)));
                    }
                }
            }
            Err(e) => v.disconnected(&e),
        }
        views.push(v);
    }
    if a.json {
        let out: Vec<_> = views.iter().map(|v| json_of(v, a.requests)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "gateways": out }))
                .unwrap_or_default()
        );
    } else {
        for v in &views {
            print!("{}", render(v, a.requests));
        }
    }
    if reachable == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn json_of(v: &GatewayView, n: usize) -> serde_json::Value {
    let rows: Vec<_> = v.rows().take(n).collect();
    serde_json::json!({
        "addr": v.addr,
        "up": v.up,
        "down_reason": v.down_reason,
        "last_second": v.last_second(),
        "last_minute": minute(v),
        "totals": v.totals,
        "routes": v.routes(),
        "requests": rows,
        "events": v.lines,
    })
}

/// The last 60 seconds summed.
fn minute(v: &GatewayView) -> serde_json::Value {
    let secs: Vec<_> = v.seconds.iter().rev().take(60).collect();
    let sum = |f: fn(&traffic::wire::SecondStats) -> u64| secs.iter().map(|s| f(s)).sum::<u64>();
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for s in &secs {
        for (k, n) in &s.errors {
            *errors.entry(k.clone()).or_default() += n;
        }
    }
    serde_json::json!({
        "seconds": secs.len(),
        "started": sum(|s| s.started),
        "ok": sum(|s| s.ok),
        "errors": errors,
        "cancelled": sum(|s| s.cancelled),
        "fallbacks": sum(|s| s.fallbacks),
        "refused": sum(|s| s.refused),
        "completion_tokens": sum(|s| s.completion_tokens),
    })
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}"))
}

/// One gateway as text: its line, its routes, its recent requests, its events.
pub fn render(v: &GatewayView, n: usize) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if !v.up {
        let _ = writeln!(
            o,
            "gateway {}  DOWN: {}",
            v.addr,
            v.down_reason.as_deref().unwrap_or("not reached yet")
        );
        if v.seconds.is_empty() {
            return o;
        }
    }
    let m = minute(v);
    let last = v.last_second().cloned().unwrap_or_default();
    let _ = writeln!(
        o,
        "gateway {}  {}  in flight {}, queued {}; last {} s: {} started, {} ok, errors {}, {} fallbacks, {} cancelled, {} refused; overhead p50/p99 {}/{} us",
        v.addr,
        if v.up { "up" } else { "down (last figures)" },
        last.in_flight,
        last.queued,
        m["seconds"],
        m["started"],
        m["ok"],
        m["errors"],
        m["fallbacks"],
        m["cancelled"],
        m["refused"],
        last.overhead_p50_us.map_or("-".into(), |x| format!("{x:.0}")),
        last.overhead_p99_us.map_or("-".into(), |x| format!("{x:.0}")),
    );
    let _ = writeln!(
        o,
        "  {:<14} {:>7} {:>7} {:>9} {:>17} {:>7}  CIRCUITS",
        "ROUTE", "REQ/S", "ERRORS", "FB IN/OUT", "TTFT P50/P99 MS", "TOK/S"
    );
    for r in v.routes() {
        let name = r.route.as_str();
        let rs = &r.last;
        let circuits: Vec<String> = r
            .circuits
            .iter()
            .map(|c| match c.reopens_in_ms {
                Some(ms) if c.state == "open" => format!("open {:.1} s", ms as f64 / 1000.0),
                _ => c.state.clone(),
            })
            .collect();
        let _ = writeln!(
            o,
            "  {:<14} {:>7} {:>7} {:>9} {:>17} {:>7}  {}",
            name,
            rs.requests,
            rs.errors,
            format!("{}/{}", rs.fallbacks_in, rs.fallbacks_out),
            format!("{}/{}", ms(rs.ttft_p50_ms), ms(rs.ttft_p99_ms)),
            rs.completion_tokens,
            circuits.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "  {:<8} {:<14} {:<14} {:<20} {:<19} {:>9} {:>6} {:>9}  CHAIN",
        "ID", "CLIENT", "MODEL", "ROUTE", "STAGE", "TTFT MS", "TOKENS", "MS"
    );
    for r in v.rows().take(n) {
        let route = match &r.served_by {
            Some(s) if *s != r.route => format!("{} -> {s}", r.route),
            _ => r.route.clone(),
        };
        let stage = match (&r.class, r.stage.as_str()) {
            (Some(c), "error") => format!("error {c}"),
            _ => r.stage.clone(),
        };
        let _ = writeln!(
            o,
            "  {:<8} {:<14} {:<14} {:<20} {:<19} {:>9} {:>6} {:>9}  {}",
            r.id,
            crate::format::clip(&r.client, 14),
            crate::format::clip(&r.model, 14),
            crate::format::clip(&route, 20),
            crate::format::clip(&stage, 19),
            ms(r.ttft_ms),
            r.completion_tokens,
            ms(r.duration_ms),
            r.chain
        );
    }
    for l in v.lines.iter().rev().take(8).rev() {
        let _ = writeln!(o, "  ! {}", l.text);
    }
    o
}

async fn watch(addrs: Vec<String>, key: Option<Secret>, a: &TrafficArgs) -> ExitCode {
    let w = traffic::watcher::spawn(
        addrs,
        key,
        traffic::Want::default(),
        Duration::from_millis(250),
    );
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
        let views = w.rx.borrow().clone();
        let mut out = String::new();
        for v in views.iter() {
            if a.json {
                out.push_str(&json_of(v, a.requests).to_string());
                out.push('\n');
            } else {
                out.push_str(&render(v, a.requests));
            }
        }
        if tty && !a.json {
            print!("\x1b[2J\x1b[H{out}");
        } else {
            print!("{out}");
        }
    }
}
