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
    }

    pub(super) fn range(&mut self, path: &FieldPath, v: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&v) {
            self.add(path, format!("must be between {lo} and {hi}, got {v}"));
        }
    }
}
