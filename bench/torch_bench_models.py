#!/usr/bin/env python3
"""Times the issue-7 models in PyTorch (eager, float32, no_grad) and, given the tokenmix
benchmark program, the same rows in tokenmix side by side in one run, then prints
tokenmix's speed-up over PyTorch and its fraction of the FLOP limit.

    /usr/bin/python3 bench/torch_bench_models.py [--tokenmix build/bench/tokenmix_bench_models]
        [--repetitions 5] [--filter RE] [--json out.json]

Models: mixer_s16_224, gmlp_s16_224, resmlp_12_224, vit_small_patch16_224 (batch 1 and 8,
224x224) and FNet-base at n = 512, 1 and 2 threads. timm is not needed: the models are the
re-implementations of tests/reference/make_model_fixtures.py (the fixtures' reference).
Each row alternates the two implementations (PyTorch first, then the tokenmix row through
--benchmark_filter) so both see the same machine load; medians of the repetitions are
compared. Single-thread rows compare CPU time (PyTorch's whole process, tokenmix's benchmark
thread), 2-thread rows wall time.

PyTorch runs in one worker process per thread count, started with its thread environment
(TORCH_ENV below) because OpenBLAS sizes its pool when it loads: Debian's torch calls
OpenBLAS for its GEMMs, and torch.set_num_threads does not reach that pool. Before the
workers, the "1 thread" rows ran OpenBLAS on two threads and timed only the Python thread
(a Linear 384 -> 1536 on 196 rows: 0.81 ms thread CPU, 1.57 ms process CPU), and the 2-thread
rows ran torch's two OpenMP threads beside OpenBLAS's two spinning threads (4.3x slower than
one thread). Exits 0 with a message when torch is missing.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from torch_env import MALLOC_TUNABLES

MODELS = ["mixer_s16_224", "gmlp_s16_224", "resmlp_12_224", "vit_small_patch16_224",
          "fnet-base_n512"]


def build(ref, torch, name):
    if name == "mixer_s16_224":
        return ref.ImageModel("mixer", 224, 16, 512, 8, 1000, mlp_ratio=(0.5, 4.0))
    if name == "gmlp_s16_224":
        return ref.ImageModel("gmlp", 224, 16, 256, 30, 1000, mlp_ratio=6)
    if name == "resmlp_12_224":
        return ref.ImageModel("resmlp", 224, 16, 384, 12, 1000, mlp_ratio=4)
    if name == "vit_small_patch16_224":
        return ref.ImageModel("vit", 224, 16, 384, 12, 1000, mlp_ratio=4, heads=6, timm_vit=True)
    cfg = dict(vocab_size=32000, hidden_size=768, num_hidden_layers=12, intermediate_size=3072,
               hidden_act="gelu_new", max_position_embeddings=512, type_vocab_size=4,
               layer_norm_eps=1e-12, pad_token_id=3)
    return ref.FNetModel(cfg)


# The thread environment of each PyTorch worker, set before torch (and OpenBLAS) load; each
# worker also calls torch.set_num_threads. Chosen by measurement (mixer_s16_224, batch 1, quiet
# machine, ms per forward): one thread, OpenBLAS at 1 and OMP_NUM_THREADS unset, 104-111
# (process CPU = wall: nothing else runs), where also setting OMP_NUM_THREADS=1 made torch
# slower (140); two threads, OpenBLAS at 2 with OpenMP's passive wait policy, 101, where
# OpenBLAS at 1 gave 107 and the default (spinning) policy 187.
# Both also keep freed memory in the process (torch_env.py says why); tokenmix's benchmark
# process, which allocates nothing per forward, runs with glibc's defaults.
TORCH_ENV = {
    1: {"OPENBLAS_NUM_THREADS": "1", "GLIBC_TUNABLES": MALLOC_TUNABLES},
    2: {"OPENBLAS_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
        "GLIBC_TUNABLES": MALLOC_TUNABLES},
}


def time_torch(torch, model, x, threads, repetitions, min_time):
    torch.set_num_threads(threads)
    # One thread: CPU time of the whole process, so any thread a library starts is billed.
    clock = time.process_time if threads == 1 else time.perf_counter
    with torch.no_grad():
        model(x)
        samples = []
        for _ in range(repetitions):
            iters, start = 0, clock()
            while True:
                model(x)
                iters += 1
                elapsed = clock() - start
                if elapsed >= min_time:
                    break
            samples.append(elapsed / iters)
    return statistics.median(samples)


def worker(threads):
    """Times PyTorch rows for the parent: one JSON request per stdin line, one reply each."""
    import torch
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
    import make_model_fixtures as ref  # noqa: E402  (sets float64 as default dtype)

    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(threads)
    models = {}
    for line in sys.stdin:
        req = json.loads(line)
        name, batch = req["name"], req["batch"]
        if name not in models:
            models.clear()  # one model alive at a time: FNet-base alone is 330 MB
            torch.manual_seed(0)
            models[name] = build(ref, torch, name).float().eval()
        if name.startswith("fnet"):
            x = torch.randint(0, 32000, (batch, 512))
        else:
            x = torch.randn(batch, 3, 224, 224)
        seconds = time_torch(torch, models[name], x, threads, req["repetitions"],
                             req["min_time"])
        print(json.dumps(dict(seconds=seconds, threads=torch.get_num_threads())), flush=True)
    return 0


class TorchWorker:
    def __init__(self, threads):
        env = dict(os.environ, **TORCH_ENV[threads])
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", str(threads)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def time(self, name, batch, repetitions, min_time):
        self.proc.stdin.write(json.dumps(dict(name=name, batch=batch, repetitions=repetitions,
                                              min_time=min_time)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker for {name} batch {batch} exited "
                               f"(status {self.proc.wait()})")
        return json.loads(line)["seconds"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def time_tokenmix(binary, name, batch, threads, repetitions, min_time):
    row = f"models/tokenmix/{name}/batch:{batch}" + (f"/threads:{threads}" if threads > 1 else "")
    out = subprocess.run(
        [binary, f"--benchmark_filter=^{row}(/real_time)?$",
         f"--benchmark_repetitions={repetitions}", f"--benchmark_min_time={min_time}",
         "--benchmark_report_aggregates_only=true", "--benchmark_format=json"],
        check=True, capture_output=True, text=True).stdout
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            key = "cpu_time" if threads == 1 else "real_time"
            scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[b["time_unit"]]
            frac = b.get("flop_limit_frac", b.get("%peak", float("nan")) / 100.0)
            return b[key] * scale, frac
    raise RuntimeError(f"no median row for {row}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenmix", default="", help="path of tokenmix_bench_models")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--filter", default="", help="regex on '<model>/batch:<B>/threads:<T>'")
    parser.add_argument("--json", default="", help="write the rows as JSON here")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    try:
        import torch
    except ImportError:
        print("torch_bench_models: torch is not installed; skipping the PyTorch rows "
              "(use /usr/bin/python3 on Debian with python3-torch)")
        return 0
    workers = {}
    rows = []
    print(f"{'row':48s} {'torch ms':>10s} {'tokenmix ms':>12s} {'speed-up':>9s} {'%FLOP limit':>12s}")
    for name in MODELS:
        for batch in (1, 8):
            for threads in (1, 2):
                tag = f"{name}/batch:{batch}/threads:{threads}"
                if args.filter and not re.search(args.filter, tag):
                    continue
                if threads not in workers:
                    workers[threads] = TorchWorker(threads)
                t_torch = workers[threads].time(name, batch, args.repetitions, args.min_time)
                t_tm, frac = (float("nan"), float("nan"))
                if args.tokenmix:
                    t_tm, frac = time_tokenmix(args.tokenmix, name, batch, threads,
                                               args.repetitions, args.min_time)
                row = dict(row=tag, torch_s=t_torch, tokenmix_s=t_tm, speedup=t_torch / t_tm,
                           flop_limit_fraction=frac)
                rows.append(row)
                print(f"{tag:48s} {t_torch * 1e3:10.2f} {t_tm * 1e3:12.2f} "
                      f"{t_torch / t_tm:8.2f}x {frac * 100:11.1f}%", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch_version=torch.__version__, torch_env=TORCH_ENV, rows=rows), f,
                      indent=1)
    for w in workers.values():
        w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
