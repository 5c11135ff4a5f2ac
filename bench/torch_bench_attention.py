#!/usr/bin/python3
"""PyTorch counterpart of bench/bench_attention.cpp: the same mixers, shapes and names.

    /usr/bin/python3 bench/torch_bench_attention.py OUT.json [--repetitions 5]
        [--min-time 0.3] [--filter REGEX] [--compare tokenmix.json]

One thread (torch.set_num_threads(1)), fp32, eval mode under torch.inference_mode(), batch 1.
d = 768, n = 64 .. 8192 (--filter to trim). SelfAttention is torch.nn.MultiheadAttention(d,
12, batch_first=True) itself called as mha(x, x, x, need_weights=False), its fastest form;
ExternalAttention (S=64) and the Synthesizers (one head) are the reference modules of
tests/reference/make_attention_fixtures.py; the token MLP, SGU and Fourier mixing are the
timm / HuggingFace forms written out below. Each repetition runs the layer repeatedly
for at least --min-time seconds and records the mean wall and CPU time per call; the JSON follows
Google Benchmark's layout (per-repetition runs plus mean/median/stddev aggregates, times in
ms) with names layer/<Layer>/torch/<n>x<d>, so it joins with tokenmix's output.
--compare prints torch-median / tokenmix-median speed-ups, on wall and on CPU time, for the
names both files have (CPU time is the fairer one on a loaded, shared machine).
Exits 0 with a message when torch is not installed.
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

if __name__ == "__main__":
    torch_env.keep_freed_memory()

# One thread for torch's own pool and for the BLAS under it (Debian's torch calls OpenBLAS,
# which would otherwise start a thread per core), set before torch loads it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    print("torch_bench_attention: PyTorch is not installed; skipping")
    sys.exit(0)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from make_attention_fixtures import (ExternalAttention, SynthesizerDense,  # noqa: E402
                                     SynthesizerRandom)

LENGTHS = [64, 128, 256, 512, 1024, 2048, 4096, 8192]
D = 768


class TokenMlp(torch.nn.Module):
    """MixerBlock's token-mixing half (timm): x + mlp_tokens(norm1(x)^T)^T."""

    def __init__(self, n, d):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(d, eps=1e-6)
        self.fc1 = torch.nn.Linear(n, d // 2)
        self.fc2 = torch.nn.Linear(d // 2, n)

    def forward(self, x):
        t = self.norm1(x).transpose(1, 2)
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(t))).transpose(1, 2)


class SpatialGatingUnit(torch.nn.Module):
    """timm's SpatialGatingUnit: input 2d wide, u * proj_tokens(LN(v))."""

    def __init__(self, n, d):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.proj = torch.nn.Linear(n, n)

    def forward(self, x):
        u, v = x.chunk(2, dim=-1)
        v = self.proj(self.norm(v).transpose(-1, -2))
        return u * v.transpose(-1, -2)


class Fourier(torch.nn.Module):
    """FNet's mixing as HuggingFace writes it: fft over channels, then tokens, real part."""

    def forward(self, x):
        return torch.fft.fft(torch.fft.fft(x, dim=-1), dim=-2).real


def cases():
    """(layer name, n, d, module factory, input width, call), as bench_attention.cpp."""
    d = D
    for n in LENGTHS:
        yield ("MixerTokenMLP", n, d, lambda n=n: TokenMlp(n, d), d, lambda m, x: m(x))
        yield ("SpatialGatingUnit", n, d, lambda n=n: SpatialGatingUnit(n, d), 2 * d,
               lambda m, x: m(x))
        yield ("FourierMixer", n, d, Fourier, d, lambda m, x: m(x))
        yield ("ExternalAttention", n, d, lambda: ExternalAttention(d, 64, 1), d,
               lambda m, x: m(x))
        yield ("SynthesizerRandom", n, d, lambda n=n: SynthesizerRandom(n, d, 1), d,
               lambda m, x: m(x))
        yield ("SynthesizerDense", n, d, lambda n=n: SynthesizerDense(n, d, 1), d,
               lambda m, x: m(x))
        yield ("SelfAttention", n, d,
               lambda: torch.nn.MultiheadAttention(d, 12, bias=True, batch_first=True), d,
               lambda m, x: m(x, x, x, need_weights=False)[0])


