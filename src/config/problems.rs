//! The collector every check writes to: all problems of a file in one run, each with its
//! file, line, column and field path, so one `check-config` shows everything to fix.

use super::locate::{FieldPath, Located};
use super::Problem;

/// Every problem of one file, each placed at its line and column by the field path.
pub(super) struct Problems<'a> {
    pub(super) doc: &'a Located<'a>,
    pub(super) out: Vec<Problem>,
}

impl Problems<'_> {
    pub(super) fn add(&mut self, path: &FieldPath, message: impl Into<String>) {
        let (line, column) = self.doc.find(path);
        self.out.push(Problem {
            file: self.doc.file.clone(),
            line,
            column,
            field: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn polygon(&mut self, path: &FieldPath, poly: &[[f64; 2]], owner: &str) {
        if poly.len() < 3 {
            self.add(
                path,
                format!(
                    "{owner}: a polygon needs at least 3 points, got {}",
                    poly.len()
                ),
            );
        }
        for (j, pt) in poly.iter().enumerate() {
            if pt.iter().any(|v| !(0.0..=1.0).contains(v)) {
                self.add(
                    &path.index(j),
                    format!(
                        "{owner}: polygon points are normalised 0..1, got [{}, {}]",
                        pt[0], pt[1]
                    ),
                );
            }
        }
        let n = poly.len();
        if n < 3 {
            return;
        }
        if let Some((i, j)) = first_crossing(poly) {
            self.add(
                path,
                format!(
                    "{owner}: the polygon's outline crosses itself (edge {i}-{} crosses edge {j}-{}); list the points in order around the zone",
                    (i + 1) % n,
                    (j + 1) % n
                ),
            );
            return;
        }
        // Twice the signed area (shoelace).
        let area2: f64 = (0..n)
            .map(|i| {
                let (a, b) = (poly[i], poly[(i + 1) % n]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum();
        if area2.abs() < 1e-9 {
            self.add(
                path,
                format!("{owner}: the polygon has no area (its points lie on one line)"),
            );
        }
    }

    pub(super) fn range(&mut self, path: &FieldPath, v: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&v) {
            self.add(path, format!("must be between {lo} and {hi}, got {v}"));
        }
    }
}

/// The first pair of non-adjacent edges that cross, by their first points' indices.
fn first_crossing(poly: &[[f64; 2]]) -> Option<(usize, usize)> {
    let n = poly.len();
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    for i in 0..n {
        for j in i + 1..n {
            // Neighbours share a point; that is not a crossing.
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            let (p1, p2) = (poly[i], poly[(i + 1) % n]);
            let (q1, q2) = (poly[j], poly[(j + 1) % n]);
            let (d1, d2) = (cross(q1, q2, p1), cross(q1, q2, p2));
            let (d3, d4) = (cross(p1, p2, q1), cross(p1, p2, q2));
            if d1 * d2 < 0.0 && d3 * d4 < 0.0 {
                return Some((i, j));
            }
        }
    }
    None
}
