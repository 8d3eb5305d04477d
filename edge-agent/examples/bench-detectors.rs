//! `make bench`: CPU milliseconds per frame of each detector — the rodent detector at its working
//! size, the person model at its input sizes, the head classifier per head — as thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) of each call over many camsim frames, with OpenCV held to one
//! thread so the calling thread's clock is all the work. Other processes loading the machine slow
//! the wall clock, not these figures (much: caches and memory bandwidth are shared). Prints a
//! table; passes or fails nothing.
//!
//! `--frames N` caps the frames per detector (default: the rodent detector sees 2 loops of the
//! night scenario at 5 fps, the person model 40 frames, the head classifier every head of 100
//! frames).

#[path = "bench_support/mod.rs"]
mod bench_support;

use bench_support::{Spread, cpu_model, load_average, repo_root, thread_cpu_ms};
use camsim::scene::ObjectClass;
use camsim::truth::{TruthLine, truth_lines};
use camsim::{Renderer, Scenario};
use edge_agent::detect::head::{HeadClassifier, HeuristicHead, head_region};
use edge_agent::detect::yolo::{self, PersonModel, YoloConfig};
use edge_agent::detect::{Detector, RodentConfig, RodentDetector, downscale, score};
use opencv::core::{Mat, Rect};
use opencv::prelude::*;

/// The rodent detector's target on a 320x180 frame (issue 3).
const RODENT_TARGET_MS: f64 = 3.0;

fn main() -> anyhow::Result<()> {
    let cap: Option<usize> = std::env::args()
        .skip_while(|a| a != "--frames")
        .nth(1)
        .map(|n| n.parse())
        .transpose()?;
    opencv::core::set_num_threads(1)?;
    let mut rows = vec![rodent(cap)?];
    rows.extend(person(cap)?);
    rows.push(head(cap)?);

    println!(
        "edge detectors · thread CPU per call (OpenCV on 1 thread) · {} · load average {}",
        cpu_model(),
        load_average()
    );
    println!(
        "  {:<34} {:>12} {:>9} {:>9} {:>8}",
        "detector", "input", "median ms", "p95 ms", "calls"
    );
    for r in &rows {
        println!(
            "  {:<34} {:>12} {:>9.2} {:>9.2} {:>8}{}",
            r.name, r.input, r.cpu.median, r.cpu.p95, r.cpu.n, r.note
        );
    }
    Ok(())
}

struct Row {
    name: String,
    input: String,
    cpu: Spread,
    note: String,
}

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    let path = repo_root().join(format!("tests/camsim/scenarios/{name}.toml"));
    Ok(Scenario::load(&path)?)
}

/// The rodent detector over the night kitchen (rodents, insect, towel, lights), as `edge-agent
/// detect` feeds it: frames shrunk to 320x180 beforehand (ingest delivers that size), 5 fps.
fn rodent(cap: Option<usize>) -> anyhow::Result<Row> {
    let night = scenario("kitchen-night")?;
    let config = RodentConfig {
        ignore: vec![score::camsim_strip()],
        ..RodentConfig::default()
    };
    let (w, h) = (config.tuning.width, config.tuning.height);
    let mut detector = RodentDetector::new(config)?;
    let renderer = Renderer::new(night.clone());
    let step = (night.fps / 5).max(1) as u64;
    let frames = cap.unwrap_or(2 * (night.frames_per_loop() / step) as usize);
    let mut ms = Vec::with_capacity(frames);
    for k in 0..frames as u64 {
        let n = k * step;
        let picture = renderer.render(n);
        let small = downscale(
            picture.luma(),
            picture.width as u32,
            picture.height as u32,
            w,
            h,
        )?;
        let frame = small.frame(n * 1000 / night.fps as u64, 23 * 60);
        let started = thread_cpu_ms();
        detector.process(&frame);
        ms.push(thread_cpu_ms() - started);
    }
    let cpu = Spread::of(ms);
    let verdict = if cpu.p95 <= RODENT_TARGET_MS {
        "meets"
    } else {
        "MISSES"
    };
    Ok(Row {
        name: "rodent (MOG2 + blobs + tracker)".into(),
        input: format!("{w}x{h}"),
        cpu,
        note: format!("  target ≤ {RODENT_TARGET_MS} ms: p95 {verdict}"),
    })
}

