//! Checks serde cannot make: URLs, route references, ranges, collisions.
use super::locate::{Path, Problem, Seg};
use super::schema::*;
use super::ProviderKind;
use std::collections::HashSet;

/// The longest timer a config may set, in milliseconds.
const MAX_MS: u64 = crate::input::MAX_SECONDS as u64 * 1000;

fn p(base: &Path, rest: &[&str]) -> Path {
    let mut v = base.clone();
    v.extend(rest.iter().map(|s| Seg::Key(s.to_string())));
    v
}

fn idx(base: &Path, i: usize) -> Path {
    let mut v = base.clone();
    v.push(Seg::Index(i));
    v
}

pub fn validate(cfg: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    llm(cfg, &mut out);
    super::servers::validate(cfg, &mut out);
    sources(cfg, &mut out);
    tui_and_telemetry(cfg, &mut out);
    let route_names: Vec<String> = cfg.routes().iter().map(|r| r.name.clone()).collect();
    let known = |n: &str| route_names.iter().any(|x| x == n);
    check_gateway(&cfg.gateway, &known, &route_names, &mut out);
    router(cfg, &mut out);
    out
}

/// The provider blocks and their routes: each present, each route's model and URLs, and
/// fallback chains that name known routes.
fn llm(cfg: &Config, out: &mut Vec<Problem>) {
    let l = &cfg.llm;
    let llm: Path = vec![Seg::Key("llm".into())];
    let present = match l.provider {
        ProviderName::VllmOpenai => l.vllm_openai.is_some(),
        ProviderName::Openai => l.openai.is_some(),
        ProviderName::Ollama => l.ollama.is_some(),
        ProviderName::MultiOllama => l.multi_ollama.is_some(),
        ProviderName::Builtin => l.builtin.is_some(),
    };
    if !present {
        out.push((
            p(&llm, &["provider"]),
            false,
            format!(
                "provider `{0}` has no `llm.{0}` block to use",
                l.provider.key()
            ),
        ));
    }

    if let Some(v) = &l.vllm_openai {
        vllm_block(l, v, &p(&llm, &["vllm_openai"]), out);
    }
    if let Some(o) = &l.ollama {
        check_params(&o.params, &p(&llm, &["ollama", "params"]), out);
    }
    if let Some(m) = &l.multi_ollama {
        multi_ollama_block(m, &p(&llm, &["multi_ollama"]), out);
    }
    if let Some(o) = &l.openai {
        let base = p(&llm, &["openai"]);
        check_key_env(&o.api_key_env, &p(&base, &["api_key_env"]), out);
        check_params(&o.params, &p(&base, &["params"]), out);
    }
    if let Some(b) = &l.builtin {
        let base = p(&llm, &["builtin"]);
        if b.tokens == 0 {
            out.push((p(&base, &["tokens"]), false, "must be at least 1".into()));
        }
        for (k, v) in [("ttft_ms", b.ttft_ms), ("itl_ms", b.itl_ms)] {
            if v > 600_000 {
                out.push((
                    p(&base, &[k]),
                    false,
                    format!("{v} ms is more than 10 minutes"),
                ));
            }
        }
        check_params(&b.params, &p(&base, &["params"]), out);
    }

    each_route(cfg, out);
}

