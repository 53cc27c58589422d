#!/usr/bin/env python3
"""Static int8 quantization of a NanoDet ONNX model, calibrated on real frames.

  quantize-model.py [--format qoperator|qdq] IN.onnx OUT.onnx

Calibration: the six fixture photos (network inputs, tests/data/*.416.png) and every 5th
frame of the bundled clip (decoded to 416x416 PNGs with gst-launch-1.0), pre-processed
exactly as the detector does (stretch, BGR, NanoDet mean/std). onnxruntime's
quantize_static with MinMax calibration, per-channel int8 weights, uint8 activations.
Only Conv is quantized: the Pad op must stay float (quantized padding turns the boxes into
garbage), and LeakyRelu in QOperator form becomes com.microsoft.QLinearLeakyRelu, which
tract does not know. Deterministic: same inputs, same model bytes.
"""
import argparse, glob, os, subprocess, sys, tempfile

import numpy as np
from PIL import Image
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)


def preprocess(path, s):
    x = np.asarray(Image.open(path).convert("RGB").resize((s, s), Image.BILINEAR), np.float32)
    x = (x[..., ::-1] - MEAN_BGR) / STD_BGR
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def calibration_images(tmp):
    photos = sorted(glob.glob(os.path.join(ROOT, "tests/data/*.416.png")))
    clip = os.path.join(ROOT, "models/media/people-dogs.mp4")
    subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={clip}", "!", "qtdemux", "!", "h264parse", "!",
         "avdec_h264", "!", "videorate", "!", "video/x-raw,framerate=2/1", "!", "videoconvert", "!",
         "pngenc", "!", "multifilesink", f"location={tmp}/frame-%03d.png"], check=True)
    frames = sorted(glob.glob(os.path.join(tmp, "frame-*.png")))
    return photos + frames


class Frames(CalibrationDataReader):
    def __init__(self, name, paths, size):
        self.items = iter([{name: preprocess(p, size)} for p in paths])

    def get_next(self):
        return next(self.items, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=["qoperator", "qdq"], default="qoperator")
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("model_in")
    ap.add_argument("model_out")
    a = ap.parse_args()
    import onnx
    model = onnx.load(a.model_in)
    name = model.graph.input[0].name
    pads = [n.name for n in model.graph.node if n.op_type == "Pad"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = calibration_images(tmp)
        print(f"calibrating on {len(paths)} real frames; keeping float: {pads or 'none'}", file=sys.stderr)
        quantize_static(
            a.model_in, a.model_out, Frames(name, paths, a.size),
            quant_format=QuantFormat.QOperator if a.format == "qoperator" else QuantFormat.QDQ,
            op_types_to_quantize=["Conv"], nodes_to_exclude=pads, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax)
    print(f"wrote {a.model_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
