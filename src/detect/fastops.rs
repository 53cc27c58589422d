//! Plane-wise replacements for three tract 0.23.9 operators that are generic and slow on the
//! shapes a detector feeds them.
//!
//! Profiled on NanoDet 416 (docs/benchmarks.md): tract pads each convolution's input with a
//! rank-generic `Pad` (an ndarray `assign` over `IxDyn` indices, 28 copies a frame), resizes
//! with a generic per-axis resampler and max-pools through a generic patch walker — together
//! ~20 ms of a 90 ms frame, all on one thread. The same work done a row at a time, plane by
//! plane (and planes spread over the detector's thread pool), takes a fraction of that. No
//! crate offers these as tract operators, so they are written here; each is swapped in only
//! where its exact semantics apply, and the unit tests below check it against tract's own
//! operator on random tensors.

use rayon::prelude::*;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::cnn::{OptMaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::nn::resize::{CoordTransformer, Interpolator, Resize};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Swaps the fast operators into an optimised model; returns how many nodes were swapped.
/// `parallel`: spread planes over the rayon pool the plan runs in (only when the detector has
/// one: outside a pool rayon would start its global one).
pub(super) fn swap_in(model: &mut TypedModel, parallel: bool) -> TractResult<usize> {
    let mut swaps = Vec::new();
    for node in model.nodes() {
        if let Some(op) = fast_op_for(model, node, parallel)? {
            swaps.push((node.id, op));
        }
    }
    let swapped = swaps.len();
    for (id, op) in swaps {
        let node = model.node(id);
        let patch = TypedModelPatch::replace_single_op(model, node, &[node.inputs[0]], op)?;
        patch.apply(model)?;
    }
    model.compact()?;
    Ok(swapped)
}

fn fast_op_for(
    model: &TypedModel,
    node: &TypedNode,
    parallel: bool,
) -> TractResult<Option<Box<dyn TypedOp>>> {
    if node.inputs.is_empty() || node.outputs.len() != 1 {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let output = &node.outputs[0].fact;
    if input.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let (Some(ishape), Some(oshape)) = (input.shape.as_concrete(), output.shape.as_concrete())
    else {
        return Ok(None);
    };
    if let Some(pad) = node.op_as::<Pad>() {
        return Ok(PlanePad::matching(pad, ishape, parallel).map(|op| Box::new(op) as _));
    }
    if let Some(resize) = node.op_as::<Resize>() {
        return Ok(Resize2x::matching(resize, ishape, oshape, parallel).map(|op| Box::new(op) as _));
    }
    if let Some(pool) = node.op_as::<OptMaxPool>() {
        return Ok(PlaneMaxPool::matching(pool, ishape, parallel).map(|op| Box::new(op) as _));
    }
    Ok(None)
}

/// What a plane-wise operator supplies; [`plane_op!`] makes a tract operator of it.
trait PlaneOp {
    fn output_shape(&self, input: &[usize]) -> Vec<usize>;
    /// `x`: the input's values, contiguous, of shape `shape`.
    fn run(&self, x: &[f32], shape: &[usize]) -> TractResult<TVec<TValue>>;
}

/// tract's three operator traits for a [`PlaneOp`]: one f32 input of concrete shape in, one
/// output of `output_shape` out.
macro_rules! plane_op {
    ($t:ident) => {
        impl Op for $t {
            fn name(&self) -> StaticName {
                stringify!($t).into()
            }
            op_as_typed_op!();
        }

        impl EvalOp for $t {
            op_out_of_plan!();

            fn eval(&self, _: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
                let view = inputs[0].to_plain_array_view::<f32>()?;
                let x = view
                    .as_slice()
                    .ok_or_else(|| format_err!("{}: input is not contiguous", stringify!($t)))?;
                self.run(x, view.shape())
            }
        }

        impl TypedOp for $t {
            as_op!();

            fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
                let shape = inputs[0]
                    .shape
                    .as_concrete()
                    .ok_or_else(|| format_err!("{} needs a concrete shape", stringify!($t)))?;
                Ok(tvec!(f32::fact(self.output_shape(shape))))
            }
        }
    };
}

/// Makes the output in tract's own (aligned) buffer and lets `fill` write it plane by plane:
/// an `ndarray` handed to tract would be copied once more.
fn output(
    shape: &[usize],
    value: f32,
    parallel: bool,
    plane_len: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> TractResult<TVec<TValue>> {
    let mut t = Tensor::zero::<f32>(shape)?;
    {
        let mut view = t.to_plain_array_view_mut::<f32>()?;
        let out = view
            .as_slice_mut()
            .ok_or_else(|| format_err!("output is not contiguous"))?;
        if value.to_bits() != 0 {
            out.fill(value);
        }
        if !out.is_empty() && plane_len > 0 {
            for_planes(parallel, out, plane_len, fill);
        }
    }
    Ok(tvec!(t.into_tvalue()))
}

/// Runs `f(plane_index, plane)` over every `plane_len` chunk of `out`, on the pool when asked.
fn for_planes(
    parallel: bool,
    out: &mut [f32],
    plane_len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if parallel {
        out.par_chunks_mut(plane_len)
            .enumerate()
            .with_min_len(4)
            .for_each(|(i, p)| f(i, p));
    } else {
        out.chunks_mut(plane_len)
            .enumerate()
            .for_each(|(i, p)| f(i, p));
    }
}

/// Constant padding of two adjacent axes (what tract wires before every lazy-im2col
/// convolution, and NanoDet's explicit pad before its max-pool).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlanePad {
    /// First padded axis; the next one is the other.
    axis: usize,
    before: [usize; 2],
    after: [usize; 2],
    value_bits: u32,
    parallel: bool,
}

impl PlanePad {
    fn matching(pad: &Pad, ishape: &[usize], parallel: bool) -> Option<Self> {
        let PadMode::Constant(value) = &pad.mode else {
            return None;
        };
        let value = value.cast_to_scalar::<f32>().ok()?;
        if ishape.len() != 4 || pad.pads.len() != 4 {
            return None;
        }
        let padded: Vec<usize> = (0..4).filter(|&a| pad.pads[a] != (0, 0)).collect();
        let axis = match padded.as_slice() {
            [a, b] if b == &(a + 1) => *a,
            [a] if *a < 3 => *a,
            [3] => 2,
            _ => return None,
        };
        Some(Self {
            axis,
            before: [pad.pads[axis].0, pad.pads[axis + 1].0],
            after: [pad.pads[axis].1, pad.pads[axis + 1].1],
            value_bits: value.to_bits(),
            parallel,
        })
    }
}

plane_op!(PlanePad);

impl PlaneOp for PlanePad {
    fn output_shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut out = shape.to_vec();
        for i in 0..2 {
            out[self.axis + i] += self.before[i] + self.after[i];
        }
        out
    }

    fn run(&self, x: &[f32], shape: &[usize]) -> TractResult<TVec<TValue>> {
        // Planes of `h` rows of `w * inner` values: NCHW has `inner = 1`, NHWC (padding axes
        // 1 and 2) `inner = C`.
        let (h, w) = (shape[self.axis], shape[self.axis + 1]);
        let inner: usize = shape[self.axis + 2..].iter().product();
        let value = f32::from_bits(self.value_bits);
        let (oh, ow) = (
            h + self.before[0] + self.after[0],
            w + self.before[1] + self.after[1],
        );
        let row = w * inner;
        let orow = ow * inner;
        let left = self.before[1] * inner;
        output(
            &self.output_shape(shape),
            value,
            self.parallel,
            oh * orow,
            |i, plane| {
                let src = &x[i * h * row..(i + 1) * h * row];
                for (y, src_row) in src.chunks_exact(row.max(1)).enumerate() {
                    let at = (y + self.before[0]) * orow + left;
                    plane[at..at + row].copy_from_slice(src_row);
                }
            },
        )
    }
}

