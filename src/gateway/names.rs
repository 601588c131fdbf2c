//! Which route a client's `model` means: a route's name, the model a route serves, or an
//! alias from the config. Ollama-style names match with or without their `:latest` tag.
use crate::config::{Config, ProviderKind};
use indexmap::IndexMap;

/// A route a client may name.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposed {
    pub route: String,
    pub model: String,
    pub kind: ProviderKind,
}

#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Every name a client may ask for -> its route, in the order `/v1/models` lists them.
    by_name: IndexMap<String, String>,
    exposed: Vec<Exposed>,
}

fn norm(name: &str) -> &str {
    name.strip_suffix(":latest").unwrap_or(name)
}

impl Names {
    pub fn from_config(cfg: &Config) -> Self {
        let only = cfg.gateway.expose.as_ref();
        let exposed: Vec<Exposed> = cfg
            .routes()
            .into_iter()
            .filter(|r| only.is_none_or(|o| o.contains(&r.name)))
            .map(|r| Exposed {
                route: r.name,
                model: r.model,
                kind: r.kind,
            })
            .collect();
        let mut by_name = IndexMap::new();
        // Route names first: a model name never shadows a route's own name.
        for e in &exposed {
            by_name.insert(e.route.clone(), e.route.clone());
        }
        for (alias, route) in &cfg.gateway.aliases {
            by_name
                .entry(alias.clone())
                .or_insert_with(|| route.clone());
        }
        for e in &exposed {
            by_name
                .entry(e.model.clone())
                .or_insert_with(|| e.route.clone());
        }
        Self { by_name, exposed }
    }

    /// The route that `asked` means.
    pub fn resolve(&self, asked: &str) -> Option<&str> {
        if let Some(r) = self.by_name.get(asked) {
            return Some(r);
        }
        let want = norm(asked);
        self.by_name
            .iter()
            .find(|(n, _)| norm(n) == want)
            .map(|(_, r)| r.as_str())
    }

    /// Every name a client may ask for, with the route it means.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_name.iter().map(|(n, r)| (n.as_str(), r.as_str()))
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub fn exposed(&self) -> &[Exposed] {
        &self.exposed
    }

    pub fn route(&self, name: &str) -> Option<&Exposed> {
        self.exposed.iter().find(|e| e.route == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(yaml_gateway: &str) -> Names {
        let text = format!(
            "llm:\n  provider: vllm_openai\n  vllm_openai:\n    routes:\n      tiny: {{base_url: http://127.0.0.1:1/v1, model: qwen2_5_0_5b, fallback: [ollama]}}\n      big: {{base_url: http://127.0.0.1:2/v1, model: qwen_big}}\n  ollama: {{base_url: http://127.0.0.1:3, model: \"qwen2.5:0.5b\"}}\n{yaml_gateway}"
        );
        Names::from_config(&crate::config::load_str(&text, "t.yaml").unwrap())
    }

    #[test]
    fn route_names_models_and_aliases_resolve() {
        let n = names("gateway:\n  aliases: {gpt-4o-mini: tiny, \"qwen2.5:7b\": big}\n");
        assert_eq!(n.resolve("tiny"), Some("tiny"));
        assert_eq!(n.resolve("qwen2_5_0_5b"), Some("tiny"));
        assert_eq!(n.resolve("gpt-4o-mini"), Some("tiny"));
        assert_eq!(n.resolve("qwen2.5:0.5b"), Some("ollama"));
        assert_eq!(n.resolve("qwen2.5:7b:latest"), Some("big"));
        assert_eq!(n.resolve("qwen2.5:7b"), Some("big"));
        assert_eq!(n.resolve("nope"), None);
        assert_eq!(n.names()[..3], ["tiny", "big", "ollama"]);
    }

    #[test]
    fn expose_limits_what_clients_may_name() {
        let n = names("gateway:\n  expose: [tiny]\n");
        assert_eq!(n.resolve("tiny"), Some("tiny"));
        assert_eq!(n.resolve("big"), None);
        assert_eq!(
            n.resolve("qwen2.5:0.5b"),
            None,
            "a fallback is used, not offered"
        );
        assert_eq!(n.names(), ["tiny", "qwen2_5_0_5b"]);
    }
}
