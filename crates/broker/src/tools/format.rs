//! What the tools print and read: the `tail` table and JSON lines, and the
//! `pub` CSV format. Pure text in and out.

use tickwire_client::Quote;

/// The table's header, aligned with [`table_row`].
pub fn table_header() -> String {
    format!(
        "{:<12} {:<16} {:>10} {:>12} {:>12} {:>12} {:>14}",
        "time", "topic", "seq", "bid", "ask", "last", "volume"
    )
}

/// One quote as a table row; `time` is the producer's `ts` (UTC, ms).
pub fn table_row(q: &Quote, seq: u64) -> String {
    format!(
        "{:<12} {:<16} {:>10} {:>12} {:>12} {:>12} {:>14}",
        clock(q.ts),
        q.topic,
        seq,
        number(q.bid),
        number(q.ask),
        number(q.last),
        number(q.volume)
    )
}

/// One quote as a JSON line: exactly what a JSON-mode subscriber receives
/// (the protocol's own encoder; non-finite numbers as `null`, `ts` exact).
pub fn json_line(q: &Quote, seq: u64) -> String {
    let mut out = Vec::new();
    tickwire_protocol::server::json_quote(q, seq, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "-".into()
    }
}

/// `HH:MM:SS.mmm` (UTC) of a ns timestamp.
fn clock(ts_ns: u64) -> String {
    let ms = ts_ns / 1_000_000;
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        ms % 1000
    )
}

const COLUMNS: [&str; 7] = [
    "topic", "bid", "ask", "bid_size", "ask_size", "last", "volume",
];

/// Parses a CSV of quotes: a header naming at least `topic,bid,ask,
/// bid_size,ask_size,last,volume` (any order, `ts` optional), then one row
/// per quote. Empty cells are NaN prices / 0 sizes; `ts` defaults to
/// `now_ns`. Errors name the line.
pub fn parse_csv(text: &str, now_ns: u64) -> Result<Vec<Quote>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty CSV: a header line is needed")?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| names.iter().position(|n| *n == name);
    let mut index = [0usize; 7];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = col(name).ok_or_else(|| format!("CSV header lacks `{name}`: {header:?}"))?;
    }
    let ts_col = col("ts");
    let mut quotes = Vec::new();
    for (n, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let cell = |i: usize| cells.get(i).copied().unwrap_or("");
        let num = |i: usize, empty: f64| -> Result<f64, String> {
            match cell(i) {
                "" => Ok(empty),
                s => s
                    .parse()
                    .map_err(|_| format!("line {}: {:?} is not a number", n + 1, s)),
            }
        };
        let topic = cell(index[0]);
        if !tickwire_protocol::topic::is_valid_topic(topic) {
            return Err(format!("line {}: {topic:?} is not a valid topic", n + 1));
        }
        let ts = match ts_col.map(cell) {
            None | Some("") => now_ns,
            Some(s) => s
                .parse()
                .map_err(|_| format!("line {}: ts {s:?} is not an integer", n + 1))?,
        };
        quotes.push(Quote {
            topic: topic.to_owned(),
            bid: num(index[1], f64::NAN)?,
            ask: num(index[2], f64::NAN)?,
            bid_size: num(index[3], 0.0)?,
            ask_size: num(index[4], 0.0)?,
            last: num(index[5], f64::NAN)?,
            volume: num(index[6], 0.0)?,
            ts,
        });
    }
    Ok(quotes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> Quote {
        Quote {
            topic: "AAPL".into(),
            bid: 189.12,
            ask: 189.14,
            bid_size: 300.0,
            ask_size: 200.0,
            last: f64::NAN,
            volume: 1e6,
            ts: 1_732_345_678_901_234_567,
        }
    }

    #[test]
    fn a_row_lines_up_with_the_header_and_shows_missing_prices_as_dashes() {
        let row = table_row(&q(), 42);
        assert_eq!(row.len(), table_header().len());
        assert!(row.starts_with("07:07:58.901 AAPL "), "{row}");
        assert!(row.contains(" 42 ") && row.contains("189.12") && row.contains(" - "));
    }

    #[test]
    fn json_lines_have_the_protocol_shape() {
        let v: serde_json::Value = serde_json::from_str(&json_line(&q(), 42)).unwrap();
        assert_eq!(v["type"], "quote");
        assert_eq!(v["seq"], 42);
        assert_eq!(v["bid"], 189.12);
        assert!(v["last"].is_null());
        assert_eq!(v["ts"].as_u64(), Some(1_732_345_678_901_234_567));
    }

    #[test]
    fn csv_rows_become_quotes_and_bad_rows_name_their_line() {
        let text = "topic,bid,ask,bid_size,ask_size,last,volume,ts\nAAPL,1.5,1.6,10,20,,1000,7\n\nMSFT,2,3,,,2.5,0,\n";
        let quotes = parse_csv(text, 99).unwrap();
        assert_eq!(quotes.len(), 2);
        assert_eq!((quotes[0].bid, quotes[0].ts), (1.5, 7));
        assert!(quotes[0].last.is_nan());
        assert_eq!(
            (quotes[1].topic.as_str(), quotes[1].ts, quotes[1].bid_size),
            ("MSFT", 99, 0.0)
        );
        let reordered = "volume,last,ask_size,bid_size,ask,bid,topic\n1,2,3,4,5,6,X\n";
        assert_eq!(parse_csv(reordered, 0).unwrap()[0].bid, 6.0);
        let err = parse_csv(
            "topic,bid,ask,bid_size,ask_size,last,volume\nA,x,1,1,1,1,1\n",
            0,
        )
        .unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse_csv("topic,bid\n", 0).unwrap_err().contains("`ask`"));
        assert!(parse_csv(
            "topic,bid,ask,bid_size,ask_size,last,volume\nBAD TOPIC,1,1,1,1,1,1\n",
            0
        )
        .unwrap_err()
        .contains("not a valid topic"));
        assert!(parse_csv("", 0).is_err());
    }
}
