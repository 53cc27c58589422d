//! The detect room: ONNX object detectors on tract-onnx, behind one API for every model family.
//!
//! A [`family`] knows a model's input layout and normalisation and how to decode its outputs
//! (NanoDet's GFL distances, SSD's decoded boxes); the family is stated in config
//! (`model.kind`) or recognised from the ONNX shapes. Pre- and post-processing follow each
//! model's reference pipeline exactly (models/README.md), because the test oracles were
//! produced that way and scores drift otherwise.

mod family;
mod fastops;
mod motion;
mod post;
mod resize;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::runtime::RunOptions;

pub use crate::config::ModelKind;
pub use crate::geometry::iou;
pub use crate::imaging::{resize_rgb, resize_rgb_to};
pub use motion::{GateDecision, MotionGate};
pub use post::Detection;
pub use resize::pillow_bilinear;

const NMS_IOU: f32 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("labels {path}: {message}")]
    Labels { path: PathBuf, message: String },
    #[error("image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("frame is {got} bytes, expected {expected} ({size}x{size} RGB)")]
    FrameSize {
        got: usize,
        expected: usize,
        size: usize,
    },
    #[error("inference failed: {0}")]
    Inference(String),
}

/// What the detector needs from the config.
#[derive(Debug, Clone)]
pub struct DetectorSpec {
    pub model: PathBuf,
    pub labels: PathBuf,
    pub kind: ModelKind,
    /// `None` = the family's own size (NanoDet 416, SSD 300).
    pub input_size: Option<usize>,
    pub threads: usize,
    /// `None` = the family's calibration point (NanoDet 0.35, SSD 0.5).
    pub score_threshold: Option<f32>,
}

impl DetectorSpec {
    pub fn from_config(m: &crate::config::ModelConfig) -> Self {
        Self {
            model: m.path.clone(),
            labels: m.labels.clone(),
            kind: m.kind,
            input_size: m.input_size.map(|s| s as usize),
            threads: m.threads,
            score_threshold: m.score_threshold,
        }
    }

    /// The bundled model (or `model` instead) with the default settings, paths resolved from
    /// the working directory: `watchpost detect` without a config, and the benchmarks.
    pub fn bundled(model: Option<PathBuf>, input_size: Option<usize>, threads: usize) -> Self {
        use crate::config::{resolve, ModelConfig};
        let mut m = ModelConfig::default();
        m.path = model.unwrap_or_else(|| resolve(Path::new("."), &m.path));
        m.labels = resolve(Path::new("."), &m.labels);
        let mut spec = Self::from_config(&m);
        spec.input_size = input_size;
        spec.threads = threads;
        spec
    }
}

/// Where one detection's time went (`watchpost detect --timing`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StageTimes {
    /// Image file decoding and resizing to the model's size (files only; cameras deliver
    /// frames at the model's size).
    pub load_ms: f64,
    /// Normalisation into the input tensor.
    pub pre_ms: f64,
    /// The tract plan.
    pub model_ms: f64,
    /// Box decoding and NMS.
    pub post_ms: f64,
}

pub struct Detector {
    /// The model runs *inside* this pool, not beside it: otherwise the pool's idle workers
    /// spin while the calling thread runs the single-threaded ops (pads, pooling, resizes),
    /// and on a 2-core box three threads share two cores (measured: Pad 5 → 17 ms).
    executor: Option<tract_linalg::multithread::Executor>,
    /// How many of tract's operators [`fastops`] replaced.
    swapped: usize,
    timing: StageTimes,
    threads: usize,
    state: TypedSimpleState,
    family: family::Family,
    size: usize,
    labels: Arc<[String]>,
    score_threshold: f32,
}

impl Detector {
    pub fn load(spec: &DetectorSpec) -> Result<Self, DetectError> {
        Self::load_guarded(spec, true)
    }

    /// As [`Detector::load`] with tract's own operators only (`watchpost-bench detect --stock-ops`, and
    /// the tests that hold the fast operators to tract's results).
    #[cfg(any(test, feature = "test-helpers", feature = "bench"))]
    pub fn load_stock(spec: &DetectorSpec) -> Result<Self, DetectError> {
        Self::load_guarded(spec, false)
    }

