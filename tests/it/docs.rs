//! The docs' examples run: every `console` block in `docs/*.md` is a command whose output
//! must match (trycmd, which clap uses for its own docs), so a doc that drifts fails here.
#[test]
fn the_commands_in_the_docs_run_as_written() {
    let state = tempfile::tempdir().unwrap();
    // `models` looks in the hub and ModelScope caches and Ollama's store: empty ones here, so
    // the examples show only the fixtures they name.
    let empty = tempfile::tempdir().unwrap();
    let none = empty.path().display().to_string();
    trycmd::TestCases::new()
        .register_bin(
            "anorag-tui",
            std::path::Path::new(env!("CARGO_BIN_EXE_anorag-tui")),
        )
        .env("ANORAG_STATE_DIR", state.path().display().to_string())
        .env("NO_COLOR", "1")
        .env("HF_HUB_CACHE", &none)
        .env("MODELSCOPE_CACHE", &none)
        .env("OLLAMA_MODELS", &none)
        .case("docs/*.md");
}

/// Where each block of the config sits in `dashboard.yaml`, in the order the reference shows
/// them. A struct of `src/config/schema.rs` missing here fails the test below.
const BLOCKS: &[(&str, &str)] = &[
    ("Config", "The top level"),
    ("LlmConfig", "llm"),
    ("VllmOpenAi", "llm.vllm_openai"),
    ("VllmRoute", "llm.vllm_openai.routes.NAME"),
    ("Params", "params (of a block or a route)"),
    ("OllamaBlock", "llm.ollama"),
    ("MultiOllama", "llm.multi_ollama"),
    ("OpenAiBlock", "llm.openai"),
    ("BuiltinBlock", "llm.builtin"),
    ("RouterBlock", "llm.router"),
    ("CircuitBlock", "llm.router.circuit"),
    ("ServerProfile", "servers.NAME"),
    ("ClusterConfig", "clusters.NAME"),
    ("GpuSourceConfig", "gpu_sources[]"),
    ("TelemetryBlock", "telemetry"),
    ("TuiBlock", "tui"),
    ("GatewayBlock", "gateway"),
    ("ModelsBlock", "models"),
];

const BEGIN: &str = "<!-- reference: made from src/config/schema.rs by tests/it/docs.rs (ANORAG_UPDATE_DOCS=1 rewrites it) -->";
const END: &str = "<!-- end of reference -->";

struct Field {
    name: String,
    ty: String,
    required: bool,
    doc: String,
}

/// (struct, its doc, its fields) for every struct of the schema, read from its source.
fn schema() -> Vec<(String, String, Vec<Field>)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/schema.rs"))
        .unwrap();
    let mut out: Vec<(String, String, Vec<Field>)> = Vec::new();
    let (mut doc, mut attrs) = (Vec::<String>::new(), Vec::<String>::new());
    let mut current: Option<(String, String, Vec<Field>)> = None;
    for line in src.lines() {
        let t = line.trim();
        if let Some(d) = t.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if t.starts_with("#[") {
            attrs.push(t.to_string());
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{']).next().unwrap().to_string();
            current = Some((name, doc.join(" "), Vec::new()));
            (doc, attrs) = (Vec::new(), Vec::new());
        } else if line.starts_with('}') {
            out.extend(current.take());
        } else if let (Some(c), Some(f)) = (current.as_mut(), line.strip_prefix("    pub ")) {
            let (name, ty) = f.split_once(':').unwrap();
            let ty = ty.trim().trim_end_matches(',').to_string();
            let skip = attrs.iter().any(|a| a.contains("serde(skip)"));
            if !skip {
                c.2.push(Field {
                    name: name.to_string(),
                    required: !ty.starts_with("Option<")
                        && !attrs.iter().any(|a| a.contains("serde(default")),
                    ty,
                    doc: doc.join(" "),
                });
            }
            (doc, attrs) = (Vec::new(), Vec::new());
        } else if t.is_empty() || !t.starts_with("//") {
            (doc, attrs) = (Vec::new(), Vec::new());
        }
    }
    out
}

