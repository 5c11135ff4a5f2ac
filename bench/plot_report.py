#!/usr/bin/env python3
"""Turns the JSON files of one bench/report.sh run into summary.md and PNG plots.

    python3 bench/plot_report.py REPORT_DIR

Reads every *.json in REPORT_DIR written by the Google Benchmark programs (and the PyTorch
scripts, which use the same layout). Names are parsed as the hierarchy the programs use:
gemm/<impl>/<M>x<N>x<K>[/threads:N], fft/<impl>/<kind>/<shape>, layer/<Layer>/<impl>/<n>x<d>,
model/<name>/<impl>/... Medians are used where repetitions were run.
"""
import glob
import json
import math
import os
import re
import statistics
import sys

TIME_UNITS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
MIXERS = ["MLPMixerBlock", "SpatialGatingUnit", "FourierMixer", "ExternalAttention",
          "SynthesizerRandom", "SynthesizerDense", "SelfAttention"]


def load_runs(report_dir):
    """name -> {'ms': median real time per iteration in ms, 'cpu_ms', counters...}"""
    runs, contexts = {}, {}
    for path in sorted(glob.glob(os.path.join(report_dir, "*.json"))):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"plot_report: skipping {path}: {e}", file=sys.stderr)
            continue
        if not isinstance(doc, dict) or "benchmarks" not in doc:
            continue
        contexts[os.path.basename(path)] = doc.get("context", {})
        per_name = {}
        for b in doc["benchmarks"]:
            name = b.get("run_name", b.get("name", ""))
            name = re.sub(r"/(real_time|process_time|manual_time)$", "", name)
            name = re.sub(r"/(real_time|process_time|manual_time)(?=/)", "", name)
            kind = b.get("run_type", "iteration")
            agg = b.get("aggregate_name", "")
            if kind == "aggregate" and agg != "median":
                continue
            if b.get("error_occurred"):
                continue
            scale = TIME_UNITS.get(b.get("time_unit", "ns"), 1e-6)
            entry = {k: v for k, v in b.items() if isinstance(v, (int, float))}
            entry["ms"] = b["real_time"] * scale
            entry["cpu_ms"] = b.get("cpu_time", b["real_time"]) * scale
            entry["aggregate"] = kind == "aggregate"
            per_name.setdefault(name, []).append(entry)
        for name, entries in per_name.items():
            medians = [e for e in entries if e["aggregate"]]
            if medians:
                runs[name] = medians[0]
            else:  # no repetitions: median of the iterations we have
                runs[name] = dict(entries[0])
                runs[name]["ms"] = statistics.median(e["ms"] for e in entries)
                runs[name]["cpu_ms"] = statistics.median(e["cpu_ms"] for e in entries)
    return runs, contexts


def time_of(run):
    # Single-thread rows are timed by CPU time of the benchmark thread where the program asked
    # for it; the PyTorch script reports both. Use the smaller: both measure the same work and
    # the larger one contains time other processes took on this shared machine.
    return min(run["ms"], run["cpu_ms"]) if run["cpu_ms"] > 0 else run["ms"]


def parse_layer(runs):
    """(layer, impl, n, d) -> ms for layer/<Layer>/<impl>/<n>x<d>"""
    out = {}
    for name, run in runs.items():
        m = re.fullmatch(r"layer/([A-Za-z0-9_]+)/([a-z_0-9]+)/(\d+)x(\d+)", name)
        if m:
            out[(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))] = (time_of(run), run)
        m = re.fullmatch(r"fft/tokenmix/mix/(\d+)x(\d+)", name)
        if m and ("FourierMixer", "tokenmix", int(m.group(1)), int(m.group(2))) not in out:
            out[("FourierMixer", "tokenmix", int(m.group(1)), int(m.group(2)))] = (time_of(run), run)
    return out


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def crossover_table(layers, d):
    lines = [f"| mixer | crossover n (cheaper than SelfAttention from) | ratio at largest common n |",
             "|---|---|---|"]
    attention = {n: t for (l, i, n, dd), (t, _) in layers.items()
                 if l == "SelfAttention" and i == "tokenmix" and dd == d}
    for mixer in MIXERS[:-1]:
        mine = {n: t for (l, i, n, dd), (t, _) in layers.items()
                if l == mixer and i == "tokenmix" and dd == d}
        common = sorted(set(mine) & set(attention))
        if not common:
            lines.append(f"| {mixer} | not measured | - |")
            continue
        cross = None
        for idx, n in enumerate(common):  # first n from which the mixer stays cheaper
            if all(mine[m] < attention[m] for m in common[idx:]):
                cross = n
                break
        if cross is None:
            text = f"never up to n={common[-1]}"
        elif cross == common[0]:
            text = f"<= {cross} (already at the smallest n measured)"
        else:
            text = str(cross)
        last = common[-1]
        lines.append(f"| {mixer} | {text} | {attention[last] / mine[last]:.2f}x at n={last} |")
    return lines


