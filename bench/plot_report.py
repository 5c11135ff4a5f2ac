#!/usr/bin/env python3
"""Turns the JSON files of one bench/report.sh run into summary.md and PNG plots.

    /usr/bin/python3 bench/plot_report.py REPORT_DIR

Reads every *.json in REPORT_DIR: the Google Benchmark programs' output and the PyTorch
scripts' (same layout, except torch_bench_models.json, which holds side-by-side rows). Names
are parsed as the hierarchy the programs use: gemm/<impl>/<M>x<N>x<K>[/threads:N],
fft/<impl>/<kind>/<shape>, layer/<Layer>/<impl>/<n>x<d>, models/tokenmix/<model>/batch:<B>
[/threads:N]. Medians are used where repetitions were run. Whatever is missing (an anchor not
installed, a program that did not build, PyTorch or matplotlib absent) is skipped with a note
in summary.md; the script fails only when there are no results at all.
"""
import glob
import json
import math
import os
import re
import statistics
import sys

TIME_UNITS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
MIXERS = ["MixerTokenMLP", "SpatialGatingUnit", "FourierMixer", "ExternalAttention",
          "SynthesizerRandom", "SynthesizerDense", "SelfAttention"]
MIXER_LABELS = {
    "MixerTokenMLP": "MLP-Mixer token MLP",
    "SpatialGatingUnit": "gMLP SpatialGatingUnit",
    "FourierMixer": "FNet FourierMixer",
    "ExternalAttention": "ExternalAttention (S=64)",
    "SynthesizerRandom": "SynthesizerRandom",
    "SynthesizerDense": "SynthesizerDense",
    "SelfAttention": "SelfAttention (12 heads)",
}
MIXER_D = 768
GEMM_IMPLS = [("tokenmix", "tokenmix"), ("onednn", "oneDNN sgemm"), ("openblas", "OpenBLAS"),
              ("eigen", "Eigen 3.4 (-march=native)")]
FFT_IMPLS = [("tokenmix", "tokenmix FourierMixer (full Re FFT2)"),
             ("fftw_r2c_2d", "FFTW r2c 2D, MEASURE (half spectrum only)"),
             ("fftw_c2c_2d", "FFTW complex 2D, MEASURE"), ("eigen", "Eigen FFT (kissfft) rows+cols")]


def load(report_dir):
    """Returns (runs: name -> median row, contexts: file -> context, model_rows: list)."""
    runs, contexts, model_rows = {}, {}, []
    for path in sorted(glob.glob(os.path.join(report_dir, "*.json"))):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"plot_report: skipping {path}: {e}", file=sys.stderr)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("rows"), list):
            model_rows += [r for r in doc["rows"] if isinstance(r, dict)]
            contexts[os.path.basename(path)] = {k: v for k, v in doc.items() if k != "rows"}
            continue
        if not isinstance(doc, dict) or "benchmarks" not in doc:
            continue
        contexts[os.path.basename(path)] = doc.get("context", {})
        per_name = {}
        for b in doc["benchmarks"]:
            name = b.get("run_name", b.get("name", ""))
            name = re.sub(r"/(real_time|process_time|manual_time)(?=/|$)", "", name)
            kind = b.get("run_type", "iteration")
            if kind == "aggregate" and b.get("aggregate_name", "") != "median":
                continue
            if b.get("error_occurred") or "real_time" not in b:
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
            else:  # one repetition: median over what there is
                row = dict(entries[0])
                for key in ("ms", "cpu_ms"):
                    row[key] = statistics.median(e[key] for e in entries)
                runs[name] = row
    return runs, contexts, model_rows


def time_of(run, threads=1):
    # Single-thread rows: the smaller of wall and CPU time. Both measure the same work; the
    # larger contains time other processes took on this shared machine. Multi-thread rows are
    # wall time (their CPU time sums the threads).
    if threads > 1:
        return run["ms"]
    return min(run["ms"], run["cpu_ms"]) if run.get("cpu_ms", 0) > 0 else run["ms"]


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "-"
    if abs(x) >= 10 ** digits:  # no exponent notation: 1234 ms, not 1.23e+03
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def times(x):
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"


