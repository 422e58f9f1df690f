//! Shared fixtures for tickwire's criterion benchmarks (`benches/*.rs`).
//!
//! Nothing here is benchmarked itself; it only builds realistic inputs so
//! every bench measures the same kind of data.

use tickwire_protocol::Quote;

/// A typical equity quote: short topic, realistic prices and sizes, a
/// nanosecond timestamp.
pub fn typical_quote(topic: &str) -> Quote {
    Quote {
        topic: topic.to_owned(),
        bid: 188.57,
        ask: 188.60,
        bid_size: 700.0,
        ask_size: 1400.0,
        last: 188.57,
        volume: 45_000.0,
        ts: 1_795_414_051_686_200_042,
    }
}

/// `n` typical quotes over a small rotating set of tickers, with prices
/// that move a little from quote to quote.
pub fn quote_batch(n: usize) -> Vec<Quote> {
    const TOPICS: [&str; 8] = [
        "AAPL", "MSFT", "NVDA", "AMZN", "BTC-USD", "ETH-USD", "EURUSD", "GOOGL",
    ];
    (0..n)
        .map(|i| {
            let mut q = typical_quote(TOPICS[i % TOPICS.len()]);
            let step = (i % 17) as f64 * 0.01;
            q.bid += step;
            q.ask += step;
            q.last += step;
            q.ts += i as u64 * 1_000;
            q
        })
        .collect()
}

/// A text payload of exactly `len` bytes that looks like a client control
/// message (JSON, ASCII), padded with a long topic list.
pub fn text_payload(len: usize) -> Vec<u8> {
    let mut s = String::from(r#"{"op":"subscribe","id":42,"topics":["AAPL","MSFT""#);
    let mut i = 0;
    while s.len() + 12 < len {
        s.push_str(&format!(",\"T{:03}\"", i % 1000));
        i += 1;
    }
    s.push_str("]}");
    while s.len() < len {
        s.insert(s.len() - 2, ' ');
    }
    s.truncate(len);
    s.into_bytes()
}

/// A typical browser (Chrome) WebSocket upgrade request head.
pub const BROWSER_UPGRADE_REQUEST: &str = "GET /ws?format=json HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://127.0.0.1:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// A typical subscribe request with three topics (two exact, one pattern).
pub const SUBSCRIBE_3_TOPICS: &str =
    r#"{"op":"subscribe","topics":["AAPL","MSFT","BTC*"],"id":7,"snapshot":true}"#;
