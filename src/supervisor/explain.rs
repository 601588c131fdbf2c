//! Why a vLLM server ended before it was ready, in one line: its log matched against the
//! known start-up failures (`reference/anchors-models-reports.md` B.3, exact strings), each
//! with its cause and what to try. vLLM prints the real exception from its engine process
//! and then a wrapper ("Engine core initialization failed. See root cause above."), so the
//! first specific match wins and the wrapper is never the answer.

/// How many of the log's last lines are read: the cause sits well above the wrapper's
/// traceback (one wrapper script found 40 lines showed only the wrapper; it keeps 250).
pub const LOG_LINES: usize = 400;

/// `(start, end)`: the text between the first `start` and the next `end` after it.
fn between<'a>(line: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = line.find(start)? + start.len();
    let rest = &line[i..];
    let j = rest.find(end)?;
    Some(&rest[..j])
}

type Rule = fn(&str, &[&str]) -> Option<String>;

/// The rules, most specific first; each sees the line and the lines before it.
const RULES: &[Rule] = &[
    kv_too_small,
    kv_too_small_v0,
    above_model_limit,
    free_memory,
    no_cache_blocks,
    graph_capture_oom,
    cuda_oom,
    heads_not_divisible,
    gpus_exceed_placement,
    port_in_use,
    unknown_argument,
    bad_model_id,
    model_not_found,
    gated_repo,
    trust_remote_code,
    bf16_unsupported,
    unsupported_architecture,
    nccl,
    no_device,
    no_kernel_image,
];

fn kv_too_small(l: &str, _: &[&str]) -> Option<String> {
    if !l.contains("To serve at least one request with the model") {
        return None;
    }
    let len = between(l, "max seq len (", ")")?;
    let need = between(l, "), (", " KV cache is needed").unwrap_or("more");
    let have = between(l, "available KV cache memory (", ")").unwrap_or("less");
    let est = between(l, "estimated maximum model length is ", ".")
        .or_else(|| l.split("estimated maximum model length is ").nth(1))
        .map(|s| s.trim().trim_end_matches('.'));
    Some(match est {
        Some(n) => format!(
            "KV cache too small: one request of max_model_len {len} needs {need}, {have} is available; set --max-model-len {n} (the longest that fits) or raise --gpu-memory-utilization"
        ),
        None => format!(
            "KV cache too small: one request of max_model_len {len} needs {need}, {have} is available; lower --max-model-len or raise --gpu-memory-utilization"
        ),
    })
}

fn kv_too_small_v0(l: &str, _: &[&str]) -> Option<String> {
    let len = between(l, "The model's max seq len (", ")")?;
    let tokens = between(l, "stored in KV cache (", ")")?;
    Some(format!(
        "KV cache too small: max_model_len {len} is more than the {tokens} tokens the KV cache holds; set --max-model-len {tokens} or raise --gpu-memory-utilization"
    ))
}

fn above_model_limit(l: &str, _: &[&str]) -> Option<String> {
    let asked = between(l, "User-specified max_model_len (", ")")?;
    let derived = between(l, "derived max_model_len (", " or ")
        .or_else(|| between(l, "derived max_model_len (", ")"))
        .unwrap_or("the model's");
    let (limit, key) = match derived.split_once('=') {
        Some((k, v)) => (v.trim_end_matches(".0").to_string(), format!(" ({k})")),
        None => (derived.to_string(), String::new()),
    };
    Some(format!(
        "max_model_len {asked} is above the model's limit of {limit}{key}: set --max-model-len {limit} or less (or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 with RoPE scaling)"
    ))
}

fn free_memory(l: &str, _: &[&str]) -> Option<String> {
    if !l.contains("Free memory on device")
        || !l.contains("less than desired GPU memory utilization")
    {
        return None;
    }
    let free = between(l, "on device ", " on startup").unwrap_or("");
    let wanted = between(l, "memory utilization (", ")").unwrap_or("");
    Some(format!(
        "not enough free GPU memory at start ({free} free, gpu_memory_utilization {wanted} wanted): another process holds the GPU (often an old vLLM); lower --gpu-memory-utilization or free the GPU"
    ))
}

