//! `make bench`: how fast the checked decoder and the encoder handle each message, since dispatch
//! decodes every event the district's edges send. Prints a table; passes or fails nothing.

use bl_proto::command::{Command, CommandResult};
use bl_proto::config::EdgeConfig;
use bl_proto::event::EdgeEvent;
use bl_proto::state::EdgeState;
use bl_proto::{Message, decode, encode};
use std::hint::black_box;
use std::time::{Duration, Instant};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/decode");
const RUN: Duration = Duration::from_millis(400);

fn main() {
    println!(
        "proto decode/encode (one core, {} ms per row)\n",
        RUN.as_millis()
    );
    println!("| message | bytes | decode msg/s | decode µs | encode msg/s |");
    println!("|---|---:|---:|---:|---:|");
    row::<EdgeEvent>("detection.json");
    row::<EdgeEvent>("camera-event.json");
    row::<EdgeState>("edge-state.json");
    row::<Command>("command-start-live.json");
    row::<CommandResult>("command-result.json");
    row::<EdgeConfig>("edge-config.json");
}

fn row<M: Message + serde::Serialize>(file: &str) {
    let bytes = std::fs::read(format!("{CORPUS}/{file}")).expect("corpus file");
    let message: M = decode(&bytes).expect("corpus decodes");
    let decodes = per_second(|| {
        black_box(decode::<M>(black_box(&bytes)).unwrap());
    });
    let encodes = per_second(|| {
        black_box(encode(black_box(&message)));
    });
    println!(
        "| {file} | {} | {:.0} | {:.2} | {:.0} |",
        bytes.len(),
        decodes,
        1e6 / decodes,
        encodes
    );
}

/// Calls `f` repeatedly for [`RUN`] and returns calls per second.
fn per_second(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..64 {
            f();
        }
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
