//! The load test's lean HTTP/1.1 client on its own, against a hand-driven server: keep-alive
//! reuse, a pooled connection the server closed meanwhile, and an answer whose body runs to
//! the connection's close.
use anorag::provider::lean::scan::LeanEvent;
use anorag::provider::lean::LeanClient;
use anorag::provider::RawSseRequest;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SSE: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";

/// Reads one request (head and `content-length` body); false when the peer closed first.
async fn read_request(s: &mut tokio::net::TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// A server answering each connection's requests with `answer`, closing a connection
/// `close_after` after its last answer (a keep-alive timeout), counting connections.
async fn server(answer: &'static str, close_after: Duration) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let conns = Arc::new(AtomicUsize::new(0));
    let n = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                loop {
                    let got = tokio::time::timeout(close_after, read_request(&mut s)).await;
                    if !matches!(got, Ok(true)) {
                        return; // dropped: the connection closes
                    }
                    if s.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, conns)
}

fn chunked(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
}

fn request(addr: &str) -> RawSseRequest {
    RawSseRequest {
        authority: addr.to_string(),
        path: "/v1/chat/completions".into(),
        body: b"{}".to_vec(),
        api_key: None,
    }
}

async fn answer(c: &Arc<LeanClient>, addr: &str) -> Vec<LeanEvent> {
    let mut s = c.send(&request(addr), true).await.unwrap();
    let mut out = Vec::new();
    while let Some(ev) = s.next().await {
        out.push(ev.unwrap().0);
    }
    out
}

#[tokio::test]
async fn keeps_connections_alive_and_replaces_one_the_server_closed() {
    let body: &'static str = Box::leak(chunked(SSE).into_boxed_str());
    let (addr, conns) = server(body, Duration::from_millis(300)).await;
    let c = Arc::new(LeanClient::new(addr.clone(), Duration::from_secs(2)));
    let want = vec![
        LeanEvent::Delta {
            empty: false,
            text: Some("hi".into()),
            finish_reason: None,
        },
        LeanEvent::Usage(anorag::provider::Usage {
            prompt_tokens: 3,
            completion_tokens: 1,
        }),
    ];
    assert_eq!(answer(&c, &addr).await, want);
    assert_eq!(answer(&c, &addr).await, want);
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "the second request reused the first's connection"
    );
    // The server drops the idle connection; the next request goes out on a new one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(answer(&c, &addr).await, want);
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_that_runs_to_the_close_and_one_cut_short() {
    let whole: &'static str = Box::leak(
        format!("HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n{SSE}").into_boxed_str(),
    );
    let (addr, _) = server(whole, Duration::from_millis(50)).await;
    let c = Arc::new(LeanClient::new(addr.clone(), Duration::from_secs(2)));
    assert_eq!(answer(&c, &addr).await.len(), 2);
    // Cut inside the framing: the answer ends with an error that says so.
    let cut: &'static str = Box::leak(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n10\r\ndata: {\"cho"
            .to_string()
            .into_boxed_str(),
    );
    let (addr, _) = server(cut, Duration::from_millis(50)).await;
    let c = Arc::new(LeanClient::new(addr.clone(), Duration::from_secs(2)));
    let mut s = c.send(&request(&addr), false).await.unwrap();
    let e = loop {
        match s.next().await {
            Some(Err(e)) => break e,
            Some(Ok(_)) => {}
            None => panic!("ended without an error"),
        }
    };
    assert_eq!(e.class, anorag::provider::ErrorClass::StreamBroken);
    assert!(
        e.message
            .contains("closed the connection before the body's end"),
        "{}",
        e.message
    );
    assert!(s.next().await.is_none(), "an error is reported once");
}
