//! Snapshot pictures: the decoded frame as JPEG, clean and with the detection's boxes drawn (OpenCV).

use super::media::Picture;
use bl_proto::event::NormBox;
use opencv::core::{self, Mat, Rect, Scalar, Vector};
use opencv::imgcodecs;
use opencv::imgproc;
use opencv::prelude::*;

/// JPEG quality of snapshots: detail for a reviewer, a few hundred KB at 1080p.
const JPEG_QUALITY: i32 = 90;

/// The clean and the annotated JPEG of `picture`.
pub fn snapshots(picture: &Picture, boxes: &[NormBox]) -> opencv::Result<(Vec<u8>, Vec<u8>)> {
    let flat = Mat::new_rows_cols_with_data(1, picture.bgr.len() as i32, &picture.bgr)?;
    let bgr = flat.reshape(3, picture.height as i32)?;
    let clean = jpeg(&bgr)?;
    let mut marked = bgr.try_clone()?;
    let (w, h) = (picture.width as f32, picture.height as f32);
    let thickness = (picture.height as i32 / 240).max(2);
    for b in boxes {
        let rect = Rect::new(
            (b.x * w).round() as i32,
            (b.y * h).round() as i32,
            ((b.w * w).round() as i32).max(1),
            ((b.h * h).round() as i32).max(1),
        );
        // Red in BGR: the colour reviewers expect for "here".
        imgproc::rectangle(
            &mut marked,
            rect,
            Scalar::new(0.0, 0.0, 255.0, 0.0),
            thickness,
            imgproc::LINE_8,
            0,
        )?;
        if let Some(label) = &b.label {
            let text = match b.confidence {
                Some(c) => format!("{label} {:.0}%", c * 100.0),
                None => label.clone(),
            };
            imgproc::put_text(
                &mut marked,
                &text,
                core::Point::new(rect.x, (rect.y - 6).max(12)),
                imgproc::FONT_HERSHEY_SIMPLEX,
                0.5 * thickness as f64 / 2.0,
                Scalar::new(0.0, 0.0, 255.0, 0.0),
                thickness / 2 + 1,
                imgproc::LINE_AA,
                false,
            )?;
        }
    }
    Ok((clean, jpeg(&marked)?))
}

/// The JPEG of `picture` as it is: a still taken on request has nothing to mark.
pub fn clean(picture: &Picture) -> opencv::Result<Vec<u8>> {
    let flat = Mat::new_rows_cols_with_data(1, picture.bgr.len() as i32, &picture.bgr)?;
    jpeg(&flat.reshape(3, picture.height as i32)?)
}

fn jpeg(image: &impl core::ToInputArray) -> opencv::Result<Vec<u8>> {
    let mut out = Vector::<u8>::new();
    let params = Vector::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, JPEG_QUALITY]);
    imgcodecs::imencode(".jpg", image, &mut out, &params)?;
    Ok(out.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_snapshot_differs_from_the_clean_one_only_where_boxes_are() {
        let picture = Picture {
            width: 64,
            height: 48,
            bgr: vec![128; 64 * 48 * 3],
        };
        let boxes = [NormBox {
            x: 0.25,
            y: 0.25,
            w: 0.5,
            h: 0.5,
            label: None,
            confidence: None,
        }];
        let (clean, marked) = snapshots(&picture, &boxes).unwrap();
        assert_eq!(&clean[..3], &[0xff, 0xd8, 0xff], "a JPEG");
        assert_ne!(clean, marked);
        let decoded =
            imgcodecs::imdecode(&Vector::from_slice(&marked), imgcodecs::IMREAD_COLOR).unwrap();
        let edge = decoded.at_2d::<core::Vec3b>(12, 32).unwrap();
        assert!(
            edge[2] > 200 && edge[1] < 80,
            "red on the box's top edge: {edge:?}"
        );
        let inside = decoded.at_2d::<core::Vec3b>(24, 32).unwrap();
        assert!(
            (inside[0] as i32 - 128).abs() < 10,
            "untouched inside: {inside:?}"
        );
    }
}
