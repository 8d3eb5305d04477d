//! Every parser of untrusted input in bl-proto, fed arbitrary bytes: the only property checked is that
//! nothing panics (errors are fine).
#![no_main]

use bl_proto::command::{Command, CommandResult};
use bl_proto::config::{ClockTime, EdgeConfig};
use bl_proto::event::EdgeEvent;
use bl_proto::evidence::Sha256Hex;
use bl_proto::state::EdgeState;
use bl_proto::topic::Topic;
use bl_proto::{CameraId, EdgeId, GatewayNodeId, SigningKey, decode, encode, token};
use libfuzzer_sys::fuzz_target;

fn roundtrip<M: bl_proto::Message>(data: &[u8]) {
    // Whatever decodes is encoded again, so encoding is exercised on every accepted shape.
    if let Ok(msg) = decode::<M>(data) {
        let _ = decode::<M>(&encode(&msg));
    }
}

fuzz_target!(|data: &[u8]| {
    roundtrip::<EdgeState>(data);
    roundtrip::<EdgeEvent>(data);
    roundtrip::<Command>(data);
    roundtrip::<CommandResult>(data);
    roundtrip::<EdgeConfig>(data);

    let text = String::from_utf8_lossy(data);
    let _ = Topic::parse(&text);
    let _ = text.parse::<EdgeId>();
    let _ = text.parse::<CameraId>();
    let _ = text.parse::<GatewayNodeId>();
    let _ = text.parse::<Sha256Hex>();
    let _ = text.parse::<ClockTime>();

    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = token::verify(&text, &key, 1_740_816_930);
});