fn no_cache_blocks(l: &str, _: &[&str]) -> Option<String> {
    l.contains("No available memory for the cache blocks").then(|| {
        "no memory left for the KV cache after the weights and activations: raise --gpu-memory-utilization, use more GPUs (--tensor-parallel-size) or a quantised model".to_string()
    })
}

fn graph_capture_oom(l: &str, before: &[&str]) -> Option<String> {
    let oom = l.contains("CUDA error: out of memory") || l.contains("CUDA out of memory");
    let capturing = before
        .iter()
        .rev()
        .take(200)
        .any(|b| b.contains("Capturing CUDA graph") || b.contains("CUDA graph capture"));
    (oom && capturing).then(|| {
        "out of GPU memory while capturing CUDA graphs: lower --gpu-memory-utilization by 0.01-0.05, or add --enforce-eager".to_string()
    })
}

fn cuda_oom(l: &str, _: &[&str]) -> Option<String> {
    if !l.contains("CUDA out of memory") && !l.contains("OutOfMemoryError") {
        return None;
    }
    let tried = between(l, "Tried to allocate ", ". ")
        .map(|t| format!(" (tried to allocate {t})"))
        .unwrap_or_default();
    Some(format!(
        "CUDA out of memory{tried}: the weights and activations do not fit; use more GPUs (--tensor-parallel-size), a quantised model, or lower --max-model-len / --max-num-seqs"
    ))
}

fn heads_not_divisible(l: &str, _: &[&str]) -> Option<String> {
    let heads = between(l, "Total number of attention heads (", ")")?;
    let tp = between(l, "tensor parallel size (", ")").unwrap_or("?");
    Some(format!(
        "{heads} attention heads cannot be split over tensor parallel size {tp}: choose a --tensor-parallel-size that divides {heads}"
    ))
}

fn gpus_exceed_placement(l: &str, _: &[&str]) -> Option<String> {
    l.contains("The number of required GPUs exceeds the total number of available GPUs").then(|| {
        "Ray has fewer GPUs than tensor x pipeline parallel size needs: lower the sizes, add GPU nodes, or set RAY_ADDRESS so vLLM joins the cluster instead of starting its own".to_string()
    })
}

fn port_in_use(l: &str, before: &[&str]) -> Option<String> {
    let low = l.to_ascii_lowercase();
    if !(low.contains("address already in use") || low.contains("errno 98")) {
        return None;
    }
    // vLLM's own message may not name the port; our start line above it has the argv.
    let from_argv = || {
        before.iter().rev().find_map(|b| {
            let mut w = b.split_whitespace();
            w.by_ref().find(|x| *x == "--port")?;
            w.next().filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        })
    };
    let port = between(l, "', ", ")")
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .or_else(from_argv);
    Some(match port {
        Some(p) => format!("port {p} is already in use: pick another port, or stop what holds it"),
        None => "the port is already in use: pick another port, or stop what holds it".into(),
    })
}

fn unknown_argument(l: &str, _: &[&str]) -> Option<String> {
    let args = l.split("error: unrecognized arguments:").nth(1)?.trim();
    Some(format!(
        "this vLLM does not know the argument(s) {args}: remove them from the profile (see `vllm serve --help` for this version)"
    ))
}

fn bad_model_id(l: &str, _: &[&str]) -> Option<String> {
    if !l.contains("Repo id must be in the form")
        && !l.contains("is not a local folder and is not a valid model identifier")
    {
        return None;
    }
    let what = l
        .rsplit("': '")
        .next()
        .filter(|_| l.contains("': '"))
        .and_then(|s| s.split('\'').next())
        .or_else(|| {
            between(l, "", " is not a local folder").map(|s| s.trim_matches(['\'', '"', ' ']))
        });
    Some(format!(
        "model {} is neither a folder on this machine nor a hub id: check the path or the id's spelling",
        what.map(|w| format!("`{w}`")).unwrap_or_else(|| "named".into())
    ))
}