/// A field's type as the YAML it takes.
fn yaml_type(ty: &str) -> String {
    let inner = |t: &str, w: &str| {
        t.strip_prefix(w)
            .and_then(|r| r.strip_suffix('>'))
            .map(str::to_string)
    };
    if let Some(t) = inner(ty, "Option<") {
        return yaml_type(&t);
    }
    if let Some(t) = inner(ty, "Vec<") {
        return format!("list of {}", yaml_type(&t));
    }
    if let Some(t) = inner(ty, "IndexMap<String, ") {
        return format!("map of name to {}", yaml_type(&t));
    }
    let block = |name: &str| {
        BLOCKS
            .iter()
            .find(|(s, _)| *s == name)
            .map(|(_, p)| shown(p))
    };
    match ty {
        "String" => "text".into(),
        "bool" => "true or false".into(),
        "u16" | "u32" | "u64" | "usize" | "i64" => "integer".into(),
        "f32" | "f64" => "number".into(),
        "Scalar" => "text or number".into(),
        "ServerKind" => "`vllm`, `sim`, `command` or `gateway`".into(),
        "RestartPolicy" => "`never` or `on-failure`".into(),
        "ClusterKind" => "`ray`".into(),
        "ProviderName" => "`vllm_openai`, `ollama`, `multi_ollama`, `openai` or `builtin`".into(),
        other => block(other).unwrap_or_else(|| format!("`{other}`")),
    }
}

/// A block's place as the reference prints it: its path as code, any words after it plain.
fn shown(path: &str) -> String {
    match path.split_once(" (") {
        Some((code, rest)) => format!("`{code}` ({rest}"),
        None if path.contains(' ') => path.to_string(),
        None => format!("`{path}`"),
    }
}

fn reference() -> String {
    let schema = schema();
    let mut o = String::new();
    for (name, _) in BLOCKS {
        assert!(
            schema.iter().any(|(s, _, _)| s == name),
            "{name} is not a struct of src/config/schema.rs any more"
        );
    }
    for (s, _, _) in &schema {
        assert!(
            BLOCKS.iter().any(|(b, _)| b == s),
            "src/config/schema.rs has a new struct `{s}`: add it to BLOCKS in tests/it/docs.rs"
        );
    }
    let defaults = code_defaults();
    let base = probe_base();
    for (name, path) in BLOCKS {
        let (_, doc, fields) = schema.iter().find(|(s, _, _)| s == name).unwrap();
        o.push_str(&format!("\n### {}\n\n", shown(path)));
        if !doc.is_empty() {
            o.push_str(&format!("{doc}\n\n"));
        }
        o.push_str("| key | takes | | refused (the check's own words) |\n|---|---|---|---|\n");
        for f in fields {
            let need = if f.required { "**required**. " } else { "" };
            let default = defaults
                .iter()
                .find(|(b, k, _)| b == name && *k == f.name)
                .map(|(_, _, d)| format!(" Default {d}."))
                .unwrap_or_default();
            let ty = yaml_type(&f.ty);
            let refused = probe_at(path)
                .map(|at| refusals(&base, &at, &f.name, &ty))
                .unwrap_or_default();
            o.push_str(&format!(
                "| `{}` | {ty} | {need}{}{default} | {} |\n",
                f.name,
                f.doc.replace('|', "\\|"),
                refused.replace('|', "\\|")
            ));
        }
    }
    o
}

/// Defaults that live in the code that applies them (the router's policy, the supervisor's
/// restart guard), read from there: the reference says what the program does.
fn code_defaults() -> Vec<(&'static str, &'static str, String)> {
    let cfg =
        anorag::config::load_str("llm: {provider: builtin, builtin: {}}\n", "d.yaml").unwrap();
    let p = anorag::provider::factory::policy(&cfg);
    let c = anorag::provider::factory::circuit_policy(&cfg);
    let ms = |d: std::time::Duration| format!("{} ms", d.as_millis());
    use anorag::supervisor::launch as l;
    vec![
        ("RouterBlock", "max_attempts", p.max_attempts.to_string()),
        ("RouterBlock", "connect_timeout_ms", ms(p.timeouts.connect)),
        ("RouterBlock", "headers_timeout_ms", ms(p.timeouts.headers)),
        (
            "RouterBlock",
            "first_token_timeout_ms",
            ms(p.timeouts.first_token),
        ),
        ("RouterBlock", "idle_timeout_ms", ms(p.timeouts.idle)),
        (
            "RouterBlock",
            "total_timeout_s",
            format!("{} s", p.timeouts.total.as_secs_f64()),
        ),
        ("RouterBlock", "max_wait_ms", ms(p.max_wait)),
        ("CircuitBlock", "failures", c.failure_threshold.to_string()),
        ("CircuitBlock", "cooldown_ms", ms(c.base_cooldown)),
        ("CircuitBlock", "max_cooldown_ms", ms(c.max_cooldown)),
        (
            "ServerProfile",
            "max_restarts",
            l::DEFAULT_MAX_RESTARTS.to_string(),
        ),
        (
            "ServerProfile",
            "restart_window",
            format!("{} s", l::DEFAULT_RESTART_WINDOW_S),
        ),
        (
            "ServerProfile",
            "stop_timeout",
            format!("{} s", l::DEFAULT_STOP_TIMEOUT_S),
        ),
    ]
}

