//! Model families: how to feed a model and how to read its outputs. Adding a family means a
//! variant here (input layout, normalisation, decoder), not a change to the pipeline.

use super::post::Candidate;
use crate::config::ModelKind;
use tract_onnx::prelude::*;

/// NanoDet's training normalisation, in BGR order, in 0..255 space.
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
const REG_BINS: usize = 11;

/// COCO ids 1..=90 that the 80-class list uses, in coco80.txt order (TF Object Detection API
/// models emit one column per id 1..=90, ten of them unused).
const COCO91_USED: [usize; 80] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
];

/// What each model family needs: its defaults, and how its input is laid out.
impl ModelKind {
    /// Family defaults: input size and score threshold the model was calibrated at.
    pub fn default_input_size(self) -> usize {
        match self {
            ModelKind::Ssd => 300,
            _ => 416,
        }
    }

    pub fn default_score_threshold(self) -> f32 {
        match self {
            ModelKind::Ssd => 0.5,
            _ => 0.35,
        }
    }

    /// Guesses the family from the declared input shape: channels first or last.
    pub fn from_input_shape(shape: &[usize]) -> Option<ModelKind> {
        match shape {
            [1, 3, _, _] => Some(ModelKind::Nanodet),
            [1, _, _, 3] => Some(ModelKind::Ssd),
            _ => None,
        }
    }

    pub fn input_shape(self, size: usize) -> [usize; 4] {
        match self {
            ModelKind::Ssd => [1, size, size, 3],
            _ => [1, 3, size, size],
        }
    }
}

/// Where one NanoDet stride's two outputs sit in the output list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    stride: usize,
    cls: usize,
    reg: usize,
}

/// A loaded model's decoder, bound to the output positions it found.
#[derive(Debug, Clone)]
pub(super) enum Family {
    NanoDet {
        heads: Vec<Head>,
        classes: usize,
    },
    Ssd {
        scores: usize,
        boxes: usize,
        anchors: usize,
    },
}

impl Family {
    /// Binds a family to the model's outputs by their shapes; the error names what was found.
    pub(super) fn bind(
        kind: ModelKind,
        shapes: &[Vec<usize>],
        size: usize,
        labels: usize,
    ) -> Result<Family, String> {
        match kind {
            ModelKind::Nanodet | ModelKind::Auto => {
                let heads: Option<Vec<Head>> = [8usize, 16, 32]
                    .into_iter()
                    .map(|stride| {
                        let n = (size / stride).pow(2);
                        let find = |c: usize| shapes.iter().position(|s| s.as_slice() == [1, n, c]);
                        Some(Head {
                            stride,
                            cls: find(labels)?,
                            reg: find(4 * REG_BINS)?,
                        })
                    })
                    .collect();
                heads
                    .map(|heads| Family::NanoDet { heads, classes: labels })
                    .ok_or_else(|| {
                        format!(
                            "outputs {shapes:?} are not NanoDet's at {size}x{size} with {labels} labels \
                             (expected [1,N,{labels}] scores and [1,N,44] boxes for strides 8, 16, 32)"
                        )
                    })
            }
            ModelKind::Ssd => {
                if labels != COCO91_USED.len() {
                    return Err(format!(
                        "an SSD COCO model maps its 90 score columns onto the 80 COCO labels, \
                         but the labels file has {labels} lines"
                    ));
                }
                let scores = shapes
                    .iter()
                    .position(|s| s.len() == 3 && s[0] == 1 && s[2] == 90);
                let boxes = shapes
                    .iter()
                    .position(|s| s.len() == 4 && s[0] == 1 && s[2] == 1 && s[3] == 4);
                match (scores, boxes) {
                    (Some(sc), Some(bx)) if shapes[sc][1] == shapes[bx][1] => Ok(Family::Ssd {
                        scores: sc,
                        boxes: bx,
                        anchors: shapes[sc][1],
                    }),
                    _ => Err(format!(
                        "outputs {shapes:?} are not an SSD export's (expected [1,A,90] scores and [1,A,1,4] boxes)"
                    )),
                }
            }
        }
    }

    pub(super) fn kind(&self) -> ModelKind {
        match self {
            Family::NanoDet { .. } => ModelKind::Nanodet,
            Family::Ssd { .. } => ModelKind::Ssd,
        }
    }

