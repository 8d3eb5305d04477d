//! Video walls: the layout a wall monitor shows (how many tiles, which camera in each, which tile
//! is maximised, a tour through a camera group), set from an operator's desk and followed by the
//! wall window in real time (`PUT /api/walls/{id}` → `wall` on `/api/ws` → `GET`).
//!
//! **A wall names cameras only; every tile still asks for its own live grant, so a wall never shows
//! a camera to someone who may not watch it.** The layout rules here are plain code;
//! [`store`] keeps the rows.

pub mod store;

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Tile counts a wall may have: grids of 1×1, 2×2, 3×3, 4×4, and two with one big tile (6: a
/// 2×2 tile and five around it in a 3×3 grid; 8: a 3×3 tile and seven around it in a 4×4 grid).
pub const TILE_COUNTS: [usize; 6] = [1, 4, 6, 8, 9, 16];
/// Most cameras one tour goes through.
pub const MAX_TOUR_CAMERAS: usize = 256;
/// Shortest and longest time a tour shows one page.
pub const TOUR_INTERVAL_SECS: std::ops::RangeInclusive<u32> = 5..=3600;

/// What a wall shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layout {
    /// One entry per tile, left to right, top to bottom (the big tile of 6 and 8 first): a camera
    /// id or `null` (empty). Its length is the tile count: 1, 4, 6, 8, 9 or 16.
    pub tiles: Vec<Option<String>>,
    /// The tile shown alone, full size, with the camera's main stream; `null`: the grid.
    #[serde(default)]
    pub maximised: Option<usize>,
    /// A tour (轮巡): the grid pages through these cameras, `tiles.len()` at a time, every
    /// `intervalSecs`, counted from the wall's `updatedAt`, so every screen showing the wall
    /// shows the same page. While it runs `tiles` is ignored. `null`: no tour.
    #[serde(default)]
    pub tour: Option<Tour>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tour {
    /// Camera ids, in order; 1 to 256.
    pub cameras: Vec<String>,
    /// Seconds each page is shown; 5 to 3600.
    pub interval_secs: u32,
}

impl Default for Layout {
    /// A wall never set: four empty tiles.
    fn default() -> Self {
        Layout {
            tiles: vec![None; 4],
            maximised: None,
            tour: None,
        }
    }
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_layout", format!("field {field}: {message}"))
}

impl Layout {
    /// Checks the shape; camera existence and scope are checked against the registry by the caller.
    pub fn validate(&self) -> Result<(), Error> {
        if !TILE_COUNTS.contains(&self.tiles.len()) {
            return Err(invalid(
                "tiles",
                format!(
                    "{} tiles; a wall has 1, 4, 6, 8, 9 or 16 (null for an empty tile)",
                    self.tiles.len()
                ),
            ));
        }
        for (i, camera) in self.tiles.iter().enumerate() {
            if let Some(c) = camera {
                bl_proto::id::validate_id("camera id", c)
                    .map_err(|e| invalid(&format!("tiles[{i}]"), e))?;
            }
        }
        if let Some(m) = self.maximised
            && m >= self.tiles.len()
        {
            return Err(invalid(
                "maximised",
                format!(
                    "tile {m} does not exist; tiles are 0 to {}",
                    self.tiles.len() - 1
                ),
            ));
        }
        if let Some(tour) = &self.tour {
            if tour.cameras.is_empty() || tour.cameras.len() > MAX_TOUR_CAMERAS {
                return Err(invalid(
                    "tour.cameras",
                    format!(
                        "{} cameras; a tour takes 1 to {MAX_TOUR_CAMERAS}",
                        tour.cameras.len()
                    ),
                ));
            }
            for (i, c) in tour.cameras.iter().enumerate() {
                bl_proto::id::validate_id("camera id", c)
                    .map_err(|e| invalid(&format!("tour.cameras[{i}]"), e))?;
            }
            if !TOUR_INTERVAL_SECS.contains(&tour.interval_secs) {
                return Err(invalid(
                    "tour.intervalSecs",
                    format!("{} s; a tour page is shown 5 to 3600 s", tour.interval_secs),
                ));
            }
        }
        Ok(())
    }

    /// Every camera the layout names (tiles and tour), each once, in order of appearance.
    pub fn cameras(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let tour = self.tour.iter().flat_map(|t| t.cameras.iter());
        for c in self.tiles.iter().flatten().chain(tour) {
            if !out.contains(&c.as_str()) {
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(tiles: &[Option<&str>]) -> Layout {
        Layout {
            tiles: tiles.iter().map(|t| t.map(str::to_owned)).collect(),
            maximised: None,
            tour: None,
        }
    }

    #[test]
    fn a_wall_has_1_4_6_8_9_or_16_tiles() {
        for n in [1, 4, 6, 8, 9, 16] {
            layout(&vec![None; n]).validate().unwrap();
        }
        for n in [0, 2, 5, 17] {
            let e = layout(&vec![None; n]).validate().unwrap_err();
            assert_eq!(e.code, "invalid_layout");
            assert!(e.message.contains("field tiles"), "{}", e.message);
        }
    }

    #[test]
    fn bad_camera_ids_maximised_tiles_and_tours_are_named() {
        let e = layout(&[Some("cam-1"), Some("Cam 2"), None, None])
            .validate()
            .unwrap_err();
        assert!(e.message.contains("tiles[1]"), "{}", e.message);
        let mut l = layout(&[None; 4]);
        l.maximised = Some(4);
        assert!(l.validate().unwrap_err().message.contains("maximised"));
        l.maximised = Some(3);
        l.validate().unwrap();
        l.tour = Some(Tour {
            cameras: vec!["a".into()],
            interval_secs: 2,
        });
        assert!(
            l.validate()
                .unwrap_err()
                .message
                .contains("tour.intervalSecs")
        );
        l.tour = Some(Tour {
            cameras: vec![],
            interval_secs: 10,
        });
        assert!(l.validate().unwrap_err().message.contains("tour.cameras"));
    }

    #[test]
    fn cameras_lists_tiles_and_tour_once_each() {
        let mut l = layout(&[Some("a"), None, Some("b"), Some("a")]);
        l.tour = Some(Tour {
            cameras: vec!["c".into(), "b".into()],
            interval_secs: 10,
        });
        assert_eq!(l.cameras(), vec!["a", "b", "c"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<Layout>(r#"{"tiles":[null],"colour":"red"}"#).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
