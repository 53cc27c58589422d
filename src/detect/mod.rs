//! The detect room: the bundled NanoDet model on tract-onnx.
//!
//! Pre- and post-processing follow models/README.md exactly (stretch resize, BGR, NanoDet
//! mean/std; GFL distance decoding with cell centres at +0.5 stride; per-class greedy NMS),
//! because the test oracle was produced that way and scores drift otherwise.

mod post;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::runtime::RunOptions;

pub use post::{iou, Detection};

/// NanoDet's training normalisation, in BGR order, in 0..255 space.
const MEAN_BGR: [f32; 3] = [103.53, 116.28, 123.675];
const STD_BGR: [f32; 3] = [57.375, 57.12, 58.395];
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
    pub input_size: usize,
    pub threads: usize,
    pub score_threshold: f32,
}

/// Where one stride's two outputs sit in the model's output list.
#[derive(Debug, Clone, Copy)]
struct Head {
    stride: usize,
    cls: usize,
    reg: usize,
}

pub struct Detector {
    state: TypedSimpleState,
    size: usize,
    heads: Vec<Head>,
    labels: Arc<[String]>,
    num_classes: usize,
    score_threshold: f32,
}

impl Detector {
    pub fn load(spec: &DetectorSpec) -> Result<Self, DetectError> {
        let labels = load_labels(&spec.labels)?;
        let size = spec.input_size;
        let model_err = |e: TractError| DetectError::Model {
            path: spec.model.clone(),
            message: format!("{e:#}"),
        };
        // The graph carries 416-sized value_info; ignoring it lets other sizes (320) load.
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_path(&spec.model)
            .map_err(model_err)?
            .with_input_fact(0, f32::fact([1, 3, size, size]).into())
            .map_err(model_err)?
            .into_optimized()
            .map_err(model_err)?;
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
        let heads = find_heads(&shapes, size, labels.len()).ok_or_else(|| DetectError::Model {
            path: spec.model.clone(),
            message: format!(
                "outputs {shapes:?} do not look like NanoDet at {size}x{size} with {} classes \
                 (expected [1,N,{}] scores and [1,N,44] boxes for strides 8, 16, 32)",
                labels.len(),
                labels.len()
            ),
        })?;
        let options = RunOptions {
            executor: (spec.threads > 1)
                .then(|| tract_linalg::multithread::Executor::multithread(spec.threads)),
            ..Default::default()
        };
        let plan = model
            .into_runnable_with_options(&options)
            .map_err(model_err)?;
        let state = plan.spawn().map_err(model_err)?;
        Ok(Self {
            state,
            size,
            heads,
            num_classes: labels.len(),
            labels: labels.into(),
            score_threshold: spec.score_threshold,
        })
    }

    pub fn input_size(&self) -> usize {
        self.size
    }

    pub fn labels(&self) -> &Arc<[String]> {
        &self.labels
    }

    /// Detects on an RGB frame already at the model's size (what the video room delivers).
    /// Boxes come back normalised to 0..1.
    pub fn detect_rgb(&mut self, rgb: &[u8]) -> Result<Vec<Detection>, DetectError> {
        let s = self.size;
        if rgb.len() != s * s * 3 {
            return Err(DetectError::FrameSize {
                got: rgb.len(),
                expected: s * s * 3,
                size: s,
            });
        }
        let input = preprocess(rgb, s);
        let outputs = self
            .state
            .run(tvec!(input.into()))
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        let mut views = Vec::with_capacity(outputs.len());
        for o in outputs.iter() {
            let view = o
                .to_plain_array_view::<f32>()
                .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
            views.push(
                view.to_slice()
                    .ok_or_else(|| DetectError::Inference("output is not contiguous".into()))?,
            );
        }
        let candidates = post::decode(
            &views,
            &self.heads,
            s,
            self.num_classes,
            self.score_threshold,
        );
        Ok(post::nms(candidates, NMS_IOU, s, &self.labels))
    }

    /// Decodes an image file, resizes it the way the reference does (a smoothing bilinear, as
    /// Pillow's), and detects. Returns the detections and the image's width and height.
    pub fn detect_file(&mut self, path: &Path) -> Result<(Vec<Detection>, u32, u32), DetectError> {
        let img_err = |message: String| DetectError::Image {
            path: path.to_path_buf(),
            message,
        };
        let img = image::ImageReader::open(path)
            .map_err(|e| img_err(e.to_string()))?
            .with_guessed_format()
            .map_err(|e| img_err(e.to_string()))?
            .decode()
            .map_err(|e| img_err(e.to_string()))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let rgb = resize_rgb(img.as_raw(), w, h, self.size as u32).map_err(img_err)?;
        Ok((self.detect_rgb(&rgb)?, w, h))
    }
}

/// Bilinear convolution resize (smooths when shrinking), matching Pillow's BILINEAR.
pub fn resize_rgb(rgb: &[u8], w: u32, h: u32, size: u32) -> Result<Vec<u8>, String> {
    resize_rgb_to(rgb, w, h, size, size)
}

/// [`resize_rgb`] to any output size.
pub fn resize_rgb_to(
    rgb: &[u8],
    w: u32,
    h: u32,
    out_w: u32,
    out_h: u32,
) -> Result<Vec<u8>, String> {
    use fast_image_resize::{
        images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions,
    };
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(out_w, out_h, PixelType::U8x3);
    fast_image_resize::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| e.to_string())?;
    Ok(dst.into_vec())
}

/// Interleaved RGB u8 → planar BGR f32 `[1,3,S,S]`, normalised with NanoDet's mean/std.
fn preprocess(rgb: &[u8], s: usize) -> Tensor {
    let plane = s * s;
    let mut data = vec![0f32; 3 * plane];
    let (b, rest) = data.split_at_mut(plane);
    let (g, r) = rest.split_at_mut(plane);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        b[i] = (px[2] as f32 - MEAN_BGR[0]) / STD_BGR[0];
        g[i] = (px[1] as f32 - MEAN_BGR[1]) / STD_BGR[1];
        r[i] = (px[0] as f32 - MEAN_BGR[2]) / STD_BGR[2];
    }
    // The length is 3·S·S by construction, so the shape always fits.
    tract_ndarray::Array4::from_shape_vec((1, 3, s, s), data)
        .map(Tensor::from)
        .unwrap_or_else(|_| Tensor::from(0f32))
}

fn find_heads(shapes: &[Vec<usize>], size: usize, classes: usize) -> Option<Vec<Head>> {
    [8usize, 16, 32]
        .into_iter()
        .map(|stride| {
            let n = (size / stride).pow(2);
            let find = |c: usize| shapes.iter().position(|s| s.as_slice() == [1, n, c]);
            Some(Head {
                stride,
                cls: find(classes)?,
                reg: find(44)?,
            })
        })
        .collect()
}

pub fn load_labels(path: &Path) -> Result<Vec<String>, DetectError> {
    let text = std::fs::read_to_string(path).map_err(|e| DetectError::Labels {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    if labels.is_empty() || labels.iter().any(|l| l.is_empty()) {
        return Err(DetectError::Labels {
            path: path.to_path_buf(),
            message: "expected one non-empty label per line".into(),
        });
    }
    Ok(labels)
}