    /// tract's ONNX reader panics on some malformed files instead of returning an error
    /// (found by the model_file fuzz target: `no entry found for key` in tract-onnx's graph
    /// builder); a bad model file must be refused, not take the daemon down at start or on a
    /// live switch. Loading builds only local state, so unwinding out of it leaves nothing
    /// half-made.
    fn load_guarded(spec: &DetectorSpec, fast_ops: bool) -> Result<Self, DetectError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::load_with(spec, fast_ops)
        }))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(DetectError::Model {
                path: spec.model.clone(),
                message: format!(
                    "the ONNX reader failed on this file ({why}): not a model watchpost can load"
                ),
            })
        })
    }

    fn load_with(spec: &DetectorSpec, fast_ops: bool) -> Result<Self, DetectError> {
        let labels = load_labels(&spec.labels)?;
        let bad = |message: String| DetectError::Model {
            path: spec.model.clone(),
            message,
        };
        let model_err = |e: TractError| bad(format!("{e:#}"));
        // Ignoring value_info lets other input sizes (NanoDet at 320) load.
        let mut model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_path(&spec.model)
            .map_err(model_err)?;
        // tract indexes input 0 without a check (found by the model_file fuzz target: an ONNX
        // file with an empty graph panicked here instead of being refused).
        if model.inputs.len() != 1 || model.outputs.is_empty() {
            return Err(bad(format!(
                "a detector has one image input and at least one output; this model has {} inputs and {} outputs",
                model.inputs.len(),
                model.outputs.len()
            )));
        }
        let declared: Option<Vec<usize>> = model
            .input_fact(0)
            .ok()
            .and_then(|f| f.shape.as_concrete_finite().ok().flatten())
            .map(|s| s.to_vec());
        let kind = match spec.kind {
            ModelKind::Auto => declared
                .as_deref()
                .and_then(ModelKind::from_input_shape)
                .ok_or_else(|| {
                    bad(format!(
                        "cannot tell the model family from its input shape {declared:?}; \
                         set model.kind = \"nanodet\" or \"ssd\""
                    ))
                })?,
            k => k,
        };
        if let Some(d) = &declared {
            if ModelKind::from_input_shape(d).is_some_and(|k| k != kind) {
                return Err(bad(format!(
                    "model.kind = \"{}\" expects a {} input, but this model declares {d:?}",
                    kind.name(),
                    if kind == ModelKind::Ssd {
                        "[1, S, S, 3] (NHWC)"
                    } else {
                        "[1, 3, S, S] (NCHW)"
                    }
                )));
            }
        }
        let size = spec.input_size.unwrap_or(kind.default_input_size());
        let fixed = declared.as_deref().filter(|_| kind == ModelKind::Ssd);
        if let Some(d) = fixed {
            if d != kind.input_shape(size) {
                return Err(bad(format!(
                    "this SSD model takes a fixed {:?} input; model.input_size = {size} does not fit (use {})",
                    d,
                    d[1]
                )));
            }
        }
        if kind == ModelKind::Nanodet && (size < 32 || !size.is_multiple_of(32)) {
            return Err(bad(format!(
                "NanoDet needs an input size that is a multiple of 32, got {size}"
            )));
        }
        model = model
            .with_input_fact(0, f32::fact(kind.input_shape(size)).into())
            .map_err(model_err)?;
        let mut model = model.into_optimized().map_err(model_err)?;
        let swapped = if fast_ops {
            fastops::swap_in(&mut model, spec.threads > 1).map_err(model_err)?
        } else {
            0
        };
        let shapes: Vec<Vec<usize>> = model
            .output_outlets()
            .map_err(model_err)?
            .iter()
            .map(|o| {
                model
                    .outlet_fact(*o)
                    .ok()
                    .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()))
                    .unwrap_or_default()
            })
            .collect();
        let family = family::Family::bind(kind, &shapes, size, labels.len()).map_err(bad)?;
        let executor = (spec.threads > 1)
            .then(|| tract_linalg::multithread::Executor::multithread(spec.threads));
        let options = RunOptions {
            executor: executor.clone(),
            ..Default::default()
        };
        let plan = model
            .into_runnable_with_options(&options)
            .map_err(model_err)?;
        let state = plan.spawn().map_err(model_err)?;
        Ok(Self {
            executor,
            swapped,
            timing: StageTimes::default(),
            threads: spec.threads.max(1),
            state,
            family,
            size,
            labels: labels.into(),
            score_threshold: spec
                .score_threshold
                .unwrap_or(kind.default_score_threshold()),
        })
    }

    fn run_model(&mut self, input: Tensor) -> TractResult<TVec<TValue>> {
        let state = &mut self.state;
        match &self.executor {
            Some(tract_linalg::multithread::Executor::MultiThread(pool)) => {
                pool.install(move || state.run(tvec!(input.into())))
            }
            _ => state.run(tvec!(input.into())),
        }
    }

    pub fn kind(&self) -> ModelKind {
        self.family.kind()
    }

    pub fn input_size(&self) -> usize {
        self.size
    }

    /// How many of tract's operators were swapped for the plane-wise ones of `fastops`.
    pub fn fast_ops(&self) -> usize {
        self.swapped
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The stages of the last detection.
    pub fn last_timing(&self) -> StageTimes {
        self.timing
    }

    pub fn labels(&self) -> &Arc<[String]> {
        &self.labels
    }

    /// Detects on an RGB frame already at the model's size (what the video room delivers).
    /// Boxes come back normalised to 0..1.
    pub fn detect_rgb(&mut self, rgb: &[u8]) -> Result<Vec<Detection>, DetectError> {
        self.detect_rgb_filtered(rgb, None)
    }

    /// As [`Detector::detect_rgb`], keeping only classes `wanted[class_id]` is true for
    /// (skipped before NMS, so a camera that only watches people pays nothing for cups).
    pub fn detect_rgb_filtered(
        &mut self,
        rgb: &[u8],
        wanted: Option<&[bool]>,
    ) -> Result<Vec<Detection>, DetectError> {
        let s = self.size;
        let infer = |e: TractError| DetectError::Inference(format!("{e:#}"));
        let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
        let started = std::time::Instant::now();
        let input = self.input(rgb)?;
        self.timing.pre_ms = ms(started);
        let started = std::time::Instant::now();
        let outputs = self.run_model(input).map_err(infer)?;
        self.timing.model_ms = ms(started);
        let started = std::time::Instant::now();
        let mut views = Vec::with_capacity(outputs.len());
        for o in outputs.iter() {
            views.push(o.to_plain_array_view::<f32>().map_err(infer)?);
        }
        let slices: Vec<&[f32]> = views
            .iter()
            .map(|v| {
                v.as_slice()
                    .ok_or_else(|| DetectError::Inference("output is not contiguous".into()))
            })
            .collect::<Result<_, _>>()?;
        let candidates = self.family.decode(&slices, s, self.score_threshold, wanted);
        let kept = post::nms(candidates, NMS_IOU, &self.labels);
        self.timing.post_ms = ms(started);
        Ok(kept)
    }

    /// The model's input tensor from an RGB frame at the model's size (normalised in place).
    fn input(&self, rgb: &[u8]) -> Result<Tensor, DetectError> {
        let s = self.size;
        if rgb.len() != s * s * 3 {
            return Err(DetectError::FrameSize {
                got: rgb.len(),
                expected: s * s * 3,
                size: s,
            });
        }
        let infer = |e: TractError| DetectError::Inference(format!("{e:#}"));
        let mut input = family::input_tensor(self.family.kind(), s).map_err(infer)?;
        {
            let mut view = input.to_plain_array_view_mut::<f32>().map_err(infer)?;
            let slice = view
                .as_slice_mut()
                .ok_or_else(|| DetectError::Inference("input tensor is not contiguous".into()))?;
            self.family.preprocess(rgb, slice);
        }
        Ok(input)
    }

    /// Runs the model once on `rgb` (at the model's size) timing every node; returns
    /// `(operator, node name, milliseconds)` in plan order (`watchpost-bench detect --profile`).
    pub fn profile(&mut self, rgb: &[u8]) -> Result<Vec<(String, String, f64)>, DetectError> {
        let infer = |e: TractError| DetectError::Inference(format!("{e:#}"));
        let input = self.input(rgb)?;
        let mut nodes = Vec::new();
        let state = &mut self.state;
        let run = |nodes: &mut Vec<(String, String, f64)>| {
            state.run_plan_with_eval(tvec!(input.into()), |ctx, st, node, inputs| {
                let started = std::time::Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                nodes.push((node.op().name().to_string(), node.name.clone(), ms));
                out
            })
        };
        match &self.executor {
            Some(tract_linalg::multithread::Executor::MultiThread(pool)) => {
                pool.install(|| run(&mut nodes))
            }
            _ => run(&mut nodes),
        }
        .map_err(infer)?;
        Ok(nodes)
    }

    /// Which classes a set of labels needs, for [`Detector::detect_rgb_filtered`]; `None` when
    /// any label is wanted.
    pub fn class_filter<'a>(&self, labels: impl IntoIterator<Item = &'a str>) -> Vec<bool> {
        let mut wanted = vec![false; self.labels.len()];
        for l in labels {
            if let Some(i) = self.labels.iter().position(|x| x == l) {
                wanted[i] = true;
            }
        }
        wanted
    }

    /// Decodes an image file, resizes it the way the reference does (a smoothing bilinear, as
    /// Pillow's), and detects. Returns the detections and the image's width and height.
    pub fn detect_file(&mut self, path: &Path) -> Result<(Vec<Detection>, u32, u32), DetectError> {
        let img_err = |message: String| DetectError::Image {
            path: path.to_path_buf(),
            message,
        };
        let started = std::time::Instant::now();
        let img = image::ImageReader::open(path)
            .map_err(|e| img_err(e.to_string()))?
            .with_guessed_format()
            .map_err(|e| img_err(e.to_string()))?
            .decode()
            .map_err(|e| img_err(e.to_string()))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let s = self.size;
        let rgb = pillow_bilinear(img.as_raw(), w as usize, h as usize, s, s);
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let found = self.detect_rgb(&rgb)?;
        self.timing.load_ms = load_ms;
        Ok((found, w, h))
    }
}

pub fn load_labels(path: &Path) -> Result<Vec<String>, DetectError> {
    let text = std::fs::read_to_string(path).map_err(|e| DetectError::Labels {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::config::parse_labels(&text).map_err(|message| DetectError::Labels {
        path: path.to_path_buf(),
        message,
    })
}
