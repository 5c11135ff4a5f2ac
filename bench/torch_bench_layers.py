#!/usr/bin/env python3
"""Times the PyTorch modules behind tokenmix's layers, one thread, float32, at the shapes of
bench/bench_layers.cpp, and writes Google-Benchmark-like JSON (names
layer/<Layer>/torch/<n>x<d>, median aggregates) so the two can be compared as ratios.

    /usr/bin/python3 bench/torch_bench_layers.py torch_layers.json [--repetitions 5] [--filter RE]

The modules are the same re-implementations of timm's code the test fixtures come from
(tests/reference/make_layer_fixtures.py). Exits 0 with a message when torch is missing.
"""
import argparse
import json
import os
import platform
import re
import statistics
import sys
import time

import torch_env


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="path of the JSON file to write")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2,
                        help="seconds each repetition runs at least")
    parser.add_argument("--filter", default="", help="regex on benchmark names")
    args = parser.parse_args()

    # One thread everywhere: torch's intra-op pool and the BLAS's own pool (Debian's torch
    # calls OpenBLAS, which otherwise starts a thread per core and bills their spinning to
    # the process CPU time measured here).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch
    except ImportError:
        print("torch_bench_layers: torch is not installed; skipping the PyTorch rows "
              "(use /usr/bin/python3 on Debian with python3-torch)")
        return 0

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
    import make_layer_fixtures as ref  # noqa: E402  (sets float64 as default dtype)

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    cases = []  # (name, module, input, call)

    def add(layer, n, d, module, x, call=None):
        cases.append((f"layer/{layer}/torch/{n}x{d}", module.float().eval(), x.float(), call))

    for d in (256, 768):
        for n in (64, 512, 2048, 8192):
            add("LayerNorm", n, d, torch.nn.LayerNorm(d, eps=1e-6), torch.randn(1, n, d))
        for n in (64, 512, 2048):
            add("FeedForward", n, d, ref.Mlp(d, 4 * d, d), torch.randn(1, n, d))
        for n in (64, 196, 512, 2048):
            add("SpatialGatingUnit", n, d, ref.SpatialGatingUnit(2 * d, n), torch.randn(1, n, 2 * d))
        for n in (64, 196, 512):
            add("MLPMixerBlock", n, d, ref.MixerBlock(n, d), torch.randn(1, n, d))
            add("ResMLPBlock", n, d, ref.ResBlock(d, n), torch.randn(1, n, d))
            add("GMLPBlock", n, d, ref.SpatialGatingBlock(d, 6 * d, n), torch.randn(1, n, d))

    # How fast this torch's BLAS is: the same product as FeedForward 512x768's fc1. Ratios
    # against torch mean little without it (Debian's torch may sit on a slow BLAS path).
    a, w = torch.randn(512, 768), torch.randn(3072, 768)
    cases.append(("layer/sgemm_calibration/torch/512x3072x768", torch.nn.Identity(), a,
                  lambda m, x: x @ w.t()))

    pattern = re.compile(args.filter) if args.filter else None
    results = []
    with torch.no_grad():
        for name, module, x, call in cases:
            if pattern and not pattern.search(name):
                continue
            run = (lambda: call(module, x)) if call else (lambda: module(x))
            run()
            # Iterations per repetition so one repetition lasts at least min_time.
            t0 = time.perf_counter()
            run()
            once = max(time.perf_counter() - t0, 1e-7)
            iters = max(1, int(args.min_time / once))
            times = []
            for _ in range(args.repetitions):
                c0 = time.process_time()
                for _ in range(iters):
                    run()
                times.append((time.process_time() - c0) / iters)
            median = statistics.median(times)
            for agg, value in (("median", median), ("mean", statistics.mean(times))):
                results.append({
                    "name": f"{name}_{agg}", "run_name": name, "run_type": "aggregate",
                    "aggregate_name": agg, "repetitions": args.repetitions,
                    "iterations": iters, "real_time": value * 1e6, "cpu_time": value * 1e6,
                    "time_unit": "us"})
            extra = ""
            if name.startswith("layer/sgemm_calibration"):
                extra = f"  ({2 * 512 * 3072 * 768 / median * 1e-9:.1f} GFLOP/s)"
            print(f"{name:45s} {median * 1e3:10.3f} ms (median of {args.repetitions}){extra}")

    doc = {"context": {"library": "torch " + torch.__version__, "threads": 1,
                       "host_name": platform.node(), "timer": "process CPU time",
                       "date": time.strftime("%Y-%m-%dT%H:%M:%S")},
           "benchmarks": results}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    torch_env.keep_freed_memory()
    sys.exit(main())
