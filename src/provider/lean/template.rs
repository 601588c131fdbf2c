//! The chunks of one answer differ, as a rule, only in their text: vLLM repeats the same
//! `id`, `object`, `created`, `model`, index and nulls around each token. Once serde has read
//! one such chunk, the next is known to read the same (but for its text) when it has the same
//! bytes before and after its text and the text between is a plain JSON string: no quote, no
//! backslash, no control character. Such a chunk is then read by two comparisons instead of
//! a parse, which is most of a forwarded token's cost. Any other chunk (an escape in its
//! text, the last one with its finish reason, another server's layout) goes to serde as
//! before; tests/it/fuzz.rs holds the two readers to the same events.
use crate::provider::Usage;

/// The key before a delta's text, once in the chunk.
const KEY: &[u8] = b"\"content\":";

/// What a chunk's bytes around its text must be, and what the rest of it says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template {
    /// Up to and including the opening quote of the text.
    prefix: Vec<u8>,
    /// From the closing quote of the text.
    suffix: Vec<u8>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

impl Template {
    /// Learns from a chunk serde has read whose first choice's delta (and nothing else) gave
    /// `text`: `data` is the chunk's bytes, valid UTF-8. Only from a chunk with no backslash
    /// (so no key is escaped and every quote delimits a string) and one `"content":` key (so
    /// the one found is the delta's), whose text follows it as it is.
    pub(super) fn learn(
        data: &[u8],
        text: &str,
        finish_reason: Option<&str>,
        usage: Option<Usage>,
    ) -> Option<Self> {
        if text.is_empty() || memchr::memchr(b'\\', data).is_some() {
            return None;
        }
        let mut keys = memchr::memmem::find_iter(data, KEY);
        let mut at = keys.next()? + KEY.len();
        if keys.next().is_some() {
            return None;
        }
        while let Some(b' ' | b'\t') = data.get(at) {
            at += 1;
        }
        if data.get(at) != Some(&b'"') {
            return None;
        }
        at += 1;
        let end = at + text.len();
        if data.get(at..end)? != text.as_bytes() || data.get(end) != Some(&b'"') {
            return None;
        }
        Some(Self {
            prefix: data[..at].to_vec(),
            suffix: data[end..].to_vec(),
            finish_reason: finish_reason.map(String::from),
            usage,
        })
    }

    /// The text of a chunk of this shape, if `data` is one.
    pub(super) fn text_of<'a>(&self, data: &'a [u8]) -> Option<&'a str> {
        if data.len() < self.prefix.len() + self.suffix.len() {
            return None;
        }
        let text = data
            .strip_prefix(self.prefix.as_slice())?
            .strip_suffix(self.suffix.as_slice())?;
        // A plain string's contents: these alone would end it, escape or break it.
        let plain = text
            .iter()
            .fold(true, |ok, &c| ok & (c != b'"') & (c != b'\\') & (c >= 0x20));
        if !plain {
            return None;
        }
        std::str::from_utf8(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"ab"},"logprobs":null,"finish_reason":null,"token_ids":null}]}"#;

    #[test]
    fn a_chunk_like_the_learnt_one_gives_its_text() {
        let t = Template::learn(CHUNK, "ab", None, None).unwrap();
        let next = String::from_utf8_lossy(CHUNK).replace("\"ab\"", "\" é x\"");
        assert_eq!(t.text_of(next.as_bytes()), Some(" é x"));
        assert_eq!(t.text_of(CHUNK), Some("ab"));
        let empty = String::from_utf8_lossy(CHUNK).replace("\"ab\"", "\"\"");
        assert_eq!(t.text_of(empty.as_bytes()), Some(""));
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        let t = Template::learn(CHUNK, "ab", None, None).unwrap();
        let with = |text: &str| String::from_utf8_lossy(CHUNK).replace("\"ab\"", text);
        for other in [r#""a\"b""#, r#""a\nb""#, "\"a\u{1}b\"", r#""a" , "b""#] {
            assert_eq!(t.text_of(with(other).as_bytes()), None, "{other}");
        }
        let last = String::from_utf8_lossy(CHUNK)
            .replace("\"finish_reason\":null", "\"finish_reason\":\"length\"");
        assert_eq!(t.text_of(last.as_bytes()), None);
        assert_eq!(t.text_of(&CHUNK[..CHUNK.len() - 1]), None);
    }

    #[test]
    fn it_learns_only_where_the_text_is_certain() {
        // Not the text serde gave, an escape anywhere, a second `content` key, no text.
        assert!(Template::learn(CHUNK, "b", None, None).is_none());
        let escaped = String::from_utf8_lossy(CHUNK).replace("chatcmpl-1", "chat\\u0063mpl");
        assert!(Template::learn(escaped.as_bytes(), "ab", None, None).is_none());
        let twice = String::from_utf8_lossy(CHUNK)
            .replace("\"logprobs\":null", "\"logprobs\":{\"content\":\"ab\"}");
        assert!(Template::learn(twice.as_bytes(), "ab", None, None).is_none());
        assert!(Template::learn(CHUNK, "", None, None).is_none());
        // A space after the colon (Python's default separators) is taken.
        let spaced = String::from_utf8_lossy(CHUNK).replace("\"content\":", "\"content\": ");
        let t = Template::learn(spaced.as_bytes(), "ab", None, None).unwrap();
        assert_eq!(
            t.text_of(spaced.replace("\"ab\"", "\"cd\"").as_bytes()),
            Some("cd")
        );
    }
}
