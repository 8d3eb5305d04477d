//! Decoding the raw output tensors of site-trained YOLO detectors (plain code, no OpenCV), so a user's
//! hat/mask model exported to ONNX can judge heads.
//!
//! Which layout a tensor has is recognised from its shape and the manifest's class count `C`:
//!
//! | layout | output shape | rows hold |
//! |---|---|---|
//! | YOLOv5 (opset 12, static) | `[1, N, 5 + C]` | `cx, cy, w, h` (input pixels), objectness, `C` class probabilities |
//! | YOLOv8 | `[1, 4 + C, N]` | `cx, cy, w, h`, `C` class probabilities (channel-major) |
//! | YOLOv8 cut before the DFL | `[1, 4·16 + C, N]` | per side 16 distance bins (logits), `C` class logits |
//!
//! OpenCV 4.6 cannot import a stock YOLOv8 graph (it fails at the DFL `Reshape`), so the graph is cut
//! just before it, at the `Concat` that feeds the head's `Split` (edge-agent/README.md shows how), and
//! the rest of the head is done here: the distribution focal loss decoding (softmax over 16 bins per
//! side, its expectation is the distance in grid cells), the anchor grid of strides 8, 16 and 32, and
//! the sigmoid of the class logits.

/// Bins per box side in a YOLOv8 head (`reg_max`).
pub const DFL_BINS: usize = 16;
/// The strides of YOLOv8's three output levels.
pub const V8_STRIDES: [usize; 3] = [8, 16, 32];

/// A YOLO output layout, recognised from the tensor's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YoloLayout {
    /// `[1, N, 5 + C]`.
    V5 { boxes: usize },
    /// `[1, 4 + C, N]`, decoded boxes.
    V8 { boxes: usize },
    /// `[1, 64 + C, N]`, the graph cut before the DFL.
    V8Dfl { boxes: usize },
}

/// One decoded box, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoloBox {
    pub class: usize,
    pub score: f32,
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

