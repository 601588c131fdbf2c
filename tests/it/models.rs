//! Model discovery by each store's published layout, the fit estimate from the command line,
//! and profiles saved beside the user's config without touching a byte of it.
use anorag::config::save::{self, NewProfile};
use anorag::config::{self, Source};
use anorag::models::{self, gguf, weights, Places};
use safetensors::Dtype;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_anorag-tui");

const TINY_CONFIG: &str = r#"{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
  "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "head_dim": 64, "max_position_embeddings": 4096,
  "torch_dtype": "float32", "vocab_size": 1000}"#;

/// Writes `bytes` as blob `hash` and links `snapshots/COMMIT/NAME` to it, as the hub does.
fn blob(repo: &Path, commit: &str, name: &str, hash: &str, bytes: &[u8]) {
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    let b = repo.join("blobs").join(hash);
    if !b.exists() {
        std::fs::write(&b, bytes).unwrap();
    }
    symlink(format!("../../blobs/{hash}"), snap.join(name)).unwrap();
}

fn safetensors_bytes(tensors: &[(&str, Dtype, Vec<usize>)]) -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    weights::write_file(&p, tensors).unwrap();
    std::fs::read(p).unwrap()
}

/// Two revisions (refs/main names the newer), a partial download, a blob shared by two names,
/// and a repository without refs/main.
pub(crate) fn hf_cache(root: &Path) {
    let repo = root.join("models--acme--tiny-chat");
    let (old, new) = ("a".repeat(40), "b".repeat(40));
    let w_old = safetensors_bytes(&[("x", Dtype::F32, vec![10])]);
    let w_new = safetensors_bytes(&[
        ("x", Dtype::F32, vec![1000, 256]),
        ("y", Dtype::F32, vec![256]),
    ]);
    blob(&repo, &old, "config.json", "c0", TINY_CONFIG.as_bytes());
    blob(&repo, &old, "model.safetensors", "e0", &w_old);
    blob(&repo, &new, "config.json", "c0", TINY_CONFIG.as_bytes());
    blob(&repo, &new, "model.safetensors", "e1", &w_new);
    blob(&repo, &new, "tokenizer.json", "t1", b"{}");
    blob(&repo, &new, "tokenizer-copy.json", "t1", b"{}");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), format!("{new}\n")).unwrap();
    std::fs::write(repo.join("blobs/f00d.incomplete"), vec![0u8; 4096]).unwrap();
    let orphan = root.join("models--acme--two-snapshots");
    blob(&orphan, &old, "config.json", "c0", TINY_CONFIG.as_bytes());
    blob(&orphan, &new, "config.json", "c0", TINY_CONFIG.as_bytes());
}

fn only_hf(root: &Path) -> Places {
    Places {
        hf: Some(root.to_path_buf()),
        ..Places::default()
    }
}

#[test]
fn the_hub_cache_lists_the_refs_main_snapshot_its_size_once_and_partial_downloads() {
    let d = tempfile::tempdir().unwrap();
    hf_cache(d.path());
    let list = models::discover(&only_hf(d.path()));
    let ids: Vec<&str> = list.iter().map(|m| m.id()).collect();
    assert_eq!(ids, ["acme/tiny-chat", "acme/two-snapshots"]);
    let m = &list[0];
    assert_eq!(m.found.revision.as_deref(), Some("b".repeat(40).as_str()));
    assert!(m.found.path.ends_with("b".repeat(40)));
    // The new snapshot's blobs, the shared tokenizer once; not the old revision's weights,
    // not the partial download.
    let w_new = safetensors_bytes(&[
        ("x", Dtype::F32, vec![1000, 256]),
        ("y", Dtype::F32, vec![256]),
    ]);
    assert_eq!(
        m.found.size_bytes,
        (TINY_CONFIG.len() + w_new.len() + 2) as u64
    );
    assert!(m.found.incomplete);
    assert!(
        m.found
            .problems
            .iter()
            .any(|p| p.contains("partial download")),
        "{:?}",
        m.found.problems
    );
    assert_eq!(m.parameters, Some(256_256));
    assert_eq!(m.dtype.as_deref(), Some("F32"));
    let s = m.shape.as_ref().unwrap();
    assert_eq!(
        (s.layers, s.kv_heads, s.head_dim, s.context_length),
        (2, 2, 64, Some(4096))
    );
    let orphan = &list[1];
    assert!(orphan.found.revision.is_none());
    assert!(
        orphan
            .found
            .problems
            .iter()
            .any(|p| p.contains("no refs/main")),
        "{:?}",
        orphan.found.problems
    );
}