def ratio(a, b):
    return a / b if a and b else None


def shape_key(s):
    return [int(v) for v in re.findall(r"\d+", s)]


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


# ------------------------------------------------------------------------------------------
# Tables


def parse_layers(runs):
    """(layer, impl, n, d) -> (ms, run) for layer/<Layer>/<impl>/<n>x<d>."""
    out = {}
    for name, run in runs.items():
        m = re.fullmatch(r"layer/([A-Za-z0-9_]+)/([a-z_0-9]+)/(\d+)x(\d+)", name)
        if m:
            out[(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))] = (time_of(run), run)
    return out


def mixer_series(layers, mixer, impl="tokenmix", d=MIXER_D):
    # tokenmix rows from the mixer program only (it alone writes the heap counters), so every
    # mixer is seen at the same n; bench_layers times the SGU at n = 196 as well.
    return {n: v for (l, i, n, dd), v in layers.items() if l == mixer and i == impl and dd == d
            and (impl != "tokenmix" or "total_heap_bytes" in v[1])}


def crossover_table(layers, notes):
    attention = {n: t for n, (t, _) in mixer_series(layers, "SelfAttention").items()}
    if not attention:
        notes.append("SelfAttention rows missing (tokenmix_bench_attention not run): no "
                     "crossover table.")
        return []
    lines = ["| mixer | cheaper than SelfAttention from n = | SelfAttention time / mixer time, "
             "by n | growth exponent over the last two octaves (1 = O(n), 2 = O(n²)) |",
             "|---|---|---|---|"]
    for mixer in MIXERS[:-1]:
        mine = {n: t for n, (t, _) in mixer_series(layers, mixer).items()}
        common = sorted(set(mine) & set(attention))
        if not common:
            lines.append(f"| {MIXER_LABELS[mixer]} | not measured | - | - |")
            continue
        cross = None
        for idx, n in enumerate(common):  # first n from which the mixer stays cheaper
            if all(mine[m] < attention[m] for m in common[idx:]):
                cross = n
                break
        if cross is None:
            text = f"never (up to n = {common[-1]})"
        elif cross == common[0]:
            text = f"every n measured ({common[0]} - {common[-1]})"
        else:
            text = f"{cross}"
        ratios = ", ".join(f"{n}: {times(attention[n] / mine[n])}" for n in common)
        ns = sorted(mine)
        slope = (math.log(mine[ns[-1]] / mine[ns[-3]]) / math.log(ns[-1] / ns[-3])
                 if len(ns) >= 3 else None)
        lines.append(f"| {MIXER_LABELS[mixer]} | {text} | {ratios} | {fmt(slope, 2)} |")
    return lines


def torch_layer_table(layers):
    keys = sorted({(l, n, d) for (l, i, n, d) in layers if i == "torch"},
                  key=lambda k: (k[0], k[2], k[1]))
    lines = ["| layer | n x d | tokenmix ms | PyTorch ms | PyTorch / tokenmix |",
             "|---|---|---|---|---|"]
    for l, n, d in keys:
        ours, theirs = layers.get((l, "tokenmix", n, d)), layers.get((l, "torch", n, d))
        if ours and theirs:
            lines.append(f"| {l} | {n}x{d} | {fmt(ours[0])} | {fmt(theirs[0])} | "
                         f"{theirs[0] / ours[0]:.2f}x |")
    return lines if len(lines) > 2 else []


def gemm_data(runs):
    """(impl, 'MxNxK', threads) -> GFLOP/s."""
    data = {}
    for name, run in runs.items():
        m = re.fullmatch(r"gemm/([a-z_0-9]+)/(\d+x\d+x\d+)(?:/threads:(\d+))?", name)
        if m and "GFLOPS" in run:
            g = run["GFLOPS"]
            data[(m.group(1), m.group(2), int(m.group(3) or 1))] = g / 1e9 if g > 1e6 else g
    return data