/// ONNX `Resize`, linear, `half_pixel`, by exactly 2 or 1/2 on the last two axes of NCHW:
/// the FPN's up- and down-sampling. Up: each output is ¾ of its nearest input and ¼ of the
/// next one out (edges clamp); down: the mean of each 2x2 block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resize2x {
    up: bool,
    parallel: bool,
}

impl Resize2x {
    fn matching(resize: &Resize, i: &[usize], o: &[usize], parallel: bool) -> Option<Self> {
        let linear_half_pixel = resize.interpolator == Interpolator::Linear
            && resize.coord_transformer == CoordTransformer::HalfPixel;
        if !linear_half_pixel || i.len() != 4 || o.len() != 4 || i[..2] != o[..2] {
            return None;
        }
        if o[2] == 2 * i[2] && o[3] == 2 * i[3] {
            Some(Self { up: true, parallel })
        } else if i[2] == 2 * o[2] && i[3] == 2 * o[3] && o[2] > 0 && o[3] > 0 {
            Some(Self {
                up: false,
                parallel,
            })
        } else {
            None
        }
    }
}

/// One row of the ×2 upsampling: `out[2i] = ¾ x[i] + ¼ x[i-1]`, `out[2i+1] = ¾ x[i] + ¼ x[i+1]`.
fn upsample_row(x: &[f32], out: &mut [f32]) {
    let n = x.len();
    for i in 0..n {
        let (prev, next) = (x[i.saturating_sub(1)], x[(i + 1).min(n - 1)]);
        out[2 * i] = 0.75 * x[i] + 0.25 * prev;
        out[2 * i + 1] = 0.75 * x[i] + 0.25 * next;
    }
}

