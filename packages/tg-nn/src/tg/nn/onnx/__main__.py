"""`python -m tg.nn.onnx MODEL.onnx [--run] [--device NAME]`: a model's inputs, outputs and operator
support; with --run, run it on random inputs and compare with onnxruntime when it is installed."""
from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np

from .model import load
from .ops import find_op


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tg.nn.onnx", description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--run", action="store_true", help="run on random inputs (and compare with onnxruntime)")
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    model = load(args.model, device=args.device)
    print(f"{args.model}: opsets {model.opsets}")
    for title, infos in (("inputs", model.input_info()), ("outputs", model.output_info())):
        print(f"{title}:")
        for name, dtype, shape in infos:
            print(f"  {name:<24} {dtype or '?':<8} {shape}")
    counts = Counter((n.domain or "ai.onnx", n.op_type) for n in model.proto.graph.node)
    print("operators:")
    for (domain, op_type), n in sorted(counts.items()):
        ok = find_op(domain, op_type) is not None
        print(f"  {'ok  ' if ok else 'MISSING'} {domain}::{op_type} x{n}")
    if not args.run:
        return 0 if not model.unsupported else 1
    rng = np.random.default_rng(0)
    feed = {}
    for name, dtype, shape in model.input_info():
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in shape]
        feed[name] = (rng.standard_normal(dims) if (dtype or "float32").startswith("float") else
                      rng.integers(0, 2, dims)).astype(dtype or "float32")
    ours = {k: v.numpy() for k, v in model(feed).items()}
    try:
        import onnxruntime
    except ImportError:
        print("ran on random inputs; onnxruntime is not installed, so nothing to compare with")
        return 0
    session = onnxruntime.InferenceSession(model.proto.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = dict(zip(model.output_names, session.run(None, feed)))
    worst = max(float(np.max(np.abs(ours[k].astype(np.float64) - theirs[k]))) if ours[k].size else 0.0
                for k in ours)
    print(f"max abs difference from onnxruntime: {worst:.3g}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
