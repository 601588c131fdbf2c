//! Added time to first token, measured in pairs: one streamed chat request to each arm in
//! turn (the order rotated every round), each arm on its own keep-alive connection, so that
//! the machine's drift between minutes falls on every arm alike. `scripts/bench-gateway`
//! reports the median of the per-round differences against the first arm (the direct one),
//! beside the difference of the medians.
//!
//! A plain blocking client that writes one request and reads raw bytes: the time is taken
//! from the write to the first read that holds a non-empty `content`, with nothing between
//! the socket and the clock to add its own noise.
//!
//!   cargo run --release --example ttft_pairs -- ROUNDS [LABEL=]MODEL@HOST:PORT...
//!   e.g. ttft_pairs 2000 direct=m@127.0.0.1:8001 gateway=m@127.0.0.1:8002
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Arm {
    label: String,
    request: Vec<u8>,
    conn: TcpStream,
    ttft_us: Vec<f64>,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(0);
    let specs: Vec<String> = args.collect();
    if rounds == 0 || specs.len() < 2 {
        eprintln!("usage: ttft_pairs ROUNDS [LABEL=]MODEL@HOST:PORT [LABEL=]MODEL@HOST:PORT...");
        std::process::exit(2);
    }
    let mut arms: Vec<Arm> = specs.iter().map(|s| connect(s)).collect();
    let warmup = 20.min(rounds);
    for round in 0..rounds + warmup {
        let n = arms.len();
        for k in 0..n {
            let arm = &mut arms[(round + k) % n];
            let us = one(arm);
            if round >= warmup {
                arm.ttft_us.push(us);
            }
        }
    }
    report(&arms);
}

fn connect(spec: &str) -> Arm {
    let (label, target) = spec.split_once('=').unwrap_or((spec, spec));
    let (model, addr) = target.split_once('@').unwrap_or_else(|| {
        eprintln!("{spec}: expected MODEL@HOST:PORT");
        std::process::exit(2)
    });
    let conn = TcpStream::connect(addr).unwrap_or_else(|e| {
        eprintln!("{addr}: {e}");
        std::process::exit(1)
    });
    conn.set_nodelay(true).ok();
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let body = format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":32,"stream":true}}"#
    );
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nauthorization: Bearer none\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Arm {
        label: label.to_string(),
        request: request.into_bytes(),
        conn,
        ttft_us: Vec::new(),
    }
}

/// One request: microseconds to the first read holding text; the rest of the answer is read
/// to its end (the chunked body's last chunk) so the connection can carry the next.
fn one(arm: &mut Arm) -> f64 {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let start = Instant::now();
    arm.conn
        .write_all(&arm.request)
        .unwrap_or_else(|e| fail(arm, &e));
    let mut ttft = None;
    loop {
        let n = arm.conn.read(&mut chunk).unwrap_or_else(|e| fail(arm, &e));
        if n == 0 {
            fail(arm, &"connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        if ttft.is_none() && has_text(&buf) {
            ttft = Some(start.elapsed().as_secs_f64() * 1e6);
        }
        if buf.ends_with(b"\r\n0\r\n\r\n") {
            break;
        }
    }
    if !buf.starts_with(b"HTTP/1.1 200") {
        fail(arm, &String::from_utf8_lossy(&buf[..buf.len().min(200)]));
    }
    ttft.unwrap_or_else(|| fail(arm, &"an answer without text"))
}

fn has_text(buf: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":\"";
    buf.windows(KEY.len() + 1)
        .any(|w| w.starts_with(KEY) && w[KEY.len()] != b'"')
}

fn fail(arm: &Arm, e: &dyn std::fmt::Display) -> ! {
    eprintln!("{}: {e}", arm.label);
    std::process::exit(1)
}

fn report(arms: &[Arm]) {
    let direct = &arms[0];
    for arm in arms {
        let line = format!(
            "{:<10} TTFT p50 {:8.1} us  mean {:8.1} us",
            arm.label,
            median(&arm.ttft_us),
            mean(&arm.ttft_us)
        );
        if std::ptr::eq(arm, direct) {
            println!("{line}");
            continue;
        }
        let diffs: Vec<f64> = arm
            .ttft_us
            .iter()
            .zip(&direct.ttft_us)
            .map(|(a, d)| a - d)
            .collect();
        println!(
            "{line}  adds: p50 of pairs {:6.1} us, difference of p50s {:6.1} us, of means {:6.1} us",
            median(&diffs),
            median(&arm.ttft_us) - median(&direct.ttft_us),
            mean(&arm.ttft_us) - mean(&direct.ttft_us)
        );
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}