def gemm_section(data, peak, notes):
    if not data:
        notes.append("GEMM rows missing (tokenmix_bench_gemm not built or not run).")
        return [], {}
    shapes = sorted({s for (_, s, _) in data}, key=lambda s: math.prod(shape_key(s)))
    present = [(i, label) for i, label in GEMM_IMPLS if any(k[0] == i for k in data)]
    for impl, label in GEMM_IMPLS[1:]:
        if impl not in dict(present):
            notes.append(f"GEMM anchor {label} not measured (not installed or not built): "
                         "its column and ratio are left out.")
    out, headline = [], {}
    for threads in sorted({t for (_, _, t) in data}):
        cols = [label for _, label in present]
        lines = [f"| M x N x K | " + " | ".join(cols) + " | tokenmix / oneDNN | "
                 "tokenmix / Eigen | tokenmix %peak |", "|---|" + "---|" * (len(cols) + 3)]
        r_dnnl, r_eigen = [], []
        for s in shapes:
            t = data.get(("tokenmix", s, threads))
            o, e = data.get(("onednn", s, threads)), data.get(("eigen", s, threads))
            if all(data.get((i, s, threads)) is None for i, _ in present):
                continue
            rd, re_ = ratio(t, o), ratio(t, e)
            r_dnnl += [rd] if rd else []
            r_eigen += [re_] if re_ else []
            pct = t / (peak * threads) * 100 if t and peak else None
            lines.append(f"| {s} | " + " | ".join(fmt(data.get((i, s, threads)), 4)
                                                 for i, _ in present) +
                         f" | {fmt(rd)} | {fmt(re_)} | {fmt(pct)} |")
        head = f"GFLOP/s, {threads} thread{'s' if threads > 1 else ''}"
        out += [f"### {head}", ""] + lines + [""]
        timing = "CPU time" if threads == 1 else "wall time, sensitive to other load"
        nt = f"{threads} thread{'s' if threads > 1 else ''}"
        if r_dnnl:
            headline[f"tokenmix / oneDNN sgemm GFLOP/s, {nt} ({timing}): median "
                     f"over {len(r_dnnl)} shapes (min - max)"] = (
                f"{statistics.median(r_dnnl):.2f} ({min(r_dnnl):.2f} - {max(r_dnnl):.2f})")
        if r_eigen:
            headline[f"tokenmix / Eigen GFLOP/s, {nt}: median over "
                     f"{len(r_eigen)} shapes"] = f"{statistics.median(r_eigen):.2f}"
    return out, headline


def fft_data(runs):
    shapes = {}
    for name, run in runs.items():
        m = re.fullmatch(r"fft/([a-z_0-9]+)/mix/([0-9x]+)", name)
        if m:
            shapes.setdefault(m.group(2), {})[m.group(1)] = time_of(run)
    return shapes


def fft_section(shapes, notes):
    if not shapes:
        notes.append("FFT rows missing (tokenmix_bench_fft not built or not run).")
        return [], {}
    have = {impl for v in shapes.values() for impl in v}
    if "fftw_r2c_2d" not in have:
        notes.append("FFTW anchor not measured (libfftw3-dev missing): FourierMixer/FFTW ratio "
                     "skipped.")
    lines = ["| n x d (batch x n x d) | tokenmix ms | FFTW r2c 2D ms | FFTW c2c 2D ms | Eigen FFT ms"
             " | tokenmix / FFTW r2c | Eigen / tokenmix |", "|---|---|---|---|---|---|---|"]
    r_fftw, r_eigen = [], []
    for shape in sorted(shapes, key=lambda s: (math.prod(shape_key(s)), shape_key(s))):
        v = shapes[shape]
        t, f, c, e = v.get("tokenmix"), v.get("fftw_r2c_2d"), v.get("fftw_c2c_2d"), v.get("eigen")
        rf, re_ = ratio(t, f), ratio(e, t)
        r_fftw += [rf] if rf else []
        r_eigen += [re_] if re_ else []
        lines.append(f"| {shape} | {fmt(t)} | {fmt(f)} | {fmt(c)} | {fmt(e)} | {fmt(rf)} | "
                     f"{fmt(re_)} |")
    headline = {}
    if r_fftw:
        headline[f"FourierMixer / FFTW r2c 2D time: median over {len(r_fftw)} shapes "
                 "(min - max; < 1 is faster)"] = (
            f"{statistics.median(r_fftw):.2f} ({min(r_fftw):.2f} - {max(r_fftw):.2f})")
    if r_eigen:
        headline["Eigen FFT / FourierMixer time: median"] = f"{statistics.median(r_eigen):.1f}"
    return lines, headline