fn model_not_found(l: &str, _: &[&str]) -> Option<String> {
    let offline_miss = l.contains("couldn't find them in the cached files")
        || l.contains("LocalEntryNotFoundError")
        || l.contains("outgoing traffic has been disabled");
    let missing_file = l.contains("does not appear to have a file named");
    (offline_miss || missing_file).then(|| {
        if offline_miss {
            "the model is not in the local cache and downloads are off (HF_HUB_OFFLINE): download it first, or point the profile at its folder".to_string()
        } else {
            format!("the model's files are incomplete: {}", l.trim())
        }
    })
}

fn gated_repo(l: &str, _: &[&str]) -> Option<String> {
    (l.contains("Cannot access gated repo") || l.contains("GatedRepoError") || l.contains("401 Client Error")).then(|| {
        "the model is gated: accept its licence on huggingface.co and set HF_TOKEN in the server's environment".to_string()
    })
}

fn trust_remote_code(l: &str, _: &[&str]) -> Option<String> {
    (l.contains("contains custom code which must be executed")
        || l.contains("trust_remote_code=True"))
    .then(|| "the model ships its own code: add --trust-remote-code if you trust it".to_string())
}

fn bf16_unsupported(l: &str, _: &[&str]) -> Option<String> {
    l.contains("Bfloat16 is only supported on GPUs with compute capability")
        .then(|| "this GPU has no bfloat16 (before Ampere): set dtype: half".to_string())
}

fn unsupported_architecture(l: &str, _: &[&str]) -> Option<String> {
    let arch = between(l, "Model architectures ", " are not supported")
        .or_else(|| between(l, "Model architectures ", " failed to be inspected"))?;
    Some(format!(
        "this vLLM cannot run architecture {arch}: upgrade vLLM, or check its dependencies"
    ))
}

fn nccl(l: &str, _: &[&str]) -> Option<String> {
    (l.contains("NCCL error") || l.contains("creating shared memory segment /dev/shm/nccl")).then(|| {
        "NCCL failed between GPUs: in Docker use --ipc=host or a larger --shm-size; across nodes set NCCL_SOCKET_IFNAME / GLOO_SOCKET_IFNAME and VLLM_HOST_IP".to_string()
    })
}

fn no_device(l: &str, _: &[&str]) -> Option<String> {
    (l.contains("Failed to infer device type") || l.contains("No CUDA runtime is found") || l.contains("No CUDA GPUs are available")).then(|| {
        "no GPU is visible to vLLM: check CUDA_VISIBLE_DEVICES, the profile's gpus and the container's GPU runtime".to_string()
    })
}

fn no_kernel_image(l: &str, _: &[&str]) -> Option<String> {
    l.contains("no kernel image is available for execution on the device").then(|| {
        "this vLLM build has no kernels for this GPU's architecture: install a wheel built for it".to_string()
    })
}

/// Lines that are never the cause: our own marks, warnings, the wrapper and tracebacks.
fn is_noise(l: &str) -> bool {
    let t = l.trim();
    t.is_empty()
        || t.starts_with("[anorag-tui")
        || l.contains(" WARNING ")
        || l.contains(" INFO ")
        || l.contains(" DEBUG ")
        || l.contains("Engine core initialization failed")
        || t.starts_with("File \"")
        || t.starts_with("Traceback")
        || t.starts_with("^")
        || t.starts_with("For further information visit")
}

/// The one line for a failed start, from the log's last lines (oldest first).
pub fn explain(lines: &[String]) -> Option<String> {
    let strs: Vec<&str> = lines.iter().map(String::as_str).collect();
    for (i, l) in strs.iter().enumerate() {
        // A warning is never the cause: vLLM warns of a max_model_len above the model's
        // when VLLM_ALLOW_LONG_MAX_MODEL_LEN lets it through, in the words of the error.
        if l.trim_start().starts_with("[anorag-tui") || l.contains(" WARNING ") {
            continue;
        }
        for rule in RULES {
            if let Some(s) = rule(l, &strs[..i]) {
                return Some(s);
            }
        }
    }
    // Unknown: the last error line, which for a Python failure is the exception itself.
    strs.iter()
        .rev()
        .filter(|l| !is_noise(l))
        .find(|l| {
            let t = l.trim();
            t.contains("Error") || t.contains("error:") || t.contains("Exception")
        })
        .map(|l| crate::format::clip(strip_prefix(l.trim()), 300))
}

