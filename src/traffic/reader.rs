//! Reading a gateway's feed: `follow` keeps one connection to `/anorag/events` open, says
//! when the gateway goes and comes back, and hands each event on; `snapshot` reads the
//! recent events and `/anorag/stats` once (for a one-shot `traffic`).
use super::wire::{parse_line, Event as FeedEvent};
use crate::secret::Secret;
use futures::StreamExt;
use std::time::Duration;

/// A feed line longer than this is not an event: the connection is dropped and made again.
const MAX_LINE: usize = 1 << 20;
/// How long a reader waits before trying a gateway that went away again.
const RETRY: Duration = Duration::from_millis(500);
/// A gateway sends an aggregate every second: a feed silent this long is taken as lost
/// (a gateway stopped, not closed, or a network gone quiet).
const SILENT: Duration = Duration::from_millis(1750);

/// What a reader asks of the feed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Want {
    /// The per-second aggregates and notices alone.
    pub seconds_only: bool,
    /// Follow at most this many new requests a second (fallbacks and failures always).
    pub rows_per_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Up,
    Down(String),
    Event(FeedEvent),
}

fn base(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    }
}

fn get(http: &reqwest::Client, url: String, key: Option<&Secret>) -> reqwest::RequestBuilder {
    let rb = http.get(url);
    match key {
        Some(k) => rb.bearer_auth(k.expose()),
        None => rb,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

/// Follows `addr`'s feed until `on` returns false.
pub async fn follow(
    addr: &str,
    key: Option<Secret>,
    want: Want,
    mut on: impl FnMut(Update) -> bool,
) {
    let http = client();
    let mut url = format!(
        "{}/anorag/events?seconds_only={}",
        base(addr),
        want.seconds_only
    );
    if let Some(n) = want.rows_per_s {
        url.push_str(&format!("&rows_per_s={n}"));
    }
    let mut was_up: Option<bool> = None;
    // The newest second's aggregate passed on: a reader that comes back asks for the kept
    // ones after it, so a silence or a restart of the connection loses no counts.
    let mut last_second: Option<u64> = None;
    loop {
        // The recent events once: a reader that comes back has them already (a gateway
        // that restarted has new ones, but counting a second twice would be worse).
        let live_only = was_up.is_some();
        let url = match (live_only, last_second) {
            (true, Some(t)) => format!("{url}&live_only=true&since={t}"),
            _ => format!("{url}&live_only={live_only}"),
        };
        let why = match get(&http, url, key.as_ref()).send().await {
            Err(e) => format!(
                "cannot reach the gateway: {}",
                crate::provider::ProviderError::from_reqwest(&e, false).message
            ),
            Ok(r) if !r.status().is_success() => {
                format!("the feed answered HTTP {}", r.status().as_u16())
            }
            Ok(r) => {
                if was_up != Some(true) && !on(Update::Up) {
                    return;
                }
                was_up = Some(true);
                let mut passed = |u: Update| {
                    if let Update::Event(FeedEvent::Second(s)) = &u {
                        last_second = last_second.max(Some(s.t));
                    }
                    on(u)
                };
                match read(r, &mut passed).await {
                    Ok(()) => return,
                    Err(why) => why,
                }
            }
        };
        if was_up != Some(false) && !on(Update::Down(why)) {
            return;
        }
        was_up = Some(false);
        tokio::time::sleep(RETRY).await;
    }
}

/// Reads one connection's lines; `Ok` when `on` asked to stop, `Err` with why it ended.
async fn read(r: reqwest::Response, on: &mut impl FnMut(Update) -> bool) -> Result<(), String> {
    let mut body = r.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(SILENT, body.next()).await {
            Err(_) => {
                return Err(format!(
                    "the feed went silent ({:.2} s without a second's figures)",
                    SILENT.as_secs_f64()
                ))
            }
            Ok(None) => break,
            Ok(Some(c)) => c,
        };
        let chunk = chunk.map_err(|e| {
            format!(
                "the feed broke: {}",
                crate::provider::ProviderError::from_reqwest(&e, false).message
            )
        })?;
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &buf[start..]) {
            let line = &buf[start..start + i];
            start += i + 1;
            if line.is_empty() {
                continue;
            }
            // A line that is not an event is skipped, not fatal: the feed goes on.
            if let Ok(ev) = parse_line(line) {
                if !on(Update::Event(ev)) {
                    return Ok(());
                }
            }
        }
        buf.drain(..start);
        if buf.len() > MAX_LINE {
            return Err(format!("a feed line over {MAX_LINE} bytes"));
        }
    }
    Err("the gateway closed its feed".into())
}

/// One GET of a gateway's path, answered with success, or why not.
async fn fetch(
    http: &reqwest::Client,
    addr: &str,
    path: &str,
    key: Option<&Secret>,
) -> Result<reqwest::Response, String> {
    let r = get(http, format!("{}{path}", base(addr)), key)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| {
            format!(
                "{addr}: {}",
                crate::provider::ProviderError::from_reqwest(&e, false).message
            )
        })?;
    if !r.status().is_success() {
        return Err(format!(
            "{addr}: {path} answered HTTP {}",
            r.status().as_u16()
        ));
    }
    Ok(r)
}

/// The gateway's `/anorag/stats`: its settings, load, routes with their circuits, and the
/// last minute's per-second aggregates.
pub async fn stats(addr: &str, key: Option<&Secret>) -> Result<serde_json::Value, String> {
    stats_with(&client(), addr, key).await
}

async fn stats_with(
    http: &reqwest::Client,
    addr: &str,
    key: Option<&Secret>,
) -> Result<serde_json::Value, String> {
    fetch(http, addr, "/anorag/stats", key)
        .await?
        .json::<serde_json::Value>()
        .await
        .map_err(|e| format!("{addr}: unreadable /anorag/stats ({e})"))
}

/// The gateway's recent events and its `/anorag/stats`, read once.
pub async fn snapshot(
    addr: &str,
    key: Option<&Secret>,
) -> Result<(Vec<FeedEvent>, serde_json::Value), String> {
    let http = client();
    let stats = stats_with(&http, addr, key);
    let events = async {
        let text = fetch(&http, addr, "/anorag/events?snapshot=true", key)
            .await?
            .bytes()
            .await
            .map_err(|e| format!("{addr}: the feed broke ({e})"))?;
        Ok::<_, String>(
            text.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| parse_line(l).ok())
                .collect::<Vec<_>>(),
        )
    };
    let (stats, events) = tokio::join!(stats, events);
    Ok((events?, stats?))
}
