//! SSE events of an OpenAI-style chat stream, read for the load test's figures only: whether a
//! chunk has choices (a token event), whether its content is empty, the usage, an in-band error
//! and `[DONE]`. Everything else in a chunk is validated and skipped, without a `String` per
//! event. The rules are those of `provider::sse` and `provider::openai::SseChatDecoder`;
//! tests/it/fuzz.rs checks both on the same bytes, vLLM's own among them.
use super::template::Template;
use crate::provider::error::{classify_in_band, ErrorClass, ProviderError};
use crate::provider::Usage;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// What one SSE event means for the figures.
#[derive(Debug, Clone, PartialEq)]
pub enum LeanEvent {
    /// A chunk with choices; `text` and `finish_reason` only when the answer is kept
    /// (multi-turn, the gateway).
    Delta {
        empty: bool,
        text: Option<String>,
        finish_reason: Option<String>,
    },
    Usage(Usage),
}

/// The stream's end as the scanner sees it.
#[derive(Debug)]
pub enum End {
    Done,
    Error(ProviderError),
}

#[derive(Debug, Default)]
pub struct Scanner {
    lines: crate::provider::sse::Lines,
    fields: Fields,
}

/// The event being read, and what the stream has shown so far.
#[derive(Debug, Default)]
struct Fields {
    keep_text: bool,
    data: Vec<u8>,
    has_data: bool,
    seen_any: bool,
    /// The layout of this stream's chunks, once learnt (see `template`).
    template: Option<Template>,
    /// Chunks the template did not fit: a stream whose chunks vary in more than their
    /// text stops learning.
    misses: u8,
}

/// After this many chunks that did not fit, a stream's template is no longer learnt.
const MAX_MISSES: u8 = 8;

impl Scanner {
    pub fn new(keep_text: bool) -> Self {
        Self {
            fields: Fields {
                keep_text,
                ..Fields::default()
            },
            ..Self::default()
        }
    }

    /// Feeds body bytes; events go to `out`; `Some` once the stream is over.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<LeanEvent>) -> Option<End> {
        let cap = crate::provider::body::MAX_EVENT_BYTES;
        if let Some(data) = self.single_data_event(bytes) {
            // The common event, read in place rather than copied line by line.
            if data.len() > cap {
                return Some(End::Error(over_cap()));
            }
            let fields = &mut self.fields;
            return fields.on_data(data, out);
        }
        let fields = &mut self.fields;
        let mut end = None;
        self.lines.feed(bytes, |line| {
            end = fields.on_line(line, out);
            if end.is_none() && fields.data.len() > cap {
                end = Some(End::Error(over_cap()));
            }
            end.is_some()
        });
        if end.is_none() && self.lines.pending() + self.fields.data.len() > cap {
            end = Some(End::Error(over_cap()));
        }
        end
    }

    /// `bytes` as one whole event of one `data:` line (`data: X\n\n`, nothing pending from
    /// earlier reads): its data. What the line-by-line path would make of it, without the
    /// copies.
    fn single_data_event<'b>(&self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        if !self.lines.is_clean() || self.fields.has_data {
            return None;
        }
        let line = bytes.strip_suffix(b"\n\n")?;
        if !line.starts_with(b"data:") || memchr::memchr2(b'\n', b'\r', line).is_some() {
            return None;
        }
        Some(crate::provider::sse::split_field(line).1)
    }

    /// Why the body ended too soon (the words of the reqwest path's decoder).
    pub fn truncated(&self) -> ProviderError {
        crate::provider::sse::truncated(
            self.lines.pending() > 0 || self.fields.has_data,
            self.fields.seen_any,
        )
    }
}

fn over_cap() -> ProviderError {
    crate::provider::body::over_cap(
        "the server",
        "one SSE event",
        crate::provider::body::MAX_EVENT_BYTES,
    )
}

