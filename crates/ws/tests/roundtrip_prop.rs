//! Property tests: whatever the encoders produce, the decoder of the other
//! side gives back, under any fragmentation, masks and input chunking.

mod common;

use common::feed_split;
use proptest::prelude::*;
use tickwire_ws::frame::{encode_frame, encode_masked_frame, write_header};
use tickwire_ws::{DecoderLimits, Event, FrameDecoder, OpCode, Role};

#[derive(Debug, Clone)]
enum Msg {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

impl Msg {
    fn opcode(&self) -> OpCode {
        match self {
            Msg::Text(_) => OpCode::Text,
            Msg::Binary(_) => OpCode::Binary,
            Msg::Ping(_) => OpCode::Ping,
            Msg::Pong(_) => OpCode::Pong,
        }
    }

    fn payload(&self) -> &[u8] {
        match self {
            Msg::Text(s) => s.as_bytes(),
            Msg::Binary(b) | Msg::Ping(b) | Msg::Pong(b) => b,
        }
    }

    fn event(&self) -> Event {
        match self.clone() {
            Msg::Text(s) => Event::Text(s),
            Msg::Binary(b) => Event::Binary(b),
            Msg::Ping(b) => Event::Ping(b),
            Msg::Pong(b) => Event::Pong(b),
        }
    }
}

/// A data message plus the byte offsets where it is cut into fragments
/// (anywhere, including inside UTF-8 chars) and control frames to
/// interleave between its fragments.
#[derive(Debug, Clone)]
struct Plan {
    msg: Msg,
    cuts: Vec<usize>,
    controls: Vec<Msg>,
    masks: Vec<[u8; 4]>,
}

fn control() -> impl Strategy<Value = Msg> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Msg::Ping),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Msg::Pong),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    let data = prop_oneof![
        ".{0,200}".prop_map(Msg::Text),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Msg::Binary),
        // Lengths that need the 16-bit length encoding.
        prop::collection::vec(any::<u8>(), 126..1200).prop_map(Msg::Binary),
        control(),
    ];
    (
        data,
        prop::collection::vec(any::<usize>(), 0..5),
        prop::collection::vec(control(), 0..3),
        prop::collection::vec(any::<[u8; 4]>(), 1..8),
    )
        .prop_map(|(msg, cuts, controls, masks)| Plan {
            msg,
            cuts,
            controls,
            masks,
        })
}

/// Fragment boundaries for `len` bytes: sorted cut points within 0..=len.
fn pieces(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Encodes a plan; `emit(opcode, fin, payload, frame_index)` writes one
/// frame. Returns the events the decoder must produce, in order.
fn encode_plan(plans: &[Plan], mut emit: impl FnMut(OpCode, bool, &[u8], usize)) -> Vec<Event> {
    let mut expected = Vec::new();
    let mut index = 0;
    for plan in plans {
        let payload = plan.msg.payload();
        if matches!(plan.msg, Msg::Ping(_) | Msg::Pong(_)) {
            emit(plan.msg.opcode(), true, payload, index);
            index += 1;
            expected.push(plan.msg.event());
            continue;
        }
        let parts = pieces(payload.len(), &plan.cuts);
        let last = parts.len() - 1;
        for (i, (start, end)) in parts.into_iter().enumerate() {
            let opcode = if i == 0 {
                plan.msg.opcode()
            } else {
                OpCode::Continuation
            };
            emit(opcode, i == last, &payload[start..end], index);
            index += 1;
            // Control frames may sit between fragments of a data message.
            if i < last {
                if let Some(c) = plan.controls.get(i) {
                    emit(c.opcode(), true, c.payload(), index);
                    index += 1;
                    expected.push(c.event());
                }
            }
        }
        expected.push(plan.msg.event());
    }
    expected
}

fn limits() -> DecoderLimits {
    DecoderLimits {
        accept_binary: true,
        ..DecoderLimits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_frames_round_trip_through_server_decoder(
        plans in prop::collection::vec(plan(), 1..5),
        chunk_cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut bytes = Vec::new();
        let expected = encode_plan(&plans, |opcode, fin, payload, index| {
            let masks = &plans[index % plans.len()].masks;
            let mask = masks[index % masks.len()];
            encode_masked_frame(&mut bytes, opcode, fin, payload, mask);
        });
        let mut dec = FrameDecoder::new(Role::Server, limits());
        let events = feed_split(&mut dec, &bytes, &chunk_cuts).unwrap();
        prop_assert_eq!(events, expected);
        prop_assert!(dec.is_idle());
    }

    #[test]
    fn server_frames_round_trip_through_client_decoder(
        plans in prop::collection::vec(plan(), 1..5),
        chunk_cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut bytes = Vec::new();
        let expected = encode_plan(&plans, |opcode, fin, payload, _| {
            if fin {
                encode_frame(&mut bytes, opcode, payload);
            } else {
                write_header(&mut bytes, opcode, false, payload.len(), None);
                bytes.extend_from_slice(payload);
            }
        });
        let mut dec = FrameDecoder::new(Role::Client, limits());
        let events = feed_split(&mut dec, &bytes, &chunk_cuts).unwrap();
        prop_assert_eq!(events, expected);
        prop_assert!(dec.is_idle());
    }

    #[test]
    fn close_round_trip(code in prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
                        reason in ".{0,80}", mask in any::<[u8; 4]>()) {
        let mut bytes = Vec::new();
        tickwire_ws::frame::encode_masked_close(&mut bytes, code, &reason, mask);
        let mut dec = FrameDecoder::new(Role::Server, limits());
        let events = feed_split(&mut dec, &bytes, &[]).unwrap();
        let Some(Event::Close(Some((got_code, got_reason)))) = events.into_iter().next() else {
            return Err(TestCaseError::fail("no close event"));
        };
        prop_assert_eq!(got_code, code);
        prop_assert!(got_reason.len() <= 123);
        prop_assert!(reason.starts_with(&got_reason));
    }
}
