//! The floor for any proxy in its own process: a byte relay that understands nothing (tokio's
//! `copy_bidirectional`, one task per connection). `scripts/bench-gateway` puts it between
//! the load generator and the simulator to show how much of the gateway's added latency is
//! the extra hop itself (two more process wake-ups per exchange on loopback).
//!
//!   cargo run --release --example tcp_relay -- LISTEN_PORT UPSTREAM_ADDR
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: tcp_relay LISTEN_PORT UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(("127.0.0.1", port.parse().unwrap_or(0))).await?;
    loop {
        let (mut client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let _ = client.set_nodelay(true);
            if let Ok(mut server) = TcpStream::connect(&upstream).await {
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