    /// Interleaved RGB u8 (S×S) → the model's input tensor, written in place.
    pub(super) fn preprocess(&self, rgb: &[u8], input: &mut [f32]) {
        match self {
            Family::NanoDet { .. } => {
                let plane = input.len() / 3;
                let (b, rest) = input.split_at_mut(plane);
                let (g, r) = rest.split_at_mut(plane);
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    b[i] = (px[2] as f32 - MEAN_BGR[0]) / STD_BGR[0];
                    g[i] = (px[1] as f32 - MEAN_BGR[1]) / STD_BGR[1];
                    r[i] = (px[0] as f32 - MEAN_BGR[2]) / STD_BGR[2];
                }
            }
            Family::Ssd { .. } => {
                for (dst, &v) in input.iter_mut().zip(rgb) {
                    *dst = v as f32 * (2.0 / 255.0) - 1.0;
                }
            }
        }
    }

    /// Every (anchor, class) pair at or above `threshold` whose class `wanted` allows, with its
    /// box normalised to 0..1 and its class as an index into the labels file.
    pub(super) fn decode(
        &self,
        outputs: &[&[f32]],
        size: usize,
        threshold: f32,
        wanted: Option<&[bool]>,
    ) -> Vec<Candidate> {
        let keep = |c: usize| wanted.is_none_or(|w| w.get(c).copied().unwrap_or(false));
        let mut out = Vec::new();
        match self {
            Family::NanoDet { heads, classes } => {
                let side = size as f32;
                for head in heads {
                    let g = size / head.stride;
                    let st = head.stride as f32;
                    let (cls, reg) = (outputs[head.cls], outputs[head.reg]);
                    for cell in 0..g * g {
                        let scores = &cls[cell * classes..(cell + 1) * classes];
                        if !scores
                            .iter()
                            .enumerate()
                            .any(|(c, &s)| s >= threshold && keep(c))
                        {
                            continue;
                        }
                        let cx = ((cell % g) as f32 + 0.5) * st;
                        let cy = ((cell / g) as f32 + 0.5) * st;
                        let logits = &reg[cell * 4 * REG_BINS..(cell + 1) * 4 * REG_BINS];
                        let mut d = [0f32; 4];
                        for (k, side_logits) in logits.chunks_exact(REG_BINS).enumerate() {
                            d[k] = expectation(side_logits) * st;
                        }
                        let bbox = [
                            (cx - d[0]).clamp(0.0, side) / side,
                            (cy - d[1]).clamp(0.0, side) / side,
                            (cx + d[2]).clamp(0.0, side) / side,
                            (cy + d[3]).clamp(0.0, side) / side,
                        ];
                        for (class_id, &score) in scores.iter().enumerate() {
                            if score >= threshold && keep(class_id) {
                                out.push(Candidate {
                                    class_id,
                                    score,
                                    bbox,
                                });
                            }
                        }
                    }
                }
            }
            Family::Ssd {
                scores,
                boxes,
                anchors,
            } => {
                let (sc, bx) = (outputs[*scores], outputs[*boxes]);
                for a in 0..*anchors {
                    let row = &sc[a * 90..(a + 1) * 90];
                    let b = &bx[a * 4..(a + 1) * 4];
                    // (ymin, xmin, ymax, xmax) → (x1, y1, x2, y2)
                    let bbox = [b[1], b[0], b[3], b[2]].map(|v| v.clamp(0.0, 1.0));
                    for (class_id, id91) in COCO91_USED.iter().enumerate() {
                        let score = row[id91 - 1];
                        if score >= threshold && keep(class_id) {
                            out.push(Candidate {
                                class_id,
                                score,
                                bbox,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// Softmax over the bins, then Σ k·p_k: the expected distance in units of the stride.
fn expectation(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    let mut weighted = 0.0;
    for (k, &l) in logits.iter().enumerate() {
        let e = (l - max).exp();
        sum += e;
        weighted += k as f32 * e;
    }
    weighted / sum
}

/// A zeroed input tensor of the family's layout.
pub(super) fn input_tensor(kind: ModelKind, size: usize) -> TractResult<Tensor> {
    Tensor::zero::<f32>(&kind.input_shape(size))
}