plane_op!(Resize2x);

impl PlaneOp for Resize2x {
    fn output_shape(&self, s: &[usize]) -> Vec<usize> {
        let (h, w) = if self.up {
            (s[2] * 2, s[3] * 2)
        } else {
            (s[2] / 2, s[3] / 2)
        };
        vec![s[0], s[1], h, w]
    }

    fn run(&self, x: &[f32], shape: &[usize]) -> TractResult<TVec<TValue>> {
        let (h, w) = (shape[2], shape[3]);
        let oshape = self.output_shape(shape);
        let (oh, ow) = (oshape[2], oshape[3]);
        let up = self.up;
        output(&oshape, 0.0, self.parallel, oh * ow, |c, plane| {
            let src = &x[c * h * w..(c + 1) * h * w];
            let row = |y: usize| &src[y * w..(y + 1) * w];
            if up {
                // Blend rows first (vectorises), then spread the blended row across.
                let mut blended = vec![0f32; w];
                for y in 0..h {
                    let (cur, prev, next) =
                        (row(y), row(y.saturating_sub(1)), row((y + 1).min(h - 1)));
                    for (k, near) in [(0, prev), (1, next)] {
                        for ((b, &c), &n) in blended.iter_mut().zip(cur).zip(near) {
                            *b = 0.75 * c + 0.25 * n;
                        }
                        let o = (2 * y + k) * ow;
                        upsample_row(&blended, &mut plane[o..o + ow]);
                    }
                }
            } else {
                for (oy, orow) in plane.chunks_exact_mut(ow).enumerate() {
                    let (a, b) = (row(2 * oy), row(2 * oy + 1));
                    for (ox, o) in orow.iter_mut().enumerate() {
                        let top = 0.5 * a[2 * ox] + 0.5 * a[2 * ox + 1];
                        let bottom = 0.5 * b[2 * ox] + 0.5 * b[2 * ox + 1];
                        *o = 0.5 * top + 0.5 * bottom;
                    }
                }
            }
        })
    }
}

/// Max-pooling of NCHW planes with no padding (tract has already wired an explicit `Pad`):
/// the max of each `k` rows first (contiguous, vectorises), then of each `k` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlaneMaxPool {
    kernel: [usize; 2],
    stride: [usize; 2],
    parallel: bool,
}

