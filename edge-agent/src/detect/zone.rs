//! Zones: polygons in normalised coordinates, and their pixel mask at the detector's working size.

use bl_proto::config::Polygon;
use opencv::core::{CV_8UC1, Mat, Point, Scalar, Vector};
use opencv::imgproc;

/// 255 where the rule applies (inside any of `zones`, or everywhere when there is none) and outside
/// every `ignore` polygon; 0 elsewhere.
pub(super) fn mask(
    width: u32,
    height: u32,
    zones: &[Polygon],
    ignore: &[Polygon],
) -> opencv::Result<Mat> {
    let (w, h) = (width as i32, height as i32);
    let base = if zones.is_empty() { 255.0 } else { 0.0 };
    let mut m = Mat::new_rows_cols_with_default(h, w, CV_8UC1, Scalar::all(base))?;
    if !zones.is_empty() {
        imgproc::fill_poly(
            &mut m,
            &to_points(zones, width, height),
            Scalar::all(255.0),
            imgproc::LINE_8,
            0,
            Point::new(0, 0),
        )?;
    }
    if !ignore.is_empty() {
        imgproc::fill_poly(
            &mut m,
            &to_points(ignore, width, height),
            Scalar::all(0.0),
            imgproc::LINE_8,
            0,
            Point::new(0, 0),
        )?;
    }
    Ok(m)
}

fn to_points(polys: &[Polygon], width: u32, height: u32) -> Vector<Vector<Point>> {
    polys
        .iter()
        .map(|p| {
            p.0.iter()
                .map(|q| {
                    Point::new(
                        (q.x * width as f32).round() as i32,
                        (q.y * height as f32).round() as i32,
                    )
                })
                .collect::<Vector<Point>>()
        })
        .collect()
}

/// An axis-aligned rectangle as a polygon, normalised coordinates.
pub fn rect(x: f32, y: f32, w: f32, h: f32) -> Polygon {
    use bl_proto::config::NormPoint;
    Polygon(vec![
        NormPoint { x, y },
        NormPoint { x: x + w, y },
        NormPoint { x: x + w, y: y + h },
        NormPoint { x, y: y + h },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::prelude::*;

    fn at(m: &Mat, x: i32, y: i32) -> u8 {
        *m.at_2d::<u8>(y, x).unwrap()
    }

    #[test]
    fn no_zone_means_the_whole_frame_minus_the_ignored_parts() {
        let m = mask(32, 18, &[], &[rect(0.0, 0.0, 0.5, 0.5)]).unwrap();
        assert_eq!(at(&m, 2, 2), 0);
        assert_eq!(at(&m, 30, 16), 255);
    }

    #[test]
    fn a_zone_keeps_only_its_inside() {
        let m = mask(32, 18, &[rect(0.5, 0.5, 0.5, 0.5)], &[]).unwrap();
        assert_eq!(at(&m, 2, 2), 0);
        assert_eq!(at(&m, 30, 16), 255);
    }
}
