//! The evidence room: a JPEG of the frame that fired an alert, with the objects' boxes and the
//! rule's zone drawn on it, kept in `data_dir/snapshots` within a count and a size bound.
//!
//! The picture is the detector's view (the model-size frame) scaled back to the camera's frame
//! size, so it shows exactly what the rule saw. Files are named `<alert_id>.jpg`; alert ids
//! are ULIDs, so name order is age order and retention deletes from the front.

use crate::config::SnapshotConfig;
use crate::rules::RuleHit;
use crate::video::Frame;
use image::codecs::jpeg::JpegEncoder;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("snapshots {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("snapshot {0}: not a valid snapshot id")]
    BadId(String),
}

pub struct SnapshotStore {
    dir: PathBuf,
    max_count: usize,
    max_bytes: u64,
    quality: u8,
}

/// Colours cycle per track so neighbouring boxes stay apart.
const PALETTE: [[u8; 3]; 6] = [
    [255, 64, 64],
    [64, 200, 255],
    [80, 255, 80],
    [255, 160, 0],
    [220, 80, 255],
    [255, 255, 255],
];
const ZONE_COLOUR: [u8; 3] = [255, 230, 0];

impl SnapshotStore {
    pub fn open(dir: &Path, cfg: &SnapshotConfig) -> Result<Self, EvidenceError> {
        std::fs::create_dir_all(dir).map_err(|e| EvidenceError::Io {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        // Temp files a crash or a full disk left half-written.
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max_count: cfg.max_count.max(1),
            max_bytes: ((cfg.max_mb * 1_048_576.0) as u64).max(1),
            quality: cfg.quality.clamp(1, 100),
        })
    }

    fn io(&self, e: impl ToString) -> EvidenceError {
        EvidenceError::Io {
            path: self.dir.clone(),
            message: e.to_string(),
        }
    }

    /// Where snapshot `id` lives; ids are checked so a request cannot walk out of the folder.
    pub fn path(&self, id: &str) -> Result<PathBuf, EvidenceError> {
        if ulid::Ulid::from_string(id).is_err() {
            return Err(EvidenceError::BadId(id.to_string()));
        }
        Ok(self.dir.join(format!("{id}.jpg")))
    }

    pub fn read(&self, id: &str) -> Result<Vec<u8>, EvidenceError> {
        let p = self.path(id)?;
        std::fs::read(&p).map_err(|e| self.io(format!("{}: {e}", p.display())))
    }

    /// Draws, encodes and stores the snapshot of `hit`; returns its id. Written to a temporary
    /// name and renamed, so a reader never sees half a JPEG.
    pub fn save(&self, frame: &Frame, hit: &RuleHit) -> Result<String, EvidenceError> {
        let id = hit.alert_id.to_string();
        let img = render(frame, hit).map_err(|e| self.io(e))?;
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, self.quality)
            .encode_image(&img)
            .map_err(|e| self.io(e))?;
        let path = self.path(&id)?;
        let tmp = self.dir.join(format!(".{id}.tmp"));
        std::fs::write(&tmp, &jpeg)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                // A full disk leaves a short or empty temp file: never keep it.
                let _ = std::fs::remove_file(&tmp);
                self.io(format!("{}: {e}", path.display()))
            })?;
        self.enforce_retention()?;
        Ok(id)
    }

    /// Deletes the oldest snapshots beyond the count or byte bound; returns how many.
    pub fn enforce_retention(&self) -> Result<usize, EvidenceError> {
        let mut files: Vec<(String, u64)> = std::fs::read_dir(&self.dir)
            .map_err(|e| self.io(e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.ends_with(".jpg").then_some(())?;
                Some((name, e.metadata().ok()?.len()))
            })
            .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut count = files.len();
        let mut removed = 0;
        for (name, size) in files {
            if count <= self.max_count && total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(self.dir.join(&name)).is_ok() {
                removed += 1;
            }
            count -= 1;
            total = total.saturating_sub(size);
        }
        Ok(removed)
    }
}

/// A frame as a JPEG at the camera's frame size, nothing drawn: the "latest snapshot" of a
/// camera on the web page and for `cmd/snapshot`.
pub fn frame_jpeg(frame: &Frame, quality: u8) -> Result<Vec<u8>, EvidenceError> {
    let io = |message: String| EvidenceError::Io {
        path: PathBuf::from(format!("camera {}", frame.camera)),
        message,
    };
    let (w, h) = (frame.source_width.max(1), frame.source_height.max(1));
    let rgb =
        crate::imaging::resize_rgb_to(&frame.rgb, frame.size, frame.size, w, h).map_err(io)?;
    let img = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| io("frame buffer has the wrong size".into()))?;
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, quality.clamp(1, 100))
        .encode_image(&img)
        .map_err(|e| io(e.to_string()))?;
    Ok(jpeg)
}

/// The frame at the camera's size with boxes and zone drawn.
pub fn render(frame: &Frame, hit: &RuleHit) -> Result<image::RgbImage, String> {
    let (w, h) = (frame.source_width.max(1), frame.source_height.max(1));
    let rgb = crate::imaging::resize_rgb_to(&frame.rgb, frame.size, frame.size, w, h)?;
    let mut img = image::RgbImage::from_raw(w, h, rgb).ok_or("frame buffer has the wrong size")?;
    let thick = (w.max(h) / 320).max(2) as i64;
    if let Some(zone) = &hit.zone {
        let pts: Vec<(i64, i64)> = zone
            .iter()
            .map(|p| ((p[0] * w as f64) as i64, (p[1] * h as f64) as i64))
            .collect();
        for i in 0..pts.len() {
            line(
                &mut img,
                pts[i],
                pts[(i + 1) % pts.len()],
                ZONE_COLOUR,
                thick,
            );
        }
    }
    for o in &hit.objects {
        let c = PALETTE[(o.track_id as usize) % PALETTE.len()];
        let b = o.bbox;
        let (x1, y1) = ((b[0] * w as f32) as i64, (b[1] * h as f32) as i64);
        let (x2, y2) = ((b[2] * w as f32) as i64, (b[3] * h as f32) as i64);
        for (a, z) in [
            ((x1, y1), (x2, y1)),
            ((x2, y1), (x2, y2)),
            ((x2, y2), (x1, y2)),
            ((x1, y2), (x1, y1)),
        ] {
            line(&mut img, a, z, c, thick);
        }
    }
    Ok(img)
}

/// A thick line by stamping squares along Bresenham's path. Hand-written: imageproc would do
/// it, but brings a large dependency tree into firmware for four rectangles and a polygon.
fn line(
    img: &mut image::RgbImage,
    (mut x0, mut y0): (i64, i64),
    (x1, y1): (i64, i64),
    c: [u8; 3],
    thick: i64,
) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let dx = (x1 - x0).abs();
    let dy = -(y1 - y0).abs();
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    let r = thick / 2;
    loop {
        for yy in (y0 - r).max(0)..(y0 - r + thick).min(h) {
            for xx in (x0 - r).max(0)..(x0 - r + thick).min(w) {
                img.put_pixel(xx as u32, yy as u32, image::Rgb(c));
            }
        }
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}
