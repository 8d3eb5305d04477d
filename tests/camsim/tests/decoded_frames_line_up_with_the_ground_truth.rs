//! A GStreamer RTSP client decodes camsim's streams; every frame's code strip names its frame
//! number, and that number finds camsim's own render and the ground-truth line of the picture.

mod common;

use std::time::Duration;

use camsim::truth::{TruthLine, parse_jsonl};
use camsim::{Codec, Renderer, Stream, read_frame_number};

fn truth_of(dir: &std::path::Path, camera: &str) -> Vec<TruthLine> {
    parse_jsonl(&std::fs::read_to_string(dir.join(format!("{camera}.jsonl"))).unwrap()).unwrap()
}

#[test]
fn decoded_main_frames_match_camsims_render_of_their_number_and_truth_boxes_hold_the_people() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(
        dir.path(),
        vec![common::camera("k1", "kitchen-day.toml", Codec::H264)],
    );
    let frames = common::read_frames(&server.url("k1", Stream::Main), 20, Duration::from_secs(60));
    let truth = truth_of(dir.path(), "k1");
    let TruthLine::Header {
        frames_per_loop,
        width,
        height,
        ..
    } = truth[0]
    else {
        panic!("first line is the header")
    };
    assert_eq!((width, height), (1280, 720));
    let renderer = Renderer::new(common::scenario("kitchen-day.toml"));
    let mut numbers = Vec::new();
    let mut people_checked = 0;
    let (mut worst_psnr, mut worst_outside, mut least_inside) =
        (f64::INFINITY, 0.0f64, f64::INFINITY);
    for f in &frames {
        assert_eq!((f.width, f.height), (1280, 720));
        let n = read_frame_number(&f.luma, f.width, f.height)
            .expect("every decoded frame shows its number");
        numbers.push(n);
        let idx = n % frames_per_loop;
        let TruthLine::Frame { frame, objects, .. } = &truth[1 + idx as usize] else {
            panic!("frame line {idx}")
        };
        assert_eq!(*frame, idx);

        let own = renderer.render(n);
        let psnr = common::psnr(&f.luma, own.luma());
        worst_psnr = worst_psnr.min(psnr);
        assert!(
            psnr > 28.0,
            "frame {n}: PSNR against camsim's own render is {psnr:.1} dB"
        );

        // inside each person's box the picture differs from the empty kitchen; outside every box it does not
        let empty = renderer.render_empty(n);
        let px = |b: &[f64; 4], m: f64| {
            let (w, h) = (f.width as f64, f.height as f64);
            (
                b[0] * w - m,
                b[1] * h - m,
                (b[0] + b[2]) * w + m,
                (b[1] + b[3]) * h + m,
            )
        };
        for o in objects {
            let (x0, y0, x1, y1) = px(&o.bbox, 0.0);
            let inside = |x: usize, y: usize| {
                (x as f64) >= x0 && (x as f64) < x1 && (y as f64) >= y0 && (y as f64) < y1
            };
            let d = common::mean_abs_diff(&f.luma, empty.luma(), f.width, inside);
            least_inside = least_inside.min(d);
            assert!(
                d > 12.0,
                "frame {n}: {} box {:?} looks like the empty backdrop (diff {d:.1})",
                o.id,
                o.bbox
            );
            people_checked += 1;
        }
        let boxes: Vec<_> = objects.iter().map(|o| px(&o.bbox, 12.0)).collect();
        let outside = |x: usize, y: usize| {
            let (x, y) = (x as f64, y as f64);
            let in_strip = x < 360.0 && y < 56.0;
            !in_strip
                && !boxes
                    .iter()
                    .any(|&(x0, y0, x1, y1)| x >= x0 && x < x1 && y >= y0 && y < y1)
        };
        let d = common::mean_abs_diff(&f.luma, empty.luma(), f.width, outside);
        worst_outside = worst_outside.max(d);
        assert!(
            d < 3.0,
            "frame {n}: outside the truth boxes the picture differs from the empty kitchen by {d:.1}"
        );
    }
    eprintln!(
        "psnr >= {worst_psnr:.1} dB, inside boxes >= {least_inside:.1}, outside <= {worst_outside:.2}"
    );
    assert!(people_checked >= 20, "the scene had people in it");
    assert!(
        numbers.windows(2).all(|w| w[1] > w[0]),
        "frame numbers increase: {numbers:?}"
    );
    assert!(
        numbers[numbers.len() - 1] - numbers[0] < 2 * numbers.len() as u64,
        "no big gaps: {numbers:?}"
    );
}

#[test]
fn the_sub_stream_is_the_same_camera_downscaled_and_its_frame_numbers_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(
        dir.path(),
        vec![common::camera("k2", "kitchen-day.toml", Codec::H264)],
    );
    let started = std::time::Instant::now();
    let frames = common::read_frames(&server.url("k2", Stream::Sub), 15, Duration::from_secs(60));
    let elapsed = started.elapsed().as_secs_f64();
    let renderer = Renderer::new(common::scenario("kitchen-day.toml"));
    for f in &frames {
        assert_eq!((f.width, f.height), (640, 360));
        let n = read_frame_number(&f.luma, f.width, f.height)
            .expect("the strip survives the downscale");
        // frames count wall-clock time since the camera started, like a real camera
        assert!(
            (n as f64) <= (elapsed + 1.0) * 10.0,
            "frame {n} after {elapsed:.1} s"
        );
        let own = renderer.render(n);
        let small: Vec<u8> = (0..360 * 640)
            .map(|i| {
                let (x, y) = (i % 640 * 2, i / 640 * 2);
                let l = own.luma();
                ((l[y * 1280 + x] as u32
                    + l[y * 1280 + x + 1] as u32
                    + l[(y + 1) * 1280 + x] as u32
                    + l[(y + 1) * 1280 + x + 1] as u32)
                    / 4) as u8
            })
            .collect();
        let psnr = common::psnr(&f.luma, &small);
        assert!(
            psnr > 24.0,
            "frame {n}: sub stream PSNR against the downscaled render is {psnr:.1} dB"
        );
    }
}

#[test]
fn the_noisy_infrared_night_camera_still_shows_readable_frame_numbers_and_its_own_picture() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::start(
        dir.path(),
        vec![common::camera("n1", "kitchen-night.toml", Codec::H264)],
    );
    let frames = common::read_frames(&server.url("n1", Stream::Main), 10, Duration::from_secs(60));
    let renderer = Renderer::new(common::scenario("kitchen-night.toml"));
    let truth = truth_of(dir.path(), "n1");
    for f in &frames {
        let n = read_frame_number(&f.luma, f.width, f.height)
            .expect("the strip is drawn after the noise");
        let TruthLine::Frame { lights, .. } = &truth[1 + (n % 900) as usize] else {
            panic!("frame line")
        };
        assert_eq!(*lights, camsim::truth::Lights::Off, "the loop starts dark");
        let psnr = common::psnr(&f.luma, renderer.render(n).luma());
        eprintln!("night frame {n}: psnr {psnr:.1} dB");
        assert!(
            psnr > 25.0,
            "frame {n}: PSNR against camsim's own render is {psnr:.1} dB"
        );
    }
}