#[test]
fn ollamas_store_lists_name_tag_size_and_quantisation() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let hex = "ab".repeat(32);
    std::fs::create_dir_all(root.join("blobs")).unwrap();
    let gguf_path = root.join("blobs").join(format!("sha256-{hex}"));
    gguf::write(
        &gguf_path,
        &[("general.architecture", "llama")],
        &[
            ("general.file_type", 15),
            ("llama.context_length", 8192),
            ("llama.block_count", 32),
            ("llama.attention.head_count", 32),
            ("llama.attention.head_count_kv", 8),
            ("llama.embedding_length", 4096),
        ],
        &[("token_embd.weight", &[4096, 128256])],
    )
    .unwrap();
    let size = std::fs::metadata(&gguf_path).unwrap().len();
    let dir = root.join("manifests/registry.ollama.ai/library/llama3");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("8b"),
        format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:00","size":1}},"layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:{hex}","size":{size}}},{{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:11","size":100}}]}}"#),
    )
    .unwrap();
    let list = models::discover(&Places {
        ollama: vec![root.to_path_buf()],
        ..Places::default()
    });
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(m.id(), "llama3:8b");
    assert_eq!(m.served_by(), "ollama");
    assert_eq!(m.found.size_bytes, size + 100);
    assert_eq!(m.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(m.parameters, Some(4096 * 128256));
    let s = m.shape.as_ref().unwrap();
    assert_eq!(
        (s.layers, s.kv_heads, s.head_dim, s.context_length),
        (32, 8, 128, Some(8192))
    );
}