/// Blocks the shipped config lacks, so that every key has a place to be tried.
const PROBE_EXTRA: &str = r#"
llm:
  openai: {model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
  multi_ollama: {instances: ["http://127.0.0.1:11435"], model: "qwen2.5:0.5b"}
  router: {circuit: {}}
clusters: {farm: {kind: ray, address: "http://127.0.0.1:8265"}}
gpu_sources: [{name: dcgm, url: "http://127.0.0.1:9400/metrics"}]
telemetry: {}
tui: {}
gateway: {}
models: {paths: []}
"#;

/// The shipped `dashboard.yaml` with every optional block present; valid as it is.
fn probe_base() -> serde_yaml::Value {
    fn merge(into: &mut serde_yaml::Value, from: serde_yaml::Value) {
        match (into, from) {
            (serde_yaml::Value::Mapping(a), serde_yaml::Value::Mapping(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(old) => merge(old, v),
                        None => {
                            a.insert(k, v);
                        }
                    }
                }
            }
            (a, b) => *a = b,
        }
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let shipped = std::fs::read_to_string(format!("{root}/dashboard.yaml")).unwrap();
    let mut v: serde_yaml::Value = serde_yaml::from_str(&shipped).unwrap();
    merge(&mut v, serde_yaml::from_str(PROBE_EXTRA).unwrap());
    let text = serde_yaml::to_string(&v).unwrap();
    if let Err(e) = anorag::config::load_str(&text, "probe.yaml") {
        panic!("the probe config must be valid: {e}\n{text}");
    }
    v
}

/// Where a block's keys are tried in the probe config; `None` for the top level (its keys
/// are blocks).
fn probe_at(block: &str) -> Option<Vec<String>> {
    if block == "The top level" {
        return None;
    }
    if block.starts_with("params") {
        return Some(vec!["llm".into(), "vllm_openai".into(), "params".into()]);
    }
    let mut at = Vec::new();
    for seg in block.split('.') {
        let name = match (at.last().map(String::as_str), seg) {
            (Some("routes"), "NAME") => "tiny_qwen",
            (Some("servers"), "NAME") => "tiny",
            (Some("clusters"), "NAME") => "farm",
            (_, s) => s,
        };
        match name.strip_suffix("[]") {
            Some(list) => at.extend([list.to_string(), "0".to_string()]),
            None => at.push(name.to_string()),
        }
    }
    Some(at)
}

/// What the program answers when `key` of the block at `at` takes each of a few wrong values
/// of its type (nothing for keys whose type alone is the check): the validator's own words.
fn refusals(base: &serde_yaml::Value, at: &[String], key: &str, ty: &str) -> String {
    use serde_yaml::Value;
    // (as the page shows it, as a message may write it, the value)
    let tries: Vec<(&str, &str, Value)> = match ty {
        "integer" => vec![
            ("0", "0", Value::from(0)),
            (
                "10^13",
                "10000000000000",
                Value::from(10_000_000_000_000u64),
            ),
        ],
        "number" => vec![
            ("-1", "-1", Value::from(-1.0)),
            ("10^13", "10000000000000", Value::from(1e13)),
        ],
        "text" | "text or number" => vec![("`?`", "`?`", Value::from("?"))],
        "list of text" => vec![("`[?]`", "`?`", Value::Sequence(vec![Value::from("?")]))],
        _ => vec![],
    };
    let mut prefix = at.iter().fold(String::new(), |mut s, seg| {
        match seg.parse::<usize>() {
            Ok(i) => s.push_str(&format!("[{i}]")),
            Err(_) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(seg);
            }
        }
        s
    });
    prefix.push('.');
    prefix.push_str(key);
    // Each message once, with the values that drew it.
    let mut said: Vec<(Vec<&str>, String)> = Vec::new();
    for (shown, written, value) in tries {
        let mut v = base.clone();
        let mut node = &mut v;
        for seg in at {
            node = match seg.parse::<usize>() {
                Ok(i) => &mut node[i],
                Err(_) => &mut node[seg.as_str()],
            };
        }
        node[key] = value;
        let text = serde_yaml::to_string(&v).unwrap();
        let Err(errors) = anorag::config::load_str(&text, "probe.yaml") else {
            continue;
        };
        for e in &errors.0 {
            let Some(rest) = e.message.strip_prefix(&prefix) else {
                continue;
            };
            let Some((_, msg)) = rest.split_once(": ") else {
                continue;
            };
            // The type's own bounds (a u32 given 10^13) are serde's words, not a check.
            if msg.contains("invalid value") || msg.contains("invalid type") {
                continue;
            }
            let msg = msg.split(", not ").next().unwrap_or(msg);
            // A message that names the value it refused reads the same for every value.
            let msg = msg
                .split(' ')
                .map(|w| if w == written { "X" } else { w })
                .collect::<Vec<_>>()
                .join(" ");
            match said.iter_mut().find(|(_, m)| *m == msg) {
                Some((values, _)) => values.push(shown),
                None => said.push((vec![shown], msg)),
            }
        }
    }
    said.iter()
        .map(|(v, m)| match m.split(' ').any(|w| w == "X") {
            true => format!("X = {}: {m}", v.join(" or ")),
            false => format!("{}: {m}", v.join(" or ")),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The configuration reference lists every key of the schema with what it takes and its
/// doc (its default where it has one): made from the source, so it cannot fall behind.
#[test]
fn the_configuration_reference_lists_every_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let page = std::fs::read_to_string(path).unwrap();
    let (head, rest) = page
        .split_once(BEGIN)
        .expect("the reference's start marker");
    let (old, tail) = rest.split_once(END).expect("the reference's end marker");
    let new = reference();
    if old == new {
        return;
    }
    if std::env::var("ANORAG_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(path, format!("{head}{BEGIN}{new}{END}{tail}")).unwrap();
        return;
    }
    panic!("docs/configuration.md's reference is not what src/config/schema.rs says: run `ANORAG_UPDATE_DOCS=1 cargo test --test it docs::` and commit the page");
}

/// Every `yaml` block in the docs is a valid config (a block without `llm:` gets the shipped
/// `dashboard.yaml`'s routes), so an example cannot teach a key the program refuses.
#[test]
fn the_docs_yaml_examples_are_valid_configs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard.yaml")).unwrap();
    let llm =
        &shipped[shipped.find("\nllm:").unwrap() + 1..shipped.find("\nservers:").unwrap() + 1];
    let mut seen = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let yaml = block.split("```").next().unwrap();
            let whole = if yaml.contains("llm:") {
                yaml.to_string()
            } else {
                format!("{llm}{yaml}")
            };
            let name = format!("{}#yaml{}", path.display(), i + 1);
            if let Err(e) = anorag::config::load_str(&whole, &name) {
                panic!("{name} is not a valid config:\n{e}\n{whole}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 2, "the docs' yaml examples were not found");
}

/// docs/gateway.md's Python example, as written, with the official `openai` and `ollama`
/// clients, against a gateway on the shipped config (its port put in for 8090). Where no vLLM
/// or Ollama listens, both names fall back along their chains to the built-in route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_page_python_example_runs_as_written() {
    let Some(py) = std::env::var_os("ANORAG_GATEWAY_PY") else {
        super::common::skipped(
            "the_gateway_page_python_example_runs_as_written",
            "ANORAG_GATEWAY_PY is unset (scripts/test installs the openai and ollama clients)",
        );
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let page = std::fs::read_to_string(format!("{root}/docs/gateway.md")).unwrap();
    let start = page
        .find("```python\n")
        .expect("docs/gateway.md has a python block")
        + 10;
    let block = &page[start..start + page[start..].find("```").unwrap()];
    let shipped = std::fs::read_to_string(format!("{root}/dashboard.yaml")).unwrap();
    let g =
        super::common::gateway_from_yaml(&format!("{shipped}\ngateway:\n  listen: 127.0.0.1:0\n"))
            .await;
    let script = block.replace("127.0.0.1:8090", &g.addr.to_string());
    assert_ne!(
        script, block,
        "the example names the gateway at 127.0.0.1:8090"
    );
    let out = tokio::process::Command::new(py)
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{so}\n{se}");
    let answers: Vec<&str> = so.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        answers.len() >= 2 && !so.starts_with('\n'),
        "an answer from each client: {so}\n{se}"
    );
}