impl Fields {
    fn on_line(&mut self, line: &[u8], out: &mut Vec<LeanEvent>) -> Option<End> {
        if line.is_empty() {
            if !self.has_data {
                return None;
            }
            self.has_data = false;
            let data = std::mem::take(&mut self.data);
            let end = self.on_data(&data, out);
            self.data = data;
            self.data.clear();
            return end;
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = crate::provider::sse::split_field(line);
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        None
    }

    fn on_data(&mut self, raw: &[u8], out: &mut Vec<LeanEvent>) -> Option<End> {
        if let Some(t) = &self.template {
            if let Some(text) = t.text_of(raw) {
                self.seen_any = true;
                let (finish, usage) = (t.finish_reason.as_deref(), t.usage);
                push_events(out, self.keep_text, Some(Some(text)), finish, usage);
                return None;
            }
            self.misses = self.misses.saturating_add(1);
        }
        // Invalid UTF-8 is repaired, and the data trimmed, as the reqwest path's decoder does.
        let repaired;
        let (data, valid) = match std::str::from_utf8(raw) {
            Ok(s) => (s, true),
            Err(_) => {
                repaired = String::from_utf8_lossy(raw).into_owned();
                (repaired.as_str(), false)
            }
        };
        let data = data.trim();
        if data.starts_with("[DONE]") {
            return Some(End::Done);
        }
        self.seen_any = true;
        let chunk: LeanChunk = match serde_json::from_str(data) {
            Ok(c) => c,
            Err(e) => {
                let shown: String = data.chars().take(120).collect();
                return Some(End::Error(ProviderError::new(
                    ErrorClass::StreamBroken,
                    format!("malformed JSON chunk ({e}): {shown}"),
                )));
            }
        };
        if let Some(err) = chunk.error.filter(|e| !e.is_null()) {
            return Some(End::Error(classify_in_band(
                &serde_json::json!({ "error": err }),
            )));
        }
        let usage = chunk.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        });
        if let Some(c) = chunk.choices.0 {
            if self.misses < MAX_MISSES && c.message.is_none() && c.text.is_none() {
                let text = c.delta.as_ref().and_then(|d| d.content.as_deref());
                if let (Some(text), true) = (text, valid) {
                    let finish = c.finish_reason.as_deref();
                    if let Some(t) = Template::learn(raw, text, finish, usage) {
                        self.template = Some(t);
                    }
                }
            }
            let text = c.delta.or(c.message).and_then(|m| m.content).or(c.text);
            let finish = c.finish_reason.as_deref();
            push_events(out, self.keep_text, Some(text.as_deref()), finish, usage);
        } else {
            push_events(out, self.keep_text, None, None, usage);
        }
        None
    }
}

/// A chunk's events: a delta when it has a choice (`choice` is `Some`, with its text if
/// any; text and finish reason kept only when asked), then its usage.
fn push_events(
    out: &mut Vec<LeanEvent>,
    keep: bool,
    choice: Option<Option<&str>>,
    finish_reason: Option<&str>,
    usage: Option<Usage>,
) {
    if let Some(text) = choice {
        out.push(LeanEvent::Delta {
            empty: text.is_none_or(str::is_empty),
            text: keep.then(|| text.unwrap_or_default().to_string()),
            finish_reason: finish_reason.filter(|_| keep).map(String::from),
        });
    }
    if let Some(u) = usage {
        out.push(LeanEvent::Usage(u));
    }
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a chat completion chunk")]
struct LeanChunk<'a> {
    #[serde(default, borrow)]
    choices: FirstChoice<'a>,
    #[serde(default)]
    usage: Option<LeanUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a choice")]
struct LeanChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<LeanMessage<'a>>,
    #[serde(default, borrow)]
    message: Option<LeanMessage<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
    /// A raw completion's text.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a message")]
struct LeanMessage<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
// Named for what it is in parse errors, alike in both stream readers.
#[serde(expecting = "a usage object")]
struct LeanUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// The first element of `choices`, the rest validated and skipped: no `Vec` per chunk.
#[derive(Default)]
struct FirstChoice<'a>(Option<LeanChoice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<LeanChoice<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    //! The lean reader against the full decoder on vLLM's captured stream and on generated
    //! ones is in tests/it/fuzz.rs.
    use super::*;

    #[test]
    fn an_event_over_the_cap_ends_the_stream() {
        let mut s = Scanner::new(false);
        let mut out = Vec::new();
        let big = vec![b'x'; crate::provider::body::MAX_EVENT_BYTES + 1];
        assert!(s.push(b"data: ", &mut out).is_none());
        let Some(End::Error(e)) = s.push(&big, &mut out) else {
            panic!("no error")
        };
        assert!(e.message.contains("over the"), "{}", e.message);
    }

    #[test]
    fn a_short_body_says_where_it_stopped() {
        let mut s = Scanner::new(false);
        let mut out = Vec::new();
        assert!(s.truncated().message.ends_with("before any event"));
        s.push(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
            &mut out,
        );
        assert!(s.truncated().message.ends_with("without `data: [DONE]`"));
        s.push(b"data: {\"cho", &mut out);
        assert!(s.truncated().message.ends_with("in the middle of an event"));
        assert_eq!(
            out,
            [LeanEvent::Delta {
                empty: false,
                text: None,
                finish_reason: None
            }]
        );
    }
}
