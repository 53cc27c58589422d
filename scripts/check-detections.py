#!/usr/bin/env python3
"""Compares `watchpost detect` JSON (a list of {label, confidence, box}) with a test oracle
(tests/data/*.expected.json): every non-borderline oracle box must be found with the same
label, IoU >= 0.85 and |score difference| <= 0.05. Exit 1 (with the misses) otherwise.

    scripts/check-detections.py GOT.json ORACLE.json
"""
import json
import sys


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main() -> int:
    got = json.load(open(sys.argv[1]))
    oracle = json.load(open(sys.argv[2]))["detections"]
    misses = []
    for want in oracle:
        if want.get("borderline"):
            continue
        best = max(
            (d for d in got if d["label"] == want["label"]),
            key=lambda d: iou(d["box"], want["box"]),
            default=None,
        )
        ok = (
            best is not None
            and iou(best["box"], want["box"]) >= 0.85
            and abs(best["confidence"] - want["score"]) <= 0.05
        )
        if not ok:
            misses.append((want, best))
    for want, best in misses:
        print(f"MISS {want['label']} {want['score']} {want['box']} -> {best}")
    print(f"{len(oracle) - len(misses)}/{len(oracle)} oracle detections matched")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