def measure(module, call, x, repetitions, min_time):
    call(module, x)  # warm-up: first-call allocations and kernel selection
    runs = []
    for _ in range(repetitions):
        iterations = 0
        start, start_cpu = time.perf_counter(), time.process_time()
        while True:
            call(module, x)
            iterations += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        cpu = time.process_time() - start_cpu
        runs.append((elapsed / iterations, cpu / iterations, iterations))
    return runs


def run_entry(name, rep, wall, cpu, iterations):
    return {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 0,
            "repetition_index": rep, "threads": 1, "iterations": iterations,
            "real_time": wall * 1e3, "cpu_time": cpu * 1e3, "time_unit": "ms"}


def aggregate(name, kind, fn, runs):
    return {"name": f"{name}_{kind}", "run_name": name, "run_type": "aggregate",
            "repetitions": len(runs), "threads": 1, "aggregate_name": kind,
            "aggregate_unit": "time", "iterations": len(runs),
            "real_time": fn([r[0] * 1e3 for r in runs]),
            "cpu_time": fn([r[1] * 1e3 for r in runs]), "time_unit": "ms"}


def medians(doc, key):
    out = {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median":
            scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
            out[b["run_name"]] = b[key] * scale
    return out


def compare(torch_doc, tokenmix_path):
    """Speed-ups on wall time and on CPU time (the latter is robust to a loaded machine)."""
    with open(tokenmix_path) as f:
        ours_doc = json.load(f)
    print(f"{'benchmark (medians, ms)':42s} {'tokenmix':>9s} {'torch':>9s} {'x wall':>7s}"
          f" {'tokenmix':>9s} {'torch':>9s} {'x cpu':>7s}")
    ours_w, ours_c = medians(ours_doc, "real_time"), medians(ours_doc, "cpu_time")
    theirs_w, theirs_c = medians(torch_doc, "real_time"), medians(torch_doc, "cpu_time")
    for name in theirs_w:
        key = name.replace("/torch/", "/tokenmix/")
        if key in ours_w:
            label = key.replace("/tokenmix", "").replace("/real_time", "")
            print(f"{label:42s} {ours_w[key]:9.3f} {theirs_w[name]:9.3f}"
                  f" {theirs_w[name] / ours_w[key]:6.2f}x {ours_c[key]:9.3f}"
                  f" {theirs_c[name]:9.3f} {theirs_c[name] / ours_c[key]:6.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.3)
    parser.add_argument("--filter", default="", help="regex on benchmark names")
    parser.add_argument("--compare", help="tokenmix JSON (Google Benchmark) to compare with")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    pattern = re.compile(args.filter)
    benchmarks = []
    with torch.inference_mode():
        for layer, n, d, make, width, call in cases():
            name = f"layer/{layer}/torch/{n}x{d}"
            if not pattern.search(name):
                continue
            module = make().eval()
            x = torch.randn(1, n, width)
            runs = measure(module, call, x, args.repetitions, args.min_time)
            for rep, (wall, cpu, iters) in enumerate(runs):
                benchmarks.append(run_entry(name, rep, wall, cpu, iters))
            benchmarks.append(aggregate(name, "mean", statistics.mean, runs))
            benchmarks.append(aggregate(name, "median", statistics.median, runs))
            benchmarks.append(aggregate(
                name, "stddev", lambda v: statistics.stdev(v) if len(v) > 1 else 0.0, runs))
            print(f"{name}: median {statistics.median([r[0] for r in runs]) * 1e3:.3f} ms wall,"
                  f" {statistics.median([r[1] for r in runs]) * 1e3:.3f} ms cpu", flush=True)
            del module

    doc = {"context": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "host_name": platform.node(), "executable": sys.argv[0],
                       "library": f"torch {torch.__version__}", "num_cpus": os.cpu_count(),
                       "threads": torch.get_num_threads()},
           "benchmarks": benchmarks}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    if args.compare:
        compare(doc, args.compare)


if __name__ == "__main__":
    main()
