//! Protocol facts that both our clients and the simulator rely on, kept below both.

/// Ollama: `llama3.2` and `llama3.2:latest` name the same model.
pub fn same_model(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        if s.contains(':') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    }
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ollama_latest_tag_is_implied() {
        assert!(super::same_model("llama3.2", "llama3.2:latest"));
        assert!(!super::same_model("llama3.2:1b", "llama3.2"));
    }
}