/// The person model (yolov3-tiny, OpenCV DNN) on day-kitchen main-stream frames, at its default
/// input (416) and the faster 320.
fn person(cap: Option<usize>) -> anyhow::Result<Vec<Row>> {
    let dir = yolo::models_dir().join(yolo::DEFAULT_MODEL_DIR);
    let day = scenario("kitchen-day")?;
    let renderer = Renderer::new(day.clone());
    let frames = cap.unwrap_or(40);
    let pictures: Vec<Mat> = (0..frames as u64)
        .map(|k| bgr(&renderer.render(k * day.fps as u64)))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for input in [416, 320] {
        let mut model = match PersonModel::load(YoloConfig {
            input,
            ..YoloConfig::in_dir(&dir)
        }) {
            Ok(m) => m,
            Err(e) => {
                rows.push(Row {
                    name: "person (yolov3-tiny)".into(),
                    input: format!("{input}x{input}"),
                    cpu: Spread::default(),
                    note: format!("  not measured: {e}"),
                });
                continue;
            }
        };
        model.detect(&pictures[0])?; // the first call sets the network up
        let mut ms = Vec::with_capacity(frames);
        for p in &pictures {
            let started = thread_cpu_ms();
            model.detect(p)?;
            ms.push(thread_cpu_ms() - started);
        }
        rows.push(Row {
            name: "person (yolov3-tiny, OpenCV DNN)".into(),
            input: format!("{input}x{input}"),
            cpu: Spread::of(ms),
            note: format!("  from {}x{} frames", day.width, day.height),
        });
    }
    Ok(rows)
}

/// The default head classifier on the head regions of camsim's own person boxes (so every call
/// judges a real head), main-stream frames.
fn head(cap: Option<usize>) -> anyhow::Result<Row> {
    let day = scenario("kitchen-day")?;
    let renderer = Renderer::new(day.clone());
    let truth: Vec<Vec<[f64; 4]>> = truth_lines("bench", &day)
        .into_iter()
        .filter_map(|l| match l {
            TruthLine::Frame { objects, .. } => Some(
                objects
                    .into_iter()
                    .filter(|o| o.class == ObjectClass::Person)
                    .map(|o| o.bbox)
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    let mut classifier = HeuristicHead::default();
    let (w, h) = (day.width as f64, day.height as f64);
    let frames = 100u64;
    let step = (truth.len() as u64 / frames).max(1);
    let mut ms = Vec::new();
    let mut sizes = Vec::new();
    'frames: for k in 0..frames {
        let n = (k * step) % truth.len() as u64;
        let picture = bgr(&renderer.render(n))?;
        for b in &truth[n as usize] {
            if cap.is_some_and(|c| ms.len() >= c) {
                break 'frames;
            }
            let person = Rect::new(
                (b[0] * w) as i32,
                (b[1] * h) as i32,
                (b[2] * w) as i32,
                (b[3] * h) as i32,
            );
            let Some(r) = head_region(person, picture.cols(), picture.rows(), 20) else {
                continue;
            };
            // As the hat/mask detector hands it over: an owned crop.
            let crop = Mat::roi(&picture, r)?.try_clone()?;
            let started = thread_cpu_ms();
            classifier.judge(&crop)?;
            ms.push(thread_cpu_ms() - started);
            sizes.push(f64::from(r.height));
        }
    }
    let size = Spread::of(sizes);
    Ok(Row {
        name: "head (hat-mask heuristic)".into(),
        input: "per head".into(),
        cpu: Spread::of(ms),
        note: format!("  heads {:.0} px high (median)", size.median),
    })
}

/// A camsim picture (I420) as BGR.
fn bgr(frame: &camsim::render::Frame) -> opencv::Result<Mat> {
    let (w, h) = (frame.width as i32, frame.height as i32);
    let i420 = Mat::new_rows_cols_with_data(h * 3 / 2, w, &frame.i420)?;
    let mut out = Mat::default();
    opencv::imgproc::cvt_color_def(&i420, &mut out, opencv::imgproc::COLOR_YUV2BGR_I420)?;
    Ok(out)
}