def model_data(runs, model_rows):
    """(model, batch, threads) -> {'tokenmix': ms, 'torch': ms, 'flop_limit': fraction}."""
    out = {}
    for r in model_rows:  # torch_bench_models.py: both sides measured alternately, same run
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)/batch:(\d+)/threads:(\d+)", str(r.get("row", "")))
        if not m:
            continue
        key = (m.group(1), int(m.group(2)), int(m.group(3)))
        entry = out.setdefault(key, {})
        for side, field in (("torch", "torch_s"), ("tokenmix", "tokenmix_s")):
            v = r.get(field)
            if isinstance(v, (int, float)) and not math.isnan(v):
                entry[side] = v * 1e3
        f = r.get("flop_limit_fraction")
        if isinstance(f, (int, float)) and not math.isnan(f):
            entry["flop_limit"] = f
    for name, run in runs.items():  # tokenmix_bench_models run alone (no PyTorch)
        m = re.fullmatch(r"models?/tokenmix/([A-Za-z0-9_.\-]+)/batch:(\d+)(?:/threads:(\d+))?",
                         name)
        if m:
            threads = int(m.group(3) or 1)
            entry = out.setdefault((m.group(1), int(m.group(2)), threads), {})
            entry.setdefault("tokenmix", time_of(run, threads))
            if "flop_limit_frac" in run:
                entry.setdefault("flop_limit", run["flop_limit_frac"])
            elif "%peak" in run:
                entry.setdefault("flop_limit", run["%peak"] / 100.0)
    return out


def model_section(models, notes):
    """Returns the full table and the headline table (model x config speed-ups)."""
    if not models:
        notes.append("Model rows missing (tokenmix_bench_models not built or not run).")
        return [], []
    if not any("torch" in v for v in models.values()):
        notes.append("PyTorch model rows missing (python3-torch not installed): model ratios "
                     "skipped.")
    lines = ["| model | batch | threads | tokenmix ms | PyTorch ms | PyTorch / tokenmix | "
             "fraction of FLOP limit |", "|---|---|---|---|---|---|---|"]
    headline = []
    for (model, batch, threads), v in sorted(models.items()):
        sp = ratio(v.get("torch"), v.get("tokenmix"))
        lines.append(f"| {model} | {batch} | {threads} | {fmt(v.get('tokenmix'))} | "
                     f"{fmt(v.get('torch'))} | {fmt(sp)} | {fmt(v.get('flop_limit'), 2)} |")
    configs = sorted({(b, t) for (_, b, t) in models})
    head = ["| PyTorch time / tokenmix time | " +
            " | ".join(f"batch {b}, {t} thread{'s' if t > 1 else ''}" for b, t in configs) + " |",
            "|---|" + "---|" * len(configs)]
    for model in sorted({m for (m, _, _) in models}):
        cells = [ratio(models.get((model, b, t), {}).get("torch"),
                       models.get((model, b, t), {}).get("tokenmix")) for b, t in configs]
        if any(cells):
            head.append(f"| {model} | " + " | ".join(fmt(c) for c in cells) + " |")
    if len(head) > 2:
        headline = head
    return lines, headline


# ------------------------------------------------------------------------------------------
# Plots