def torch_ratio_table(layers):
    lines = ["| layer | n x d | tokenmix ms | PyTorch ms | speed-up |", "|---|---|---|---|---|"]
    keys = sorted({(l, n, d) for (l, i, n, d) in layers if i == "torch"})
    for l, n, d in keys:
        ours = layers.get((l, "tokenmix", n, d))
        theirs = layers.get((l, "torch", n, d))
        if ours and theirs:
            lines.append(f"| {l} | {n}x{d} | {fmt(ours[0])} | {fmt(theirs[0])} | "
                         f"{theirs[0] / ours[0]:.2f}x |")
    return lines


def gemm_tables(runs):
    data = {}
    for name, run in runs.items():
        m = re.fullmatch(r"gemm/([a-z_0-9]+)/(\d+)x(\d+)x(\d+)(?:/threads:(\d+))?", name)
        if m and "GFLOPS" in run:
            impl, shape, threads = m.group(1), f"{m.group(2)}x{m.group(3)}x{m.group(4)}", int(m.group(5) or 1)
            data[(impl, shape, threads)] = run["GFLOPS"] / 1e9 if run["GFLOPS"] > 1e6 else run["GFLOPS"]
    shapes = sorted({s for (_, s, _) in data}, key=lambda s: [int(v) for v in s.split("x")])
    impls = [i for i in ("tokenmix", "onednn", "openblas", "eigen") if any(k[0] == i for k in data)]
    lines = ["| M x N x K | " + " | ".join(impls) + " | tokenmix/oneDNN | tokenmix/Eigen |",
             "|---|" + "---|" * (len(impls) + 2)]
    ratios_dnnl, ratios_eigen = [], []
    for s in shapes:
        row = [data.get((i, s, 1)) for i in impls]
        t, o, e = data.get(("tokenmix", s, 1)), data.get(("onednn", s, 1)), data.get(("eigen", s, 1))
        rd = t / o if t and o else None
        re_ = t / e if t and e else None
        if rd: ratios_dnnl.append(rd)
        if re_: ratios_eigen.append(re_)
        lines.append(f"| {s} | " + " | ".join(fmt(v, 4) for v in row) + f" | {fmt(rd)} | {fmt(re_)} |")
    summary = {
        "median tokenmix/oneDNN (1 thread)": statistics.median(ratios_dnnl) if ratios_dnnl else None,
        "median tokenmix/Eigen (1 thread)": statistics.median(ratios_eigen) if ratios_eigen else None,
    }
    return lines, summary, data, shapes, impls


def fft_table(runs):
    shapes = {}
    for name, run in runs.items():
        m = re.fullmatch(r"fft/([a-z_0-9]+)/mix/(.+)", name)
        if m:
            shapes.setdefault(m.group(2), {})[m.group(1)] = time_of(run)
    lines = ["| n x d | tokenmix FourierMixer ms | FFTW r2c 2D ms | FFTW c2c 2D ms | Eigen FFT ms | tokenmix/FFTW r2c | Eigen/tokenmix |",
             "|---|---|---|---|---|---|---|"]
    for shape in sorted(shapes, key=lambda s: [int(v) for v in re.findall(r"\d+", s)]):
        v = shapes[shape]
        t, f, c, e = v.get("tokenmix"), v.get("fftw_r2c_2d"), v.get("fftw_c2c_2d"), v.get("eigen")
        lines.append(f"| {shape} | {fmt(t)} | {fmt(f)} | {fmt(c)} | {fmt(e)} | "
                     f"{fmt(t / f if t and f else None)} | {fmt(e / t if t and e else None)} |")
    return lines, shapes