#[test]
fn modelscope_names_get_their_dots_back_and_unfinished_downloads_show() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    for (base, name) in [
        ("models/Qwen", "Qwen2___5-0___5B-Instruct"),
        ("LLM-Research", "Meta-Llama-3-8B"),
    ] {
        let m = root.join(base).join(name);
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("config.json"), TINY_CONFIG).unwrap();
    }
    std::fs::create_dir_all(root.join("._____temp/LLM-Research/Meta-Llama-3-8B")).unwrap();
    let list = models::discover(&Places {
        modelscope: Some(root.to_path_buf()),
        ..Places::default()
    });
    let got: Vec<(&str, bool)> = list.iter().map(|m| (m.id(), m.found.incomplete)).collect();
    assert_eq!(
        got,
        [
            ("LLM-Research/Meta-Llama-3-8B", true),
            ("Qwen/Qwen2.5-0.5B-Instruct", false)
        ]
    );
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(EXE);
    c.current_dir(dir)
        .args(args)
        .env("ANORAG_STATE_DIR", dir.join("state"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.env_remove("VLLM_CPU_KVCACHE_SPACE").output().unwrap()
}

const CONFIG: &str = "# my comment stays\nllm:\n  provider: vllm_openai   # and this one\n  vllm_openai:\n    routes:\n      a: {base_url: \"http://127.0.0.1:9/v1\", model: m}\n\n# the end, no newline";

#[test]
fn models_and_models_fit_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("hub");
    hf_cache(&cache);
    std::fs::write(
        d.path().join("dashboard.yaml"),
        format!("{CONFIG}\nservers:\n  tiny: {{kind: vllm, model: acme/tiny-chat, port: 8123}}\n"),
    )
    .unwrap();
    let env = [
        ("HF_HUB_CACHE", cache.to_str().unwrap()),
        ("HOME", d.path().to_str().unwrap()),
    ];
    let out = run(d.path(), &["models", "--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], "acme/tiny-chat");
    assert_eq!(v[0]["source"], "hf_cache");
    assert_eq!(v[0]["used_by"], serde_json::json!(["tiny"]));
    let table = String::from_utf8(run(d.path(), &["models"], &env).stdout).unwrap();
    assert!(
        table.contains("acme/tiny-chat") && table.contains("! ") && table.contains("tiny"),
        "{table}"
    );

    let fit = run(
        d.path(),
        &["models", "fit", "acme/tiny-chat", "--cpu-kv-cache", "1GiB"],
        &env,
    );
    let text = String::from_utf8_lossy(&fit.stdout);
    assert_eq!(fit.status.code(), Some(0), "{text}");
    assert!(
        text.contains("fits: room for 256 sequences of 4,096 tokens"),
        "{text}"
    );
    let long = run(
        d.path(),
        &[
            "models",
            "fit",
            "acme/tiny-chat",
            "--cpu-kv-cache",
            "1",
            "--max-model-len",
            "2000000",
            "--allow-long",
            "--json",
        ],
        &env,
    );
    assert_eq!(long.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&long.stdout).unwrap();
    assert_eq!(v["fit"]["verdict"], "too_long");
    assert_eq!(v["fit"]["longest"], 1_048_448);
    let nogpu = run(d.path(), &["models", "fit", "acme/tiny-chat"], &env);
    assert_eq!(nogpu.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nogpu.stderr).contains("--gpu-memory"));
    let missing = run(
        d.path(),
        &["models", "fit", "acme/nothing", "--gpu-memory", "80GiB"],
        &env,
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("acme/nothing"));
}

fn new_profile(name: &str) -> NewProfile {
    NewProfile {
        name: name.into(),
        model: "/models/x y".into(),
        port: 8300,
        max_model_len: Some(4096),
        gpu_memory_utilization: Some(0.85),
        ..NewProfile::default()
    }
}

#[test]
fn a_saved_profile_leaves_the_users_file_byte_for_byte_and_loads() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("dashboard.yaml");
    std::fs::write(&file, CONFIG).unwrap();
    let s = save::save_profile(&file, &new_profile("kept")).unwrap();
    assert!(s.included);
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        &after[..CONFIG.len()],
        CONFIG,
        "every byte before the new include stays"
    );
    assert_eq!(&after[CONFIG.len()..], save::include_block(CONFIG));
    assert_eq!(s.file, d.path().join("servers.d/kept.yaml"));
    let cfg = config::load(&Source::File(file.clone())).unwrap();
    let p = &cfg.servers["kept"];
    assert_eq!(p.model.as_deref(), Some("/models/x y"));
    assert_eq!(p.gpu_memory_utilization, Some(0.85));

    // A second save adds a file and leaves the user's file as it is now.
    save::save_profile(&file, &new_profile("second")).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    let again = save::save_profile(&file, &new_profile("kept")).unwrap_err();
    assert!(again.contains("already exists"), "{again}");
}

#[test]
fn included_profiles_report_their_errors_in_their_own_file() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("dashboard.yaml");
    std::fs::create_dir_all(d.path().join("servers.d")).unwrap();
    std::fs::write(
        &file,
        format!("{CONFIG}\ninclude: [servers.d]\nservers:\n  a1: {{kind: sim, port: 8301}}\n"),
    )
    .unwrap();
    let inc = d.path().join("servers.d/x.yaml");
    std::fs::write(&inc, "servers:\n  b1:\n    kind: vllm\n    model: m\n    port: 8302\n    gpu_memory_utilization: 1.5\n").unwrap();
    let e = config::load(&Source::File(file.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}:6:", inc.display())), "{e}");
    assert!(e.contains("gpu_memory_utilization"), "{e}");
    std::fs::write(&inc, "servers:\n  a1: {kind: sim, port: 8303}\n").unwrap();
    let e = config::load(&Source::File(file.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("{}:2:3:", inc.display())) && e.contains("the main file"),
        "{e}"
    );
    std::fs::write(&inc, "servers:\n  b1: {kind: sim, port: 8303}\n").unwrap();
    let cfg = config::load(&Source::File(file.clone())).unwrap();
    assert_eq!(cfg.servers.keys().collect::<Vec<_>>(), ["a1", "b1"]);
    // A config with an include list of its own is not edited: the user is told what to add.
    let other = d.path().join("other.yaml");
    let text = format!("{CONFIG}\ninclude: [servers.d/x.yaml]\n");
    std::fs::write(&other, &text).unwrap();
    let e = save::save_profile(&other, &new_profile("c1")).unwrap_err();
    assert!(e.contains(":9: this file has its own `include:`"), "{e}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), text);
    assert!(!d.path().join("servers.d/c1.yaml").exists());
}
