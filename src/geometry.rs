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

/// Which side of a directed line a point lies on, looking along the line's drawing direction
/// (image coordinates: x right, y *down*, so "right" of a line drawn left to right is below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// The point's distance to the polyline, signed by the side of the nearest segment: positive
/// on the right, negative on the left. Near a joint the nearer segment decides (ties: the one
/// the point is further from the joint's bisector on, i.e. the larger cross product).
pub fn signed_distance(line: &[[f64; 2]], (px, py): (f64, f64)) -> f64 {
    let mut best: Option<(f64, f64)> = None; // (distance, |cross| as tie-break) with sign
    let mut signed = f64::INFINITY;
    for seg in line.windows(2) {
        let ([ax, ay], [bx, by]) = (seg[0], seg[1]);
        let (dx, dy) = (bx - ax, by - ay);
        let len2 = dx * dx + dy * dy;
        if len2 <= f64::EPSILON {
            continue;
        }
        let t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
        let (cx, cy) = (ax + t * dx, ay + t * dy);
        let dist = ((px - cx).powi(2) + (py - cy).powi(2)).sqrt();
        let cross = (dx * (py - ay) - dy * (px - ax)) / len2.sqrt();
        let better = match best {
            None => true,
            Some((d, c)) => dist < d - 1e-12 || ((dist - d).abs() <= 1e-12 && cross.abs() > c),
        };
        if better {
            best = Some((dist, cross.abs()));
            signed = if cross >= 0.0 { dist } else { -dist };
        }
    }
    signed
}

/// The side of `p` beyond a dead band of `margin` on either side of the line; `None` inside
/// the band (a point on the line, or jitter around it, is on neither side).
pub fn side_beyond(line: &[[f64; 2]], p: (f64, f64), margin: f64) -> Option<Side> {
    let d = signed_distance(line, p);
    if d > margin {
        Some(Side::Right)
    } else if d < -margin {
        Some(Side::Left)
    } else {
        None
    }
}

/// Does the straight path `from → to` cross (or touch) any segment of the polyline?
pub fn path_crosses(line: &[[f64; 2]], from: (f64, f64), to: (f64, f64)) -> bool {
    line.windows(2)
        .any(|s| segments_intersect(from, to, (s[0][0], s[0][1]), (s[1][0], s[1][1])))
}

/// Segment intersection by orientations, collinear overlaps included.
pub fn segments_intersect(p1: (f64, f64), p2: (f64, f64), q1: (f64, f64), q2: (f64, f64)) -> bool {
    fn orient(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
        (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
    }
    fn on_segment(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> bool {
        c.0 >= a.0.min(b.0) - 1e-12
            && c.0 <= a.0.max(b.0) + 1e-12
            && c.1 >= a.1.min(b.1) - 1e-12
            && c.1 <= a.1.max(b.1) + 1e-12
    }
    let (d1, d2) = (orient(q1, q2, p1), orient(q1, q2, p2));
    let (d3, d4) = (orient(p1, p2, q1), orient(p1, p2, q2));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && on_segment(q1, q2, p1))
        || (d2 == 0.0 && on_segment(q1, q2, p2))
        || (d3 == 0.0 && on_segment(p1, p2, q1))
        || (d4 == 0.0 && on_segment(p1, p2, q2))
}

/// Follows one moving point against one line with hysteresis: the point has a side only once
/// it is more than `margin` from the line, and a crossing is counted when that side changes
/// *and* the path from where it was last seen on the old side to where it now is crosses the
/// line. So jitter on the line never counts, a crossing counts once whatever the frame rate
/// (one side change however many frames it takes), the joint of a polyline counts once (the
/// side is one state, not one per segment), and walking round the line's end counts nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineWatch {
    side: Option<Side>,
    /// Where the point was last seen beyond the margin on `side`.
    last: Option<(f64, f64)>,
}

impl LineWatch {
    /// Feeds the point's next position; returns the side it came *from* when it crossed.
    pub fn step(&mut self, line: &[[f64; 2]], p: (f64, f64), margin: f64) -> Option<Side> {
        let now = side_beyond(line, p, margin)?;
        let (side, last) = (self.side, self.last);
        self.side = Some(now);
        self.last = Some(p);
        match (side, last) {
            (Some(was), Some(from)) if was != now && path_crosses(line, from, p) => Some(was),
            _ => None,
        }
    }

    pub fn side(&self) -> Option<Side> {
        self.side
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Walks `frames` evenly spaced positions from `a` to `b` through a fresh watch; returns
    /// the sides crossed from.
    fn walk(
        line: &[[f64; 2]],
        a: (f64, f64),
        b: (f64, f64),
        frames: usize,
        margin: f64,
    ) -> Vec<Side> {
        let mut w = LineWatch::default();
        (0..frames)
            .filter_map(|i| {
                let t = i as f64 / (frames - 1) as f64;
                w.step(line, (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)), margin)
            })
            .collect()
    }

