//! Plane geometry in normalised image coordinates (0..1, origin top left), shared by the
//! detector (NMS, motion masks), the tracker and the zones. Boxes are `[x1, y1, x2, y2]`.

/// Intersection over union of two boxes; 0 for boxes without area.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Where an object stands: the middle of the box's bottom edge. A box clipped at the frame's
/// bottom edge still stands inside a zone drawn to 1.0.
pub fn bottom_center(bbox: &[f32; 4]) -> (f64, f64) {
    let x = ((bbox[0] + bbox[2]) / 2.0) as f64;
    (x, (bbox[3] as f64).min(1.0 - 1e-6))
}

/// The middle of the box.
pub fn centroid(bbox: &[f32; 4]) -> (f64, f64) {
    let x = ((bbox[0] + bbox[2]) / 2.0) as f64;
    (x, ((bbox[1] + bbox[3]) / 2.0) as f64)
}

/// Even-odd ray casting: is the point inside the polygon (zones and motion masks)?
pub fn in_polygon(poly: &[[f64; 2]], (x, y): (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = poly.len().wrapping_sub(1);
    for i in 0..poly.len() {
        let (xi, yi) = (poly[i][0], poly[i][1]);
        let (xj, yj) = (poly[j][0], poly[j][1]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}
