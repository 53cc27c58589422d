#!/usr/bin/env python3
"""onnxruntime reference timing for scripts/bench: same model, same images, same threads.

  bench_ort.py MODEL THREADS RUNS IMAGE...   -> one JSON line with median/mean ms per frame
Times session.run only, after one warm-up run per image (pre-processing excluded, as it is a
few hundred microseconds and is identical work in both runtimes).
"""
import json, statistics, sys, time

import numpy as np
import onnxruntime as ort
from PIL import Image

MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)


def preprocess(path, s=416):
    x = np.asarray(Image.open(path).convert("RGB").resize((s, s), Image.BILINEAR), np.float32)
    x = (x[..., ::-1] - MEAN_BGR) / STD_BGR
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def main():
    model, threads, runs, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    # Spin-waiting on a 2-vCPU VM with a busy neighbour makes timings bimodal; turn it off.
    o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    times = []
    for p in images:
        x = preprocess(p)
        sess.run(None, {name: x})
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, {name: x})
            times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"runtime": f"onnxruntime {ort.__version__}", "threads": threads, "frames": len(times),
                      "median_ms": statistics.median(times),
                      "p95_ms": sorted(times)[min(len(times) - 1, len(times) * 95 // 100)],
                      "mean_ms": statistics.fmean(times),
                      "min_ms": min(times), "max_ms": max(times)}))


if __name__ == "__main__":
    main()