/// Recognises the layout of an output of `shape` for a model with `classes` classes; the error
/// says what was expected.
pub fn recognise(shape: &[usize], classes: usize) -> Result<YoloLayout, String> {
    let dims: Vec<usize> = match shape {
        [1, a, b] => vec![*a, *b],
        [a, b] => vec![*a, *b],
        _ => {
            return Err(format!(
                "output shape {shape:?}: a YOLO output has 3 dimensions [1, a, b]"
            ));
        }
    };
    let (a, b) = (dims[0], dims[1]);
    // A YOLOv8 tensor has few channels and many boxes; YOLOv5 the other way round.
    let v8_channels = [4 * DFL_BINS + classes, 4 + classes];
    if b == 5 + classes && !(v8_channels.contains(&a) && b < a) {
        Ok(YoloLayout::V5 { boxes: a })
    } else if a == 4 * DFL_BINS + classes {
        Ok(YoloLayout::V8Dfl { boxes: b })
    } else if a == 4 + classes {
        Ok(YoloLayout::V8 { boxes: b })
    } else {
        Err(format!(
            "output shape {shape:?} is no YOLO layout for {classes} classes: expected \
             [1, N, {}] (YOLOv5), [1, {}, N] (YOLOv8) or [1, {}, N] (YOLOv8 cut before the DFL)",
            5 + classes,
            4 + classes,
            4 * DFL_BINS + classes
        ))
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes an output tensor (`data` in row-major order of the shape `layout` was recognised from)
/// of a network with a `input_w x input_h` input: boxes scoring at least `min_score`, best first,
/// overlapping boxes of a class (IoU above `nms_iou`) reduced to the best one.
pub fn decode(
    layout: YoloLayout,
    data: &[f32],
    classes: usize,
    input_w: usize,
    input_h: usize,
    min_score: f32,
    nms_iou: f32,
) -> Result<Vec<YoloBox>, String> {
    let mut found = Vec::new();
    match layout {
        YoloLayout::V5 { boxes } => {
            let row = 5 + classes;
            check_len(data, boxes * row)?;
            for r in data.chunks_exact(row) {
                let (class, p) = best(&r[5..]);
                let score = r[4] * p;
                if score >= min_score {
                    found.push(YoloBox {
                        class,
                        score,
                        cx: r[0],
                        cy: r[1],
                        w: r[2],
                        h: r[3],
                    });
                }
            }
        }
        YoloLayout::V8 { boxes } => {
            check_len(data, boxes * (4 + classes))?;
            let at = |c: usize, i: usize| data[c * boxes + i];
            for i in 0..boxes {
                let (class, score) = best_of((0..classes).map(|c| at(4 + c, i)));
                if score >= min_score {
                    found.push(YoloBox {
                        class,
                        score,
                        cx: at(0, i),
                        cy: at(1, i),
                        w: at(2, i),
                        h: at(3, i),
                    });
                }
            }
        }
        YoloLayout::V8Dfl { boxes } => {
            check_len(data, boxes * (4 * DFL_BINS + classes))?;
            let anchors = v8_anchors(input_w, input_h);
            if anchors.len() != boxes {
                return Err(format!(
                    "{boxes} boxes, but a {input_w}x{input_h} input has {} anchors at strides 8, 16, 32: \
                     is the manifest's input size the one the model was exported with?",
                    anchors.len()
                ));
            }
            let at = |c: usize, i: usize| data[c * boxes + i];
            for (i, &(ax, ay, stride)) in anchors.iter().enumerate() {
                let (class, logit) = best_of((0..classes).map(|c| at(4 * DFL_BINS + c, i)));
                let score = sigmoid(logit);
                if score < min_score {
                    continue;
                }
                // left, top, right, bottom distances from the anchor, in grid cells
                let side = |s: usize| {
                    let bins: Vec<f32> = (0..DFL_BINS).map(|k| at(s * DFL_BINS + k, i)).collect();
                    let max = bins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = bins.iter().map(|v| (v - max).exp()).collect();
                    let sum: f32 = e.iter().sum();
                    e.iter().enumerate().map(|(k, v)| k as f32 * v).sum::<f32>() / sum
                };
                let (l, t, r, b) = (side(0), side(1), side(2), side(3));
                let s = stride as f32;
                let (x0, y0, x1, y1) = ((ax - l) * s, (ay - t) * s, (ax + r) * s, (ay + b) * s);
                found.push(YoloBox {
                    class,
                    score,
                    cx: (x0 + x1) / 2.0,
                    cy: (y0 + y1) / 2.0,
                    w: x1 - x0,
                    h: y1 - y0,
                });
            }
        }
    }
    Ok(nms(found, nms_iou))
}

fn check_len(data: &[f32], want: usize) -> Result<(), String> {
    if data.len() == want {
        Ok(())
    } else {
        Err(format!(
            "{} output values, expected {want} for the shape",
            data.len()
        ))
    }
}

fn best(scores: &[f32]) -> (usize, f32) {
    best_of(scores.iter().copied())
}

fn best_of(scores: impl Iterator<Item = f32>) -> (usize, f32) {
    scores.enumerate().fold(
        (0, f32::NEG_INFINITY),
        |b, (i, s)| if s > b.1 { (i, s) } else { b },
    )
}

/// YOLOv8's anchor points `(x + 0.5, y + 0.5, stride)` in grid cells, level by level, row by row.
pub fn v8_anchors(input_w: usize, input_h: usize) -> Vec<(f32, f32, usize)> {
    let mut a = Vec::new();
    for stride in V8_STRIDES {
        for y in 0..input_h / stride {
            for x in 0..input_w / stride {
                a.push((x as f32 + 0.5, y as f32 + 0.5, stride));
            }
        }
    }
    a
}

fn iou(a: &YoloBox, b: &YoloBox) -> f32 {
    let ix = (a.cx + a.w / 2.0).min(b.cx + b.w / 2.0) - (a.cx - a.w / 2.0).max(b.cx - b.w / 2.0);
    let iy = (a.cy + a.h / 2.0).min(b.cy + b.h / 2.0) - (a.cy - a.h / 2.0).max(b.cy - b.h / 2.0);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let i = ix * iy;
    i / (a.w * a.h + b.w * b.h - i)
}

/// Greedy per-class non-maximum suppression, best first.
fn nms(mut boxes: Vec<YoloBox>, max_iou: f32) -> Vec<YoloBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<YoloBox> = Vec::new();
    for b in boxes {
        if !kept
            .iter()
            .any(|k| k.class == b.class && iou(k, &b) > max_iou)
        {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_recognised_from_the_output_shape_and_a_stranger_is_explained() {
        assert_eq!(
            recognise(&[1, 25200, 9], 4),
            Ok(YoloLayout::V5 { boxes: 25200 })
        );
        assert_eq!(
            recognise(&[1, 8, 8400], 4),
            Ok(YoloLayout::V8 { boxes: 8400 })
        );
        assert_eq!(
            recognise(&[1, 68, 8400], 4),
            Ok(YoloLayout::V8Dfl { boxes: 8400 })
        );
        let e = recognise(&[1, 10, 8400], 4).unwrap_err();
        assert!(e.contains("[1, N, 9]") && e.contains("[1, 68, N]"), "{e}");
        assert!(recognise(&[1, 3, 64, 64], 4).is_err());
    }

    #[test]
    fn a_yolov5_row_scores_objectness_times_class_and_overlaps_collapse() {
        // 3 candidates, 2 classes: two overlapping "no_hat" boxes and one weak "hat" box.
        #[rustfmt::skip]
        let data = [
            32.0, 32.0, 20.0, 20.0, 0.9, 0.1, 0.8,
            33.0, 32.0, 20.0, 20.0, 0.8, 0.1, 0.7,
            10.0, 10.0,  8.0,  8.0, 0.3, 0.5, 0.1,
        ];
        let layout = recognise(&[1, 3, 7], 2).unwrap();
        let found = decode(layout, &data, 2, 64, 64, 0.25, 0.45).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].class, 1);
        assert!((found[0].score - 0.72).abs() < 1e-6);
        assert_eq!((found[0].cx, found[0].w), (32.0, 20.0));
    }

    #[test]
    fn a_yolov8_tensor_is_read_channel_major() {
        // 2 classes, 4 boxes; box 2 is class 0 at 0.9.
        let boxes = 4;
        let mut data = vec![0.0f32; (4 + 2) * boxes];
        let mut set = |c: usize, i: usize, v: f32| data[c * boxes + i] = v;
        for (c, v) in [40.0, 30.0, 10.0, 12.0].into_iter().enumerate() {
            set(c, 2, v);
        }
        set(4, 2, 0.9);
        set(5, 2, 0.2);
        set(5, 0, 0.1);
        let found = decode(YoloLayout::V8 { boxes }, &data, 2, 64, 64, 0.25, 0.45).unwrap();
        assert_eq!(
            found,
            vec![YoloBox {
                class: 0,
                score: 0.9,
                cx: 40.0,
                cy: 30.0,
                w: 10.0,
                h: 12.0
            }]
        );
    }

    #[test]
    fn a_yolov8_graph_cut_before_the_dfl_is_decoded_with_anchors_bins_and_sigmoid() {
        // A 64x64 input: 8x8 + 4x4 + 2x2 = 84 anchors. One confident box at the stride-8 anchor
        // (x 3, y 2), i.e. centre (3.5, 2.5) cells = (28, 20) px, with distances l=1, t=2, r=3,
        // b=4 cells (one-hot bins), class 1 of 2.
        let (classes, input) = (2, 64);
        let boxes = v8_anchors(input, input).len();
        assert_eq!(boxes, 84);
        assert_eq!(
            recognise(&[1, 66, boxes], classes),
            Ok(YoloLayout::V8Dfl { boxes })
        );
        let mut data = vec![-10.0f32; (4 * DFL_BINS + classes) * boxes];
        let i = 2 * 8 + 3;
        for (side, cells) in [1, 2, 3, 4].into_iter().enumerate() {
            data[(side * DFL_BINS + cells) * boxes + i] = 20.0;
        }
        data[(4 * DFL_BINS + 1) * boxes + i] = 3.0; // sigmoid(3) = 0.953
        let found = decode(
            YoloLayout::V8Dfl { boxes },
            &data,
            classes,
            input,
            input,
            0.5,
            0.45,
        )
        .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let b = found[0];
        assert_eq!(b.class, 1);
        assert!((b.score - 0.9526).abs() < 1e-3, "{}", b.score);
        // x0 = (3.5 - 1) * 8 = 20, x1 = (3.5 + 3) * 8 = 52; y0 = (2.5 - 2) * 8 = 4, y1 = 52
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        assert!(close(b.cx, 36.0) && close(b.w, 32.0), "{b:?}");
        assert!(close(b.cy, 28.0) && close(b.h, 48.0), "{b:?}");
    }

    #[test]
    fn a_cut_graph_for_another_input_size_is_refused_with_a_reason() {
        let boxes = v8_anchors(64, 64).len();
        let data = vec![0.0f32; 66 * boxes];
        let e = decode(YoloLayout::V8Dfl { boxes }, &data, 2, 96, 96, 0.5, 0.45).unwrap_err();
        assert!(e.contains("input size"), "{e}");
    }
}