/// `(EngineCore_DP0 pid=123) ERROR 12-06 08:05:37 [core.py:700] text` -> `text`.
fn strip_prefix(l: &str) -> &str {
    let l = if l.starts_with('(') {
        l.split_once(") ").map(|(_, r)| r).unwrap_or(l)
    } else {
        l
    };
    if l.starts_with("ERROR ") {
        if let Some((_, r)) = l.split_once("] ") {
            return r;
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> String {
        explain(&text.lines().map(String::from).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_cause_above_the_wrapper_wins() {
        let log = "(EngineCore_DP0 pid=9) ERROR 12-06 [core.py:1] ValueError: To serve at least one request with the models's max seq len (1000000), (1.91 GiB KV cache is needed, which is larger than the available KV cache memory (1.0 GiB). Based on the available memory, the estimated maximum model length is 524160. Try increasing `gpu_memory_utilization`\nRuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}";
        let s = one(log);
        assert!(s.starts_with("KV cache too small"), "{s}");
        assert!(s.contains("--max-model-len 524160"), "{s}");
        assert!(!s.contains("Engine core"), "{s}");
    }

    #[test]
    fn gpu_only_failures_from_their_exact_strings() {
        let cases = [
            ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 768.00 MiB. GPU 0 has a total capacity of 31.84 GiB", "CUDA out of memory (tried to allocate 768.00 MiB)"),
            ("INFO Capturing CUDA graphs (mixed prefill-decode, PIECEWISE)\nRuntimeError: CUDA error: out of memory", "capturing CUDA graphs"),
            ("ValueError: Free memory on device cuda:0 (7.34/15.49 GiB) on startup is less than desired GPU memory utilization (0.8, 12.39 GiB). Decrease GPU memory utilization", "(cuda:0 (7.34/15.49 GiB) free"),
            ("RuntimeError: NCCL error: unhandled system error", "NCCL failed"),
            ("huggingface_hub.errors.GatedRepoError: 403 Client Error. Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B", "gated"),
            ("ValueError: Total number of attention heads (32) must be divisible by tensor parallel size (3).", "32 attention heads cannot be split over tensor parallel size 3"),
            ("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`", "no memory left for the KV cache"),
        ];
        for (log, want) in cases {
            let s = one(log);
            assert!(s.contains(want), "{log}\n -> {s}");
        }
    }

    #[test]
    fn an_allowed_long_context_warning_is_not_the_cause() {
        let log = "(APIServer pid=1) WARNING 12-06 08:06:06 [model.py:2660] User-specified max_model_len (2000000) is greater than the derived max_model_len (max_position_embeddings=4096.0 or model_max_length=None in model's config.json). VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution.\n(EngineCore pid=2) ERROR 12-06 08:11:19 [core.py:1510] ValueError: To serve at least one request with the model's max seq len (2000000), (1.91 GiB KV cache is needed, which is larger than the available KV cache memory (1.0 GiB). Based on the available memory, the estimated maximum model length is 1048448. Try increasing";
        assert!(one(log).starts_with("KV cache too small"), "{}", one(log));
    }

    #[test]
    fn a_warning_that_mentions_an_error_is_not_the_cause() {
        let log = "(APIServer pid=1) WARNING 12-06 [system_utils.py:255] Found ulimit of 20000 and failed to automatically increase with error current limit exceeds maximum limit. This can cause fd limit errors like `OSError: [Errno 24] Too many open files`.\nKeyError: 'rope_theta'";
        assert_eq!(one(log), "KeyError: 'rope_theta'");
    }
}