impl PlaneMaxPool {
    fn matching(pool: &OptMaxPool, ishape: &[usize], parallel: bool) -> Option<Self> {
        let spec = &pool.pool_spec;
        let plain = spec.data_format == DataFormat::NCHW
            && spec.padding == PaddingSpec::Valid
            && pool.with_index_outputs.is_none()
            && spec
                .dilations
                .as_ref()
                .is_none_or(|d| d.iter().all(|&d| d == 1));
        if !plain || ishape.len() != 4 || spec.kernel_shape.len() != 2 {
            return None;
        }
        let strides = spec.strides.clone().unwrap_or_else(|| tvec![1, 1]);
        let kernel = [spec.kernel_shape[0], spec.kernel_shape[1]];
        let op = Self {
            kernel,
            stride: [strides[0], strides[1]],
            parallel,
        };
        (kernel.iter().all(|&k| k > 0)
            && op.stride.iter().all(|&s| s > 0)
            && ishape[2] >= kernel[0]
            && ishape[3] >= kernel[1])
            .then_some(op)
    }
}

plane_op!(PlaneMaxPool);

impl PlaneOp for PlaneMaxPool {
    fn output_shape(&self, s: &[usize]) -> Vec<usize> {
        let o = |i: usize, a: usize| (i - self.kernel[a]) / self.stride[a] + 1;
        vec![s[0], s[1], o(s[2], 0), o(s[3], 1)]
    }

