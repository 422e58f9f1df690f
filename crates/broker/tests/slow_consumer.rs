//! A subscriber that stops reading is closed with 1008 once its queue passes
//! the outbound limit; everyone else keeps getting every quote.

mod common;

use std::sync::atomic::Ordering;

use common::*;

#[test]
fn a_stalled_reader_is_closed_1008_and_others_get_everything() {
    let mut config = test_config();
    config.server.workers = 1; // both subscribers on the same worker
    config.subscriber.outbound_hard_limit_bytes = 64 * 1024;
    let broker = start_with(config);
    let mut stalled = raw_upgrade(broker.ws_addr(), "/ws");
    use std::io::Write;
    let sub = br#"{"op":"subscribe","topics":["HOT"],"snapshot":false}"#;
    stalled
        .write_all(&client_frame(true, 0x1, sub, true))
        .unwrap();
    let (opcode, ack) = read_server_frame(&mut stalled).unwrap();
    assert_eq!(opcode, 0x1);
    assert!(String::from_utf8_lossy(&ack).contains("subscribed"));

    let mut normal = connect(&broker);
    subscribe(&mut normal, &["HOT"], false);

    // 18 MB in all: far more than the socket buffers plus the 64 KiB limit
    // hold for the stalled reader. The normal reader drains each chunk of
    // 200 quotes (~36 KB, under the limit even with no kernel buffering)
    // before the next is published, as a reader keeping up would.
    const CHUNK: u64 = 200;
    const N: u64 = 100_000;
    let mut p = publisher(&broker);
    let mut expected_seq = 1;
    for _ in 0..N / CHUNK {
        for i in 0..CHUNK {
            p.publish(quote("HOT", i as f64)).unwrap();
        }
        p.flush().unwrap();
        for _ in 0..CHUNK {
            let q = next_quote(&mut normal);
            assert_eq!(q["seq"].as_u64(), Some(expected_seq));
            expected_seq += 1;
        }
    }
    assert!(wait_until(|| broker
        .metrics()
        .slow_consumer_closes
        .load(Ordering::Relaxed)
        == 1));
    // The stalled client, reading at last, finds a close 1008 after some quotes.
    assert_eq!(read_close_code(&mut stalled), Some(1008));
    assert_eq!(broker.metrics().closes_sent(1008), 1);
}