def model_table(runs):
    models = {}
    for name, run in runs.items():
        m = re.fullmatch(r"model/([A-Za-z0-9_.\-]+)/([a-z_0-9]+)/(.+)", name)
        if m:
            models[(m.group(1), m.group(2), m.group(3))] = (time_of(run), run)
    lines = ["| model | config | tokenmix ms | PyTorch ms | speed-up | FLOP-limit fraction |",
             "|---|---|---|---|---|---|"]
    for (model, impl, config), (t, run) in sorted(models.items()):
        if impl != "tokenmix":
            continue
        theirs = models.get((model, "torch", config))
        frac = run.get("flop_limit_fraction", run.get("%flop_limit"))
        lines.append(f"| {model} | {config} | {fmt(t)} | {fmt(theirs[0] if theirs else None)} | "
                     f"{fmt(theirs[0] / t if theirs else None)} | {fmt(frac)} |")
    return lines, models


def plots(report_dir, layers, gemm, fft_shapes, models, peak):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_report: matplotlib missing (python3-matplotlib); no plots", file=sys.stderr)
        return []
    made = []

    def save(fig, name):
        path = os.path.join(report_dir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(name)

    # 1 and 2: time and memory per sequence vs n at d=768.
    for d in (768, 256):
        fig, ax = plt.subplots(figsize=(8, 5.5))
        any_line = False
        for mixer in MIXERS:
            pts = sorted((n, t) for (l, i, n, dd), (t, _) in layers.items()
                         if l == mixer and i == "tokenmix" and dd == d)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=mixer)
                any_line = True
        if not any_line:
            plt.close(fig)
            continue
        ns = [64, 8192]
        base = 0.02
        for label, f, style in (("O(n)", lambda n: n, ":"), ("O(n log n)", lambda n: n * math.log2(n), "-."),
                                ("O(n²)", lambda n: n * n, "--")):
            ax.plot(ns, [base * f(n) / f(64) for n in ns], "k" + style, alpha=0.35, label=f"slope {label}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n (tokens)")
        ax.set_ylabel("time per sequence (ms, log scale)")
        ax.set_title(f"Token mixers vs self-attention, d = {d}, one thread")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, f"mixers_time_d{d}.png")

        fig, ax = plt.subplots(figsize=(8, 5.5))
        any_line = False
        for mixer in MIXERS:
            pts = sorted((n, run.get("peak_heap_bytes")) for (l, i, n, dd), (t, run) in layers.items()
                         if l == mixer and i == "tokenmix" and dd == d and run.get("peak_heap_bytes"))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] / 2**20 for p in pts], marker="o", label=mixer)
                any_line = True
        if any_line:
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length n (tokens)")
            ax.set_ylabel("peak heap during a cold forward (MiB, log scale)")
            ax.set_title(f"Peak memory per sequence, d = {d}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            save(fig, f"mixers_memory_d{d}.png")
        else:
            plt.close(fig)

    # 3: GEMM GFLOP/s vs size.
    data, shapes, impls = gemm
    if data:
        fig, ax = plt.subplots(figsize=(10, 5.5))
        xs = range(len(shapes))
        for impl in impls:
            ax.plot(list(xs), [data.get((impl, s, 1), float("nan")) for s in shapes], marker="o", label=impl)
        if peak:
            ax.axhline(peak, color="k", linestyle="--", alpha=0.6, label=f"measured FMA peak ({peak:.0f})")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(shapes, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("shape M x N x K")
        ax.set_ylabel("GFLOP/s (fp32, one thread)")
        ax.set_title("GEMM throughput")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "gemm_gflops.png")

    # 4: FourierMixer vs FFTW and Eigen.
    if fft_shapes:
        order = sorted(fft_shapes, key=lambda s: [int(v) for v in re.findall(r"\d+", s)])
        fig, ax = plt.subplots(figsize=(9, 5.5))
        width = 0.2
        for k, (impl, label) in enumerate((("tokenmix", "tokenmix FourierMixer (full Re FFT2)"),
                                           ("fftw_r2c_2d", "FFTW r2c 2D (half output)"),
                                           ("fftw_c2c_2d", "FFTW complex 2D"), ("eigen", "Eigen FFT rows+cols"))):
            vals = [fft_shapes[s].get(impl, float("nan")) for s in order]
            ax.bar([i + (k - 1.5) * width for i in range(len(order))], vals, width, label=label)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_xlabel("n x d")
        ax.set_ylabel("time (ms, log scale, one thread)")
        ax.set_title("FNet mixing Re(FFT2(X))")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
        save(fig, "fourier_mixer.png")

    # 5: models vs PyTorch.
    if models:
        keys = sorted({(m, c) for (m, i, c) in models if i == "tokenmix"})
        if keys:
            fig, ax = plt.subplots(figsize=(10, 5.5))
            width = 0.4
            ours = [models[(m, "tokenmix", c)][0] for m, c in keys]
            theirs = [models.get((m, "torch", c), (float("nan"),))[0] for m, c in keys]
            ax.bar([i - width / 2 for i in range(len(keys))], ours, width, label="tokenmix")
            ax.bar([i + width / 2 for i in range(len(keys))], theirs, width, label="PyTorch 1.13 eager")
            ax.set_xticks(range(len(keys)))
            ax.set_xticklabels([f"{m}\n{c}" for m, c in keys], rotation=45, ha="right", fontsize=7)
            ax.set_yscale("log")
            ax.set_ylabel("time per batch (ms, log scale)")
            ax.set_title("Model forward time")
            ax.grid(True, axis="y", which="both", alpha=0.3)
            ax.legend(fontsize=8)
            save(fig, "models.png")
    return made


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_dir = sys.argv[1]
    runs, contexts = load_runs(report_dir)
    if not runs:
        print(f"plot_report: no benchmark results in {report_dir}", file=sys.stderr)
        return 1
    layers = parse_layer(runs)
    gemm_lines, gemm_summary, gdata, gshapes, gimpls = gemm_tables(runs)
    fft_lines, fft_shapes = fft_table(runs)
    model_lines, models = model_table(runs)
    peak = None
    for ctx in contexts.values():
        if "fma_peak_gflops_f32_1core" in ctx:
            peak = float(ctx["fma_peak_gflops_f32_1core"])
            break
    made = plots(report_dir, layers, (gdata, gshapes, gimpls), fft_shapes, models, peak)

    host = next(iter(contexts.values()), {})
    out = ["# tokenmix benchmark report", "",
           f"Machine: {host.get('host_name', '?')}, {host.get('num_cpus', '?')} CPUs at "
           f"{host.get('mhz_per_cpu', '?')} MHz; tokenmix kernels: {host.get('tokenmix_isa', '?')}; "
           f"measured fp32 FMA peak (1 core): {fmt(peak, 4)} GFLOP/s. All numbers from this one run; "
           "times are medians.", ""]
    for d in (768, 256):
        out += [f"## Where each mixer becomes cheaper than SelfAttention (d = {d})", "",
                "Rows time each layer as a whole: MLPMixerBlock includes its channel MLP and "
                "norms, SelfAttention its Q/K/V/output projections.", ""]
        out += crossover_table(layers, d) + [""]
    out += ["## Layers vs PyTorch (one thread)", ""] + torch_ratio_table(layers) + [""]
    out += ["## GEMM, GFLOP/s (one thread)", ""]
    out += [f"- {k}: {fmt(v)}" for k, v in gemm_summary.items()] + [""] + gemm_lines + [""]
    out += ["## FourierMixer vs FFTW and Eigen (one thread)", ""] + fft_lines + [""]
    out += ["## Models", ""] + model_lines + [""]
    out += ["## Plots", ""] + [f"![{m}]({m})" for m in made] + [""]
    with open(os.path.join(report_dir, "summary.md"), "w") as f:
        f.write("\n".join(out))
    print(f"plot_report: wrote {os.path.join(report_dir, 'summary.md')} and {len(made)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
