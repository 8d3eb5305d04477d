//! `edge-agent detect --scenario FILE`: scores the rodent detector on camsim scenarios against their
//! ground truth and prints a table (recall, time to alarm, precision, false alarms, false alarms per
//! 100 empty night clips, CPU per frame). Run it with `--release` for meaningful CPU figures:
//!
//! ```sh
//! cargo run --release -p edge-agent --example detect -- \
//!     --scenario tests/camsim/scenarios/kitchen-night.toml --empty-clips 100
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use edge_agent::detect::score::{self, ScoreOptions};

/// Scores the rodent detector on camsim scenarios.
#[derive(Debug, Parser)]
struct Args {
    /// A camsim scenario file (repeatable).
    #[arg(long, required = true)]
    scenario: Vec<PathBuf>,
    /// Frames per second of scenario time given to the detector.
    #[arg(long, default_value_t = 5.0)]
    fps: f64,
    /// Loops of the scenario to score (each with a new seed).
    #[arg(long, default_value_t = 1)]
    loops: u64,
    /// Also count false alarms on at least this many rodent-free clips of the first scenario.
    #[arg(long, default_value_t = 0)]
    empty_clips: usize,
    /// Length of an empty clip, seconds.
    #[arg(long, default_value_t = 10.0)]
    clip_secs: f64,
    /// Override the scenarios' infrared sensor noise (std dev in luma steps), to stress the detector.
    #[arg(long)]
    ir_noise: Option<f64>,
    /// Override the scenarios' infrared frame-to-frame gain jitter (0..0.5).
    #[arg(long)]
    ir_flicker: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for (i, path) in args.scenario.iter().enumerate() {
        let mut scenario = camsim::Scenario::load(path)?;
        if let Some(ir) = scenario.infrared.as_mut() {
            ir.noise = args.ir_noise.unwrap_or(ir.noise);
            ir.flicker = args.ir_flicker.unwrap_or(ir.flicker);
        }
        for l in 0..args.loops {
            let mut s = scenario.clone();
            s.seed = s.seed.wrapping_add(l * 1000);
            let options = ScoreOptions {
                detector_fps: args.fps,
                empty_clips: if i == 0 && l == 0 {
                    args.empty_clips
                } else {
                    0
                },
                clip_secs: args.clip_secs,
                ..ScoreOptions::default()
            };
            let report = score::run_scenario(s, &options)
                .with_context(|| format!("scoring {}", path.display()))?;
            if args.loops > 1 {
                println!("loop {l} (seed +{})", l * 1000);
            }
            println!("{report}");
        }
    }
    Ok(())
}