/// `llm.vllm_openai`: routes present, a known default, and route names that no other
/// block takes.
fn vllm_block(l: &LlmConfig, v: &VllmOpenAi, base: &Path, out: &mut Vec<Problem>) {
    if v.routes.is_empty() {
        out.push((
            p(base, &["routes"]),
            false,
            "needs at least one route".into(),
        ));
    }
    if let Some(d) = &v.default_route {
        if !v.routes.contains_key(d) {
            out.push((
                p(base, &["default_route"]),
                false,
                format!(
                    "unknown route `{d}` (vllm_openai routes: {})",
                    v.routes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    check_params(&v.params, &p(base, &["params"]), out);
    if let Some(e) = &v.api_key_env {
        check_key_env(e, &p(base, &["api_key_env"]), out);
    }
    for (name, r) in &v.routes {
        let rp = p(base, &["routes", name]);
        for reserved in ["ollama", "multi_ollama", "openai", "builtin"] {
            let block_exists = match reserved {
                "ollama" => l.ollama.is_some(),
                "multi_ollama" => l.multi_ollama.is_some(),
                "openai" => l.openai.is_some(),
                _ => l.builtin.is_some(),
            };
            if name == reserved && block_exists {
                out.push((
                    rp.clone(),
                    true,
                    format!("route name `{name}` is taken by the `llm.{name}` block"),
                ));
            }
        }
        if let Some(pr) = &r.params {
            check_params(pr, &p(&rp, &["params"]), out);
        }
        if let Some(e) = &r.api_key_env {
            check_key_env(e, &p(&rp, &["api_key_env"]), out);
        }
    }
}

/// `llm.multi_ollama`: at least one instance, none twice.
fn multi_ollama_block(m: &MultiOllama, base: &Path, out: &mut Vec<Problem>) {
    if m.instances.is_empty() {
        out.push((
            p(base, &["instances"]),
            false,
            "needs at least one instance URL".into(),
        ));
    }
    let mut seen = HashSet::new();
    for (i, u) in m.instances.iter().enumerate() {
        if !seen.insert(u.trim_end_matches('/')) {
            out.push((
                idx(&p(base, &["instances"]), i),
                false,
                format!("`{u}` is listed twice"),
            ));
        }
    }
    check_params(&m.params, &p(base, &["params"]), out);
}

/// Each route: its model, its URLs, and a fallback chain of known routes.
fn each_route(cfg: &Config, out: &mut Vec<Problem>) {
    let routes = cfg.routes();
    let route_names: Vec<String> = routes.iter().map(|r| r.name.clone()).collect();
    let known = |n: &str| route_names.iter().any(|x| x == n);
    for r in &routes {
        if r.model.trim().is_empty() {
            out.push((p(&r.path, &["model"]), false, "must not be empty".into()));
        }
        for (i, url) in r.urls.iter().enumerate() {
            let at = if r.name == "multi_ollama" {
                idx(&p(&r.path, &["instances"]), i)
            } else {
                p(&r.path, &["base_url"])
            };
            if let Err(msg) = check_url(url, r.kind) {
                out.push((at, false, msg));
            }
        }
        for (field, list) in [
            ("fallback", &r.fallback),
            ("context_fallback", &r.context_fallback),
        ] {
            let mut seen = HashSet::new();
            for (i, target) in list.iter().enumerate() {
                let at = idx(&p(&r.path, &[field]), i);
                if target == &r.name {
                    out.push((
                        at,
                        false,
                        format!("route `{}` cannot fall back to itself", r.name),
                    ));
                } else if !known(target) {
                    out.push((
                        at,
                        false,
                        format!(
                            "unknown route `{target}` (routes: {})",
                            route_names.join(", ")
                        ),
                    ));
                } else if !seen.insert(target) {
                    out.push((at, false, format!("`{target}` is listed twice")));
                }
            }
        }
    }
}

/// GPU sources and clusters: unique names, addresses, token variables.
fn sources(cfg: &Config, out: &mut Vec<Problem>) {
    let mut names = HashSet::new();
    for (i, g) in cfg.gpu_sources.iter().enumerate() {
        let at = idx(&vec![Seg::Key("gpu_sources".into())], i);
        if g.name.trim().is_empty() || g.name == "local" {
            out.push((
                p(&at, &["name"]),
                false,
                "needs a name other than `local` (this machine)".into(),
            ));
        } else if !names.insert(g.name.as_str()) {
            out.push((
                p(&at, &["name"]),
                false,
                format!("`{}` is used twice", g.name),
            ));
        }
        match url::Url::parse(&g.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => out.push((
                p(&at, &["url"]),
                false,
                format!(
                    "`{}` is not an http(s) URL of a DCGM exporter (e.g. http://node:9400/metrics)",
                    g.url
                ),
            )),
        }
    }
    for (name, c) in &cfg.clusters {
        let at = vec![Seg::Key("clusters".into()), Seg::Key(name.clone())];
        match url::Url::parse(&c.address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => out.push((
                p(&at, &["address"]),
                false,
                format!(
                    "`{}` is not the http(s) URL of a Ray dashboard (e.g. http://head:8265)",
                    c.address
                ),
            )),
        }
        if let Some(v) = &c.token_env {
            check_key_env(v, &p(&at, &["token_env"]), out);
        }
    }
}

/// The console's keys and lines, the telemetry intervals.
fn tui_and_telemetry(cfg: &Config, out: &mut Vec<Problem>) {
    let tui = vec![Seg::Key("tui".into())];
    for e in super::keymap::KeyMap::problems(&cfg.tui.keys) {
        out.push((p(&tui, &["keys", &e.name]), e.on_key, e.message));
    }
    if cfg.tui.log_lines == Some(0) {
        out.push((p(&tui, &["log_lines"]), false, "must be at least 1".into()));
    }
    let tp = vec![Seg::Key("telemetry".into())];
    for (k, v) in [
        ("interval_ms", cfg.telemetry.interval_ms),
        ("probe_interval_ms", cfg.telemetry.probe_interval_ms),
        ("probe_timeout_ms", cfg.telemetry.probe_timeout_ms),
    ] {
        if v.is_some_and(|v| !(100..=MAX_MS).contains(&v)) {
            out.push((
                p(&tp, &[k]),
                false,
                format!("must be from 100 to {MAX_MS} ms (30 days)"),
            ));
        }
    }
}

/// The router: attempts, timeouts, the circuit.
fn router(cfg: &Config, out: &mut Vec<Problem>) {
    let l = &cfg.llm;
    let llm: Path = vec![Seg::Key("llm".into())];
    let rb = &l.router;
    let rp = p(&llm, &["router"]);
    if rb.max_attempts == Some(0) {
        out.push((
            p(&rp, &["max_attempts"]),
            false,
            "must be at least 1".into(),
        ));
    }
    for (k, v) in [
        ("connect_timeout_ms", rb.connect_timeout_ms),
        ("headers_timeout_ms", rb.headers_timeout_ms),
        ("first_token_timeout_ms", rb.first_token_timeout_ms),
        ("idle_timeout_ms", rb.idle_timeout_ms),
    ] {
        if v.is_some_and(|v| !(1..=MAX_MS).contains(&v)) {
            out.push((
                p(&rp, &[k]),
                false,
                format!("must be from 1 to {MAX_MS} ms (30 days)"),
            ));
        }
    }
    let cp = p(&rp, &["circuit"]);
    for (at, k, v) in [
        (&rp, "max_wait_ms", rb.max_wait_ms),
        (&cp, "cooldown_ms", rb.circuit.cooldown_ms),
        (&cp, "max_cooldown_ms", rb.circuit.max_cooldown_ms),
    ] {
        if v.is_some_and(|v| v > MAX_MS) {
            out.push((
                p(at, &[k]),
                false,
                format!("must be at most {MAX_MS} ms (30 days)"),
            ));
        }
    }
    if let Some(t) = rb.total_timeout_s {
        if crate::input::check_seconds(t, 0.001).is_err() {
            out.push((
                p(&rp, &["total_timeout_s"]),
                false,
                format!(
                    "must be a number of seconds from 0.001 to {} (30 days), not {t}",
                    crate::input::MAX_SECONDS
                ),
            ));
        }
    }
}

/// The gateway's address: `HOST:PORT`, and whether it is loopback only.
pub fn gateway_listen(listen: &str) -> Result<(std::net::SocketAddr, bool), String> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .or_else(|_| match listen.rsplit_once(':') {
            Some(("localhost", port)) => format!("127.0.0.1:{port}").parse(),
            _ => listen.parse(),
        })
        .map_err(|_| {
            format!("`{listen}` is not an address to listen on (HOST:PORT, e.g. 127.0.0.1:8090)")
        })?;
    Ok((addr, addr.ip().is_loopback()))
}

fn check_gateway(
    g: &GatewayBlock,
    known: &dyn Fn(&str) -> bool,
    names: &[String],
    out: &mut Vec<Problem>,
) {
    let gp = vec![Seg::Key("gateway".into())];
    if let Some(l) = &g.listen {
        match gateway_listen(l) {
            Err(e) => out.push((p(&gp, &["listen"]), false, e)),
            Ok((_, false)) if g.keys_env.is_none() => out.push((
                p(&gp, &["listen"]),
                false,
                format!("`{l}` is reachable from other machines: set `gateway.keys_env` (client keys) to listen there, or listen on 127.0.0.1"),
            )),
            Ok(_) => {}
        }
    }
    let list = names.join(", ");
    for (alias, route) in &g.aliases {
        if !known(route) {
            out.push((
                p(&gp, &["aliases", alias]),
                false,
                format!("unknown route `{route}` (routes: {list})"),
            ));
        }
    }
    for (i, r) in g.expose.iter().flatten().enumerate() {
        if !known(r) {
            out.push((
                idx(&p(&gp, &["expose"]), i),
                false,
                format!("unknown route `{r}` (routes: {list})"),
            ));
        }
    }
    if let Some(e) = &g.keys_env {
        check_key_env(e, &p(&gp, &["keys_env"]), out);
    }
    for (k, v) in [
        ("max_body_bytes", g.max_body_bytes),
        ("max_in_flight", g.max_in_flight),
    ] {
        if v == Some(0) {
            out.push((p(&gp, &[k]), false, "must be at least 1".into()));
        }
    }
    for (k, v) in [
        ("queue_timeout_ms", g.queue_timeout_ms),
        ("client_timeout_ms", g.client_timeout_ms),
    ] {
        if v.is_some_and(|v| !(1..=MAX_MS).contains(&v)) {
            out.push((
                p(&gp, &[k]),
                false,
                format!("must be from 1 to {MAX_MS} ms (30 days)"),
            ));
        }
    }
    if let Some(t) = g.drain_timeout_s {
        if crate::input::check_seconds(t, 0.0).is_err() {
            out.push((
                p(&gp, &["drain_timeout_s"]),
                false,
                format!(
                    "must be a number of seconds from 0 to {} (30 days), not {t}",
                    crate::input::MAX_SECONDS
                ),
            ));
        }
    }
}

fn check_params(pr: &Params, at: &Path, out: &mut Vec<Problem>) {
    if let Some(t) = pr.temperature {
        if !(0.0..=2.0).contains(&t) {
            out.push((
                p(at, &["temperature"]),
                false,
                format!("{t} is outside 0..2"),
            ));
        }
    }
    if let Some(t) = pr.top_p {
        if !(t > 0.0 && t <= 1.0) {
            out.push((p(at, &["top_p"]), false, format!("{t} is outside (0, 1]")));
        }
    }
    if pr.max_tokens == Some(0) {
        out.push((p(at, &["max_tokens"]), false, "must be at least 1".into()));
    }
    if let Some(t) = pr.timeout {
        if crate::input::check_seconds(t, 0.001).is_err() {
            out.push((
                p(at, &["timeout"]),
                false,
                format!(
                    "must be a number of seconds from 0.001 to {} (30 days), not {t}",
                    crate::input::MAX_SECONDS
                ),
            ));
        }
    }
}

fn check_key_env(name: &str, at: &Path, out: &mut Vec<Problem>) {
    let valid = {
        let mut c = name.chars();
        matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
            && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
    };
    if name.starts_with("sk-") || (!valid && name.len() > 20) {
        // Say nothing of the value: it may be a real key pasted by mistake.
        out.push((
            at.clone(),
            false,
            "must name an environment variable (e.g. OPENAI_API_KEY); this looks like a key itself, which must never be written in the file".into(),
        ));
    } else if !valid {
        out.push((
            at.clone(),
            false,
            format!("`{name}` is not a valid environment variable name"),
        ));
    }
}

fn check_url(url: &str, kind: ProviderKind) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("`{url}`: the scheme must be http or https"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    let path = u.path().trim_end_matches('/');
    match kind {
        ProviderKind::VllmOpenai | ProviderKind::Openai if !path.ends_with("/v1") => Err(format!(
            "`{url}`: an OpenAI-compatible base_url ends in /v1 (e.g. http://127.0.0.1:8000/v1)"
        )),
        ProviderKind::Ollama if path.ends_with("/v1") => Err(format!(
            "`{url}`: Ollama's native API has no /v1 (use http://host:11434; its /v1 is the OpenAI-compatible API)"
        )),
        _ => Ok(()),
    }
}