    fn run(&self, x: &[f32], shape: &[usize]) -> TractResult<TVec<TValue>> {
        let (h, w) = (shape[2], shape[3]);
        let oshape = self.output_shape(shape);
        let (oh, ow) = (oshape[2], oshape[3]);
        let ([kh, kw], [sh, sw]) = (self.kernel, self.stride);
        // Compare-and-select rather than `f32::max`: it compiles to a plain max instruction,
        // `f32::max`'s NaN rule does not (and NaN never reaches a detector's pool).
        let max = |a: f32, b: f32| if b > a { b } else { a };
        output(&oshape, 0.0, self.parallel, oh * ow, |c, plane| {
            let src = &x[c * h * w..(c + 1) * h * w];
            let mut rows_max = vec![0f32; w];
            for (oy, orow) in plane.chunks_exact_mut(ow).enumerate() {
                let top = oy * sh;
                rows_max.copy_from_slice(&src[top * w..(top + 1) * w]);
                for ky in 1..kh {
                    let r = &src[(top + ky) * w..(top + ky + 1) * w];
                    for (m, &v) in rows_max.iter_mut().zip(r) {
                        *m = max(*m, v);
                    }
                }
                for (ox, o) in orow.iter_mut().enumerate() {
                    let b = ox * sw;
                    *o = rows_max[b + 1..b + kw]
                        .iter()
                        .fold(rows_max[b], |m, &v| max(m, v));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tract_onnx::tract_core::ops::cnn::{MaxPool, PoolSpec};
    use tract_onnx::tract_core::ops::nn::resize::Nearest;

    /// Runs a one-operator model on `x` with tract's operator, then with the swap made;
    /// returns (swapped nodes, tract's output, ours).
    fn both(
        shape: &[usize],
        x: &[f32],
        wire: impl Fn(&mut TypedModel, OutletId) -> TractResult<OutletId>,
        parallel: bool,
    ) -> (usize, Tensor, Tensor) {
        let mut model = TypedModel::default();
        let src = model.add_source("x", f32::fact(shape)).unwrap();
        let out = wire(&mut model, src).unwrap();
        model.select_output_outlets(&[out]).unwrap();
        let stock = model.into_optimized().unwrap();
        let mut fast = stock.clone();
        let swapped = swap_in(&mut fast, parallel).unwrap();
        let input = Tensor::from_shape(shape, x).unwrap();
        let run = |m: TypedModel| {
            let plan = m.into_runnable().unwrap();
            plan.run(tvec!(input.clone().into_tvalue())).unwrap()[0]
                .clone()
                .into_tensor()
        };
        (swapped, run(stock), run(fast))
    }

    fn assert_close(stock: &Tensor, fast: &Tensor) {
        assert_eq!(stock.shape(), fast.shape());
        let (a, b) = (
            stock.to_plain_array_view::<f32>().unwrap(),
            fast.to_plain_array_view::<f32>().unwrap(),
        );
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            let close = x == y || (x - y).abs() <= 1e-5 * x.abs().max(1.0);
            assert!(close, "element {i}: tract {x}, ours {y}");
        }
    }

    fn tensor_strategy() -> impl Strategy<Value = (Vec<usize>, Vec<f32>)> {
        (1usize..3, 1usize..6, 1usize..9, 1usize..9).prop_flat_map(|(n, c, h, w)| {
            let shape = vec![n, c, h, w];
            let len = n * c * h * w;
            (Just(shape), proptest::collection::vec(-10f32..10.0, len))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn pad_matches_tract(
            (shape, x) in tensor_strategy(),
            pads in proptest::array::uniform4(0usize..3),
            nhwc in any::<bool>(),
            value in prop_oneof![Just(0f32), Just(f32::NEG_INFINITY), -3f32..3.0],
            parallel in any::<bool>(),
        ) {
            // NCHW pads axes 2 and 3, NHWC axes 1 and 2 (rows of w x c values).
            let axis = if nhwc { 1 } else { 2 };
            let mut all = vec![(0, 0); 4];
            all[axis] = (pads[0], pads[1]);
            all[axis + 1] = (pads[2], pads[3]);
            let op = Pad { pads: all.clone(), mode: PadMode::Constant(rctensor0(value)) };
            let (swapped, stock, fast) =
                both(&shape, &x, |m, s| Ok(m.wire_node("pad", op.clone(), &[s])?[0]), parallel);
            prop_assert_eq!(swapped, usize::from(all.iter().any(|p| *p != (0, 0))));
            assert_close(&stock, &fast);
        }

        #[test]
        fn max_pool_matches_tract(
            (shape, x) in tensor_strategy(),
            kernel in proptest::array::uniform2(1usize..4),
            stride in proptest::array::uniform2(1usize..3),
            parallel in any::<bool>(),
        ) {
            prop_assume!(shape[2] >= kernel[0] && shape[3] >= kernel[1]);
            let spec = PoolSpec {
                data_format: DataFormat::NCHW,
                kernel_shape: kernel.iter().copied().collect(),
                padding: PaddingSpec::Valid,
                dilations: None,
                strides: Some(stride.iter().copied().collect()),
                input_channels: shape[1],
                output_channels: shape[1],
            };
            let op = MaxPool { pool_spec: spec, with_index_outputs: None };
            let (swapped, stock, fast) =
                both(&shape, &x, |m, s| Ok(m.wire_node("pool", op.clone(), &[s])?[0]), parallel);
            prop_assert_eq!(swapped, 1);
            assert_close(&stock, &fast);
        }

        #[test]
        fn resize_by_two_matches_tract(
            (shape, x) in tensor_strategy(),
            up in any::<bool>(),
            parallel in any::<bool>(),
        ) {
            prop_assume!(up || (shape[2] % 2 == 0 && shape[3] % 2 == 0));
            let f = if up { 2.0f32 } else { 0.5 };
            let op = Resize {
                coord_transformer: CoordTransformer::HalfPixel,
                interpolator: Interpolator::Linear,
                nearest: Nearest::Floor,
                optional_scales_input: Some(1),
                optional_sizes_input: None,
            };
            let (swapped, stock, fast) = both(&shape, &x, |m, s| {
                let scales = m.add_const("scales", tensor1(&[1f32, 1.0, f, f]))?;
                Ok(m.wire_node("resize", op.clone(), &[s, scales])?[0])
            }, parallel);
            prop_assert_eq!(swapped, 1);
            assert_close(&stock, &fast);
        }
    }

    #[test]
    fn other_resizes_are_left_to_tract() {
        let op = Resize {
            coord_transformer: CoordTransformer::AlignCorners,
            interpolator: Interpolator::Linear,
            nearest: Nearest::Floor,
            optional_scales_input: Some(1),
            optional_sizes_input: None,
        };
        let shape = [1, 2, 4, 4];
        let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let (swapped, stock, fast) = both(
            &shape,
            &x,
            |m, s| {
                let scales = m.add_const("scales", tensor1(&[1f32, 1.0, 2.0, 2.0]))?;
                Ok(m.wire_node("resize", op.clone(), &[s, scales])?[0])
            },
            false,
        );
        assert_eq!(swapped, 0);
        assert_close(&stock, &fast);
    }
}