def plots(report_dir, layers, gemm, peak, fft_shapes, models, notes):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        notes.append("matplotlib missing (python3-matplotlib): no plots.")
        return []
    made = []
    colors = dict(zip(MIXERS, ["tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown",
                               "tab:pink", "tab:red"]))
    marks = dict(zip(MIXERS, "osD^v<o"))
    pow2 = FuncFormatter(lambda v, _: f"{int(v)}" if v >= 1 else f"{v:g}")

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(report_dir, name), dpi=100)
        plt.close(fig)
        made.append(name)

    # 1: time per sequence vs n.
    series = {m: sorted((n, t) for n, (t, _) in mixer_series(layers, m).items()) for m in MIXERS}
    series = {m: s for m, s in series.items() if s}
    if series:
        fig, ax = plt.subplots(figsize=(9, 6))
        for m, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marks[m], color=colors[m],
                    label=MIXER_LABELS[m], linewidth=2.2 if m == "SelfAttention" else 1.5)
        # Reference slopes from a common point below the data at the smallest n.
        n0 = min(p[0] for s in series.values() for p in s)
        n1 = max(p[0] for s in series.values() for p in s)
        t0 = min(p[1] for s in series.values() for p in s if p[0] == n0) / 3
        ns = [n0 * 2 ** (k / 4) for k in range(int(4 * math.log2(n1 / n0)) + 1)]
        for label, f, style in (("O(n)", lambda n: n, ":"),
                                ("O(n log n)", lambda n: n * math.log2(n), "-."),
                                ("O(n²)", lambda n: n * n, "--")):
            ax.plot(ns, [t0 * f(n) / f(n0) for n in ns], "k" + style, alpha=0.45, linewidth=1,
                    label=f"reference slope {label}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(pow2)
        ax.set_xlabel("sequence length n (tokens, log scale)")
        ax.set_ylabel("time per sequence (ms, log scale)")
        ax.set_title(f"Token mixers vs self-attention: forward time, d = {MIXER_D}, fp32, "
                     "one thread")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        save(fig, "mixers_time.png")
    else:
        notes.append("No mixer rows: plot 1 (time vs n) skipped.")

    # 2: memory vs n, working and total.
    mem = {}
    for m in MIXERS:
        for key in ("peak_heap_bytes", "total_heap_bytes"):
            pts = sorted((n, run[key] / 2 ** 20) for n, (_, run) in mixer_series(layers, m).items()
                         if run.get(key, 0) > 0)
            if pts:
                mem[(m, key)] = pts
    if mem:
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.8), sharex=True)
        for ax, key, title in (
                (axes[0], "total_heap_bytes", "Total: parameters + input/output + working"),
                (axes[1], "peak_heap_bytes", "Working memory of one forward (beyond parameters"
                                             " and I/O)")):
            for m in MIXERS:
                pts = mem.get((m, key))
                if pts:
                    # The token MLP and the SGU can hold the same bytes: the first, drawn
                    # underneath with larger markers, stays visible.
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marks[m],
                            markersize=9 if m == "MixerTokenMLP" else 6, color=colors[m],
                            label=MIXER_LABELS[m])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(pow2)
            ax.set_xlabel("sequence length n (tokens, log scale)")
            ax.set_ylabel("peak heap (MiB, log scale)")
            ax.set_title(title, fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=8, loc="upper left")
        fig.suptitle(f"Peak memory per sequence, measured by a counting allocator, d = {MIXER_D}"
                     ", fp32")
        save(fig, "mixers_memory.png")
    else:
        notes.append("No heap counters in the mixer rows: plot 2 (memory vs n) skipped.")

    # 3: GEMM GFLOP/s vs size, one thread.
    data = gemm
    if data:
        impls = [(i, label) for i, label in GEMM_IMPLS if any(k[0] == i for k in data)]
        square = sorted({int(s.split("x")[0]) for (_, s, t) in data
                         if t == 1 and len(set(s.split("x"))) == 1})
        others = sorted({s for (_, s, t) in data if t == 1 and len(set(s.split("x"))) > 1},
                        key=lambda s: math.prod(shape_key(s)))
        fig, axes = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [1, 2.2]})
        markers = dict(zip([i for i, _ in GEMM_IMPLS], "osD^"))
        for impl, label in impls:
            ys = [data.get((impl, f"{n}x{n}x{n}", 1), float("nan")) for n in square]
            axes[0].plot(square, ys, marker=markers[impl], label=label)
            ys = [data.get((impl, s, 1), float("nan")) for s in others]
            axes[1].plot(range(len(others)), ys, marker=markers[impl], linestyle="none",
                         markersize=7, label=label)
        for ax in axes:
            if peak:
                ax.axhline(peak, color="k", linestyle="--", alpha=0.7,
                           label=f"measured FMA peak, 1 core ({peak:.0f} GFLOP/s)")
            ax.set_ylabel("GFLOP/s (fp32, one thread)")
            ax.set_ylim(0, (peak or max(data.values())) * 1.1)
            ax.grid(True, alpha=0.3)
        axes[0].set_xscale("log", base=2)
        axes[0].xaxis.set_major_formatter(pow2)
        axes[0].set_xticks(square)
        axes[0].set_xlabel("square size M = N = K (log scale)")
        axes[0].set_title("Square GEMM", fontsize=10)
        axes[1].set_xticks(range(len(others)))
        axes[1].set_xticklabels(others, rotation=55, ha="right", fontsize=8)
        axes[1].set_xlabel("shape M x N x K")
        axes[1].set_title("Model and token-mixing shapes, by flop count", fontsize=10)
        axes[1].grid(True, axis="x", alpha=0.15)
        axes[1].legend(fontsize=8, loc="lower right")
        fig.suptitle("GEMM throughput, C = A B, fp32, one thread")
        save(fig, "gemm_gflops.png")
    else:
        notes.append("No GEMM rows: plot 3 skipped.")

    # 4: FourierMixer vs FFTW and Eigen.
    if fft_shapes:
        order = sorted(fft_shapes, key=lambda s: (math.prod(shape_key(s)), shape_key(s)))
        impls = [(i, label) for i, label in FFT_IMPLS if any(i in v for v in fft_shapes.values())]
        fig, ax = plt.subplots(figsize=(10, 6))
        width = 0.8 / len(impls)
        for k, (impl, label) in enumerate(impls):
            xs = [i + (k - (len(impls) - 1) / 2) * width for i in range(len(order))]
            ys = [fft_shapes[s].get(impl, float("nan")) for s in order]
            ax.bar(xs, ys, width, label=label)
            if impl == "tokenmix":  # the ratio the summary quotes, on the bar it describes
                for x, y, s in zip(xs, ys, order):
                    r = ratio(y, fft_shapes[s].get("fftw_r2c_2d"))
                    if r:
                        ax.annotate(f"{r:.2f}x\nFFTW", (x, y), ha="center", va="bottom",
                                    fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_xlabel("shape n x d (tokens x channels; batch x n x d)")
        ax.set_ylabel("time per call (ms, log scale)")
        low = min(v for sv in fft_shapes.values() for v in sv.values() if v > 0)
        ax.set_ylim(bottom=10 ** math.floor(math.log10(low)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title("FNet mixing Re(FFT2(X)), fp32, one thread (labels: tokenmix time / FFTW "
                     "r2c time)", fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        save(fig, "fourier_mixer.png")
    else:
        notes.append("No FFT rows: plot 4 skipped.")

    # 5: model throughput vs PyTorch.
    if models:
        names = sorted({m for (m, _, _) in models})
        batches = sorted({b for (_, b, _) in models})
        bars = [(impl, t) for impl in ("tokenmix", "torch") for t in (1, 2)
                if any(impl in v for (_, _, tt), v in models.items() if tt == t)]
        shade = {("tokenmix", 1): "tab:blue", ("tokenmix", 2): "tab:cyan",
                 ("torch", 1): "tab:red", ("torch", 2): "salmon"}
        fig, axes = plt.subplots(1, len(batches), figsize=(6.5 * len(batches), 6), squeeze=False)
        for ax, b in zip(axes[0], batches):
            width = 0.8 / max(len(bars), 1)
            for k, (impl, t) in enumerate(bars):
                ys = []
                for m in names:
                    v = models.get((m, b, t), {}).get(impl)
                    ys.append(b / v * 1e3 if v else float("nan"))
                xs = [i + (k - (len(bars) - 1) / 2) * width for i in range(len(names))]
                label = ("tokenmix" if impl == "tokenmix" else "PyTorch 1.13 eager") + \
                    f", {t} thread{'s' if t > 1 else ''}"
                ax.bar(xs, ys, width, label=label, color=shade[(impl, t)])
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
            ax.set_yscale("log")
            ax.set_ylabel("throughput (images/s; sequences of 512 tokens/s for FNet; log scale)",
                          fontsize=9)
            ax.set_title(f"batch {b}", fontsize=10)
            ax.grid(True, axis="y", which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("Model forward throughput vs PyTorch, fp32 (higher is better)")
        save(fig, "models.png")
    else:
        notes.append("No model rows: plot 5 skipped.")
    return made


# ------------------------------------------------------------------------------------------


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_dir = sys.argv[1]
    runs, contexts, model_rows = load(report_dir)
    if not runs and not model_rows:
        print(f"plot_report: no benchmark results in {report_dir}", file=sys.stderr)
        return 1
    notes = []
    peak = None
    for ctx in contexts.values():
        if "fma_peak_gflops_f32_1core" in ctx:
            peak = max(peak or 0.0, float(ctx["fma_peak_gflops_f32_1core"]))
    layers = parse_layers(runs)
    gemm = gemm_data(runs)
    fft_shapes = fft_data(runs)
    models = model_data(runs, model_rows)

    cross = crossover_table(layers, notes)
    gemm_lines, gemm_head = gemm_section(gemm, peak, notes)
    fft_lines, fft_head = fft_section(fft_shapes, notes)
    model_lines, model_head = model_section(models, notes)
    torch_lines = torch_layer_table(layers)
    if not torch_lines:
        notes.append("PyTorch layer rows missing (python3-torch not installed?): layer ratios "
                     "skipped.")
    made = plots(report_dir, layers, gemm, peak, fft_shapes, models, notes)

    host = next((c for c in contexts.values() if "host_name" in c and "num_cpus" in c), {})
    isa = next((c["tokenmix_isa"] for c in contexts.values() if "tokenmix_isa" in c), "?")
    out = ["# tokenmix benchmark report", "",
           f"{host.get('num_cpus', '?')} CPUs at {host.get('mhz_per_cpu', '?')} MHz "
           f"(see machine.txt), tokenmix kernels: {isa}, measured fp32 FMA peak of one core: "
           f"{fmt(peak, 4)} GFLOP/s; run of {host.get('date', '?')}. Every number comes from "
           "this one run: medians of the repetitions; single-thread rows on CPU time.", "",
           "## Headline", ""]
    for k, v in {**gemm_head, **fft_head}.items():
        out.append(f"- {k}: {v}")
    if model_head:
        out += ["", "Models, forward time of PyTorch 1.13 eager over tokenmix's (> 1: tokenmix "
                "is faster):", ""] + model_head
    out += ["", f"## Where each mixer becomes cheaper than SelfAttention (d = {MIXER_D}, "
            "one sequence, one thread)", "",
            "Each row times the token-mixing sublayer alone: SelfAttention with its Q/K/V and "
            "output projections, the synthesizers with their value and output projections, the "
            "token MLP with its LayerNorm and residual.", ""]
    out += cross + [""]
    if torch_lines:
        out += ["## Layers vs PyTorch (one thread)", ""] + torch_lines + [""]
    out += ["## GEMM", ""] + gemm_lines
    out += ["## FourierMixer vs FFTW and Eigen (one thread)", ""] + fft_lines + [""]
    out += ["## Models", ""] + model_lines + [""]
    if made:
        out += ["## Plots", ""] + [f"![{m}]({m})" for m in made] + [""]
    if notes:
        out += ["## Skipped", ""] + [f"- {n}" for n in notes] + [""]
    with open(os.path.join(report_dir, "summary.md"), "w") as f:
        f.write("\n".join(out))
    for n in notes:
        print(f"plot_report: {n}", file=sys.stderr)
    print(f"plot_report: wrote {os.path.join(report_dir, 'summary.md')} and {len(made)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