    #[test]
    fn sides_follow_the_drawing_direction_in_image_coordinates() {
        // Drawn left to right: below (y larger) is its right.
        let line = [[0.1, 0.5], [0.9, 0.5]];
        assert_eq!(side_beyond(&line, (0.5, 0.7), 0.01), Some(Side::Right));
        assert_eq!(side_beyond(&line, (0.5, 0.3), 0.01), Some(Side::Left));
        assert_eq!(side_beyond(&line, (0.5, 0.505), 0.01), None);
        // Drawn top to bottom: screen-left is its right.
        let down = [[0.5, 0.0], [0.5, 1.0]];
        assert_eq!(side_beyond(&down, (0.3, 0.5), 0.01), Some(Side::Right));
    }

    #[test]
    fn walking_round_the_end_of_a_line_is_no_crossing() {
        let line = [[0.4, 0.2], [0.4, 0.6]];
        // From left-of-screen to right-of-screen below the line's end.
        let mut w = LineWatch::default();
        assert_eq!(w.step(&line, (0.2, 0.5), 0.02), None);
        assert_eq!(w.step(&line, (0.3, 0.9), 0.02), None);
        assert_eq!(w.step(&line, (0.6, 0.9), 0.02), None);
        assert_eq!(w.side(), Some(Side::Left));
    }

    #[test]
    fn a_polyline_joint_crossed_exactly_counts_once() {
        let line = [[0.2, 0.2], [0.5, 0.5], [0.8, 0.2]];
        let crossed = walk(&line, (0.5, 0.9), (0.5, 0.1), 9, 0.02);
        assert_eq!(crossed.len(), 1, "{crossed:?}");
    }

    fn point() -> impl Strategy<Value = (f64, f64)> {
        (0.1f64..0.9, 0.1f64..0.9)
    }

    proptest! {
        /// A straight walk from well on one side to well on the other crosses once, whatever
        /// the frame rate, and from the side it started on.
        #[test]
        fn one_walk_across_counts_once_at_any_frame_rate(
            a in point(), b in point(), frames in 2usize..80, k in 0.2f64..0.8,
        ) {
            let line = [[a.0, a.1], [b.0, b.1]];
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt();
            prop_assume!(len > 0.2);
            // Through the point k of the way along, perpendicular, 0.15 each side.
            let (mx, my) = (a.0 + k * dx, a.1 + k * dy);
            let (nx, ny) = (-dy / len * 0.15, dx / len * 0.15);
            let start = (mx + nx, my + ny);
            let end = (mx - nx, my - ny);
            let from = side_beyond(&line, start, 0.0).unwrap();
            let crossed = walk(&line, start, end, frames, 0.03);
            prop_assert_eq!(crossed, vec![from]);
            // Drawn the other way, the same walk comes from the other side.
            let reversed = [line[1], line[0]];
            prop_assert_eq!(walk(&reversed, start, end, frames, 0.03), vec![from.other()]);
        }

        /// Jitter inside the margin, however wild along the line, never counts.
        #[test]
        fn jitter_on_the_line_never_counts(
            a in point(), b in point(), steps in proptest::collection::vec((0.0f64..1.0, -1.0f64..1.0), 1..200),
        ) {
            let line = [[a.0, a.1], [b.0, b.1]];
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt();
            prop_assume!(len > 0.05);
            let margin = 0.03;
            let mut w = LineWatch::default();
            // Once firmly on one side first, then jitter.
            let (nx, ny) = (-dy / len, dx / len);
            prop_assert_eq!(w.step(&line, (a.0 + 0.5 * dx + nx * 0.1, a.1 + 0.5 * dy + ny * 0.1), margin), None);
            for (t, off) in steps {
                let p = (a.0 + t * dx + nx * off * margin * 0.95, a.1 + t * dy + ny * off * margin * 0.95);
                prop_assert_eq!(w.step(&line, p, margin), None);
            }
        }

        /// Back and forth n times across a polyline through its joints: n crossings,
        /// alternating sides.
        #[test]
        fn back_and_forth_across_a_polyline_counts_every_pass(
            passes in 1usize..6, frames in 2usize..30, x in 0.25f64..0.75,
        ) {
            let line = [[0.1, 0.5], [0.3, 0.4], [0.5, 0.5], [0.7, 0.4], [0.9, 0.5]];
            let mut w = LineWatch::default();
            let mut crossed = Vec::new();
            let (top, bottom) = ((x, 0.1), (x, 0.9));
            for pass in 0..passes {
                let (a, b) = if pass % 2 == 0 { (top, bottom) } else { (bottom, top) };
                for i in 0..frames {
                    let t = i as f64 / (frames - 1) as f64;
                    crossed.extend(w.step(&line, (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)), 0.03));
                }
            }
            prop_assert_eq!(crossed.len(), passes);
            for (i, s) in crossed.iter().enumerate() {
                // Drawn left to right, the top is its left.
                prop_assert_eq!(*s, if i % 2 == 0 { Side::Left } else { Side::Right });
            }
        }
    }
}
