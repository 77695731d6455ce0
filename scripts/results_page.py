#!/usr/bin/python3
"""Writes docs/RESULTS.md and its plots from the raw outputs of scripts/experiments.sh.

Reads RESULTS/SECTION/commands.tsv (the commands run, and facts such as _mode, _date, _git) and
the raw files beside it (accuracy: *_seed*.jsonl from `dfptrain train --metrics`; throughput:
bench_train_*.json, pytorch_resnet50.json; kernels: bench_peak.json, bench_conv.json,
bench_gemm.json), and writes the page and RESULTS/*.png (gnuplot). Runs nothing else, so the page
can be regenerated from committed raw files alone. Python 3 standard library only.

Usage: /usr/bin/python3 scripts/results_page.py --results docs/results --page docs/RESULTS.md
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

TARGET_SPEEDUP = 1.8          # DFP16 end-to-end vs dfptrain FP32 (the paper's 1.8x)
TARGET_PEAK_SHARE = 0.90      # DESIGN.md: each DFP16 conv pass >= 90% of the INT16 VNNI peak
TARGET_SPEEDUP_8BIT = 2.5     # issue 7: dfp8 end-to-end vs dfptrain FP32 on ResNet-50
MODELS_ACC = ["lenet5", "resnet20"]
MODELS_TPUT = ["resnet50", "googlenet", "vgg16", "alexnet"]
BREAKDOWN_ORDER = ["conv_fprop", "conv_bprop", "conv_wtgrad", "conv_backward", "linear_forward",
                   "linear_backward", "batchnorm", "relu", "pooling", "loss", "quantization",
                   "sgd_update", "other"]
PRECISIONS_8BIT = ["fp32", "dfp16", "dfp8", "mxint8", "int8"]  # issue 7's comparison
COLORS = {"fp32": "#1f77b4", "dfp16": "#d62728", "dfp8": "#2ca02c", "mxint8": "#9467bd",
          "int8": "#ff7f0e"}
DASHES = {"fp32": "dt 1", "dfp16": "dt 2", "dfp8": "dt 3", "mxint8": "dt 4", "int8": "dt 5"}


# --- reading ----------------------------------------------------------------------------------

class Section:
    """One section's raw folder: its facts (_mode, _date, ...) and its commands, in order."""

    def __init__(self, results, name):
        self.name = name
        self.dir = os.path.join(results, name)
        self.facts, self.commands = {}, []
        path = os.path.join(self.dir, "commands.tsv")
        self.present = os.path.exists(path)
        if not self.present:
            return
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                key, _, value = line.partition("\t")
                if key.startswith("_"):
                    self.facts[key[1:]] = value
                else:
                    self.commands.append((key, value))

    @property
    def quick(self):
        return self.facts.get("mode") == "quick"

    def cmds(self, prefix=""):
        return [c for k, c in self.commands if k.startswith(prefix)]

    def load_json(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- formatting -------------------------------------------------------------------------------

def pct(x, digits=2):
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def num(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}x"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def code_block(commands, title="Commands"):
    if not commands:
        return ""
    return f"{title}:\n\n```sh\n" + "\n".join(commands) + "\n```\n"


def section_banner(sec):
    line = f"Run {sec.facts.get('date', '?')}, git {sec.facts.get('git', '?')}, " \
           f"{sec.facts.get('threads', '?')} thread(s)."
    if sec.quick:
        line += (" **QUICK MODE** (`--quick`): tiny limits, one seed, one repetition; these "
                 "numbers check the pipeline and say nothing about dfptrain.")
    if "note" in sec.facts:  # a fact the person who ran the section recorded (_note)
        line += " " + sec.facts["note"]
    return line + "\n"


# --- gnuplot ----------------------------------------------------------------------------------

def gnuplot_terminal():
    if not shutil.which("gnuplot"):
        return None
    probe = subprocess.run(["gnuplot", "-e", "set terminal pngcairo"], capture_output=True,
                           text=True)
    if probe.returncode == 0 and "unknown" not in probe.stderr.lower():
        return "pngcairo noenhanced size 1200,450 font 'sans,10'"
    return "png noenhanced size 1200,450"


def run_gnuplot(script, workdir):
    path = os.path.join(workdir, "plot.gp")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True, cwd=workdir)
    if r.returncode != 0:
        raise SystemExit(f"results_page: gnuplot failed:\n{r.stderr}")


# --- accuracy ---------------------------------------------------------------------------------

def smooth(values, window=5):
    """Centred running mean (shorter at the ends)."""
    h = window // 2
    return [statistics.fmean(values[max(0, i - h):i + h + 1]) for i in range(len(values))]


def load_accuracy_runs(sec):
    runs = {}  # (model, precision) -> {seed: records}
    for path in sorted(glob.glob(os.path.join(sec.dir, "*_seed*.jsonl"))):
        m = re.fullmatch(r"(.+)_(fp32|dfp16|dfp8|mxint8|int8)_seed(\d+)\.jsonl",
                         os.path.basename(path))
        if m:
            runs.setdefault((m[1], m[2]), {})[int(m[3])] = read_jsonl(path)
    return runs


def spread(values):
    return {"n": len(values), "mean": statistics.fmean(values), "min": min(values),
            "max": max(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def plot_accuracy(model, per_prec, out_png, terminal, tmp):  # noqa: C901
    """per_prec: precision -> {seed: records}. Loss: mean of seeds of the smoothed batch loss,
    band min..max of seeds; test top-1 per epoch: mean of seeds with min..max bars."""
    plots_loss, plots_acc = [], []
    n_seeds = max(len(s) for s in per_prec.values())
    for index, (prec, seeds) in enumerate(per_prec.items()):
        color = COLORS.get(prec, "#333333")
        dash = DASHES.get(prec, "dt 1")  # visible where the curves coincide
        shift = 0.06 * (index - (len(per_prec) - 1) / 2)  # bars side by side
        curves = {}
        for seed, recs in seeds.items():
            epochs = [r for r in recs if "test_top1" in r]
            iters = [r for r in recs if "test_top1" not in r]
            per_epoch = epochs[0]["iter"] / epochs[0]["epoch"] if epochs else 1
            losses = smooth([r["loss"] for r in iters])
            curves[seed] = ({r["iter"] / per_epoch: l for r, l in zip(iters, losses)},
                            {r["epoch"]: 100 * r["test_top1"] for r in epochs})
        common = sorted(set.intersection(*(set(c[0]) for c in curves.values())))
        loss_dat = os.path.join(tmp, f"{model}_{prec}_loss.dat")
        with open(loss_dat, "w") as f:
            for x in common:
                v = [c[0][x] for c in curves.values()]
                f.write(f"{x:.5f} {statistics.fmean(v):.6f} {min(v):.6f} {max(v):.6f}\n")
        epochs = sorted(set.intersection(*(set(c[1]) for c in curves.values())))
        acc_dat = os.path.join(tmp, f"{model}_{prec}_acc.dat")
        with open(acc_dat, "w") as f:
            for e in epochs:
                v = [c[1][e] for c in curves.values()]
                f.write(f"{e} {statistics.fmean(v):.4f} {min(v):.4f} {max(v):.4f}\n")
        if common:
            plots_loss.append(f"'{loss_dat}' u 1:3:4 w filledcurves lc rgb '{color}' notitle")
            plots_loss.append(f"'{loss_dat}' u 1:2 w lines lw 2 {dash} lc rgb '{color}' title '{prec}'")
        if epochs:
            plots_acc.append(f"'{acc_dat}' u ($1+{shift}):2:3:4 w yerrorlines lw 2 {dash} pt 7 lc rgb '{color}' "
                             f"title '{prec}'")
    seeds_txt = f"{n_seeds} seed{'s' if n_seeds > 1 else ''}"
    script = f"""set terminal {terminal}
set output '{os.path.abspath(out_png)}'
set multiplot layout 1,2 title '{model} on Fashion-MNIST, {" vs ".join(per_prec)} ({seeds_txt}: mean, band/bars min-max)'
set grid
set key top right
set style fill transparent solid 0.20 noborder
set xlabel 'epoch'
set ylabel 'training loss (running mean of 5 logged batches)'
plot {", ".join(plots_loss) if plots_loss else "NaN notitle"}
set key bottom right
set ylabel 'test top-1 (%)'
set xtics 1
set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
plot {", ".join(plots_acc) if plots_acc else "NaN notitle"}
unset multiplot
"""
    run_gnuplot(script, tmp)


def accuracy_section(sec, results, terminal, tmp, targets):
    if not sec.present:
        return "## 1. Accuracy\n\nNot run yet (`scripts/experiments.sh --section accuracy`).\n"
    intro = (
        "Same hyper-parameters for both precisions (batch 64, SGD momentum 0.9, weight decay "
        "5e-4, learning rate 0.05 with a cosine schedule; the options are spelled out in the "
        "commands). `dfp16` is the paper's mixed precision: DFP16 convolution and fully-connected "
        "layers, first and last layer FP32. `--seed` sets the order of the training data; "
        "dfptrain seeds the initial weights by layer name, so all seeds start from the same "
        "weights and the spread below is that of the data order alone.\n")
    return accuracy_runs_section(sec, results, terminal, tmp, targets,
                                 "## 1. Accuracy: Fashion-MNIST, FP32 vs DFP16\n", intro,
                                 MODELS_ACC, ["fp32", "dfp16"], "accuracy")


def eightbit_section(sec, results, terminal, tmp, targets):
    if not sec.present:
        return ("## 4. 8-bit training (issue 7)\n\nNot run yet "
                "(`scripts/experiments.sh --section eightbit`).\n")
    intro = (
        "Issue 7's accuracy comparison: every precision on the same network for the same 10 "
        "epochs, batch 64, 3 seeds. SGD as in the accuracy section (momentum 0.9, weight decay "
        "5e-4, cosine schedule) with learning rate 0.05 for lenet5 and 0.01 for NITI's BN-free, "
        "bias-free `niti_lenet` (FP32 diverges there at 0.05); `int8` has no SGD: its learning "
        "rate is NITI's `mu` schedule (4, 3, 2). The options are in the commands. `dfp8` is "
        "the DFP16 scheme with 8-bit mantissas on the int8 GEMM (one exponent per tensor, first "
        "and last layer FP32); `mxint8` is `dfp8` with one exponent per block of 32 along the "
        "reduction of every GEMM pass (OCP MX, symmetric clamp to ±127); `int8` is NITI's "
        "integer-only training where the network allows it. The throughput section measures "
        "dfp8's training step, the kernels section the int8 GEMM and convolution.\n")
    models = sorted({m for m, _ in load_accuracy_runs(sec)})
    return accuracy_runs_section(sec, results, terminal, tmp, targets,
                                 "## 4. 8-bit training: Fashion-MNIST accuracy (issue 7)\n", intro,
                                 models, PRECISIONS_8BIT, "eightbit",
                                 " (section 4, issue 7)")


def accuracy_runs_section(sec, results, terminal, tmp, targets, heading, intro, models,
                          precisions, png_prefix, target_note=""):
    """Final test top-1 per run, mean and spread per precision, each non-FP32 precision's mean
    against the FP32 seed range (a target line), and the curves of every model."""
    out = [heading, section_banner(sec)]
    runs = load_accuracy_runs(sec)
    out.append(intro)
    rows, summary = [], {}
    for model in models:
        for prec in precisions:
            seeds = runs.get((model, prec), {})
            finals = []
            for seed in sorted(seeds):
                recs = seeds[seed]
                epochs = [r for r in recs if "test_top1" in r]
                if not epochs:
                    continue
                last = epochs[-1]
                finals.append(last["test_top1"])
                rows.append([model, prec, seed, last["epoch"], pct(last["test_top1"]),
                             pct(last.get("test_top5")), num(last["loss"], 4),
                             num(statistics.fmean(r["images_per_s"] for r in epochs), 0),
                             num(last["elapsed_s"], 0)])
            if finals:
                summary[(model, prec)] = spread(finals)
    out.append("### Final test top-1 per run\n")
    out.append(table(["model", "precision", "seed", "epochs", "test top-1", "test top-5",
                      "train loss (last epoch)", "images/s (train)", "wall s"], rows))
    out.append("\n### Mean and spread per model and precision\n")
    srows = []
    for model in models:
        fp = summary.get((model, "fp32"))
        for prec in precisions:
            s = summary.get((model, prec))
            if s:
                srows.append([model, prec, s["n"], pct(s["mean"]),
                              f"{pct(s['min'])} – {pct(s['max'])}",
                              "n/a" if s["std"] is None else f"{100 * s['std']:.2f} pp"])
        for prec in precisions[1:]:
            df = summary.get((model, prec))
            if not (fp and df):
                continue
            name = prec.upper()
            inside = fp["min"] <= df["mean"] <= fp["max"]
            diff = 100 * (df["mean"] - fp["mean"])
            if inside:
                how = (f"inside, {100 * min(df['mean'] - fp['min'], fp['max'] - df['mean']):.2f}"
                       " pp from the nearer edge")
            else:
                gap = fp["min"] - df["mean"] if df["mean"] < fp["min"] else df["mean"] - fp["max"]
                side = "below" if df["mean"] < fp["min"] else "above"
                how = f"{100 * gap:.2f} pp {side} the FP32 range"
            note = f"{name} mean − FP32 mean {diff:+.2f} pp"
            if fp["std"]:
                note += f" ({diff / (100 * fp['std']):+.1f} FP32 std)"
            target = (f"{name} test top-1 within 1 point of FP32, {model}{target_note}"
                      if prec == "int8" else
                      f"{name} test top-1 within the FP32 seed spread, {model}{target_note}")
            if prec == "int8":  # NITI's target: within 1 point of the FP32 mean
                status = "met" if diff >= -1.0 else "missed"
            else:
                status = "met" if inside else ("exceeded (above every FP32 seed)"
                                               if side == "above" else "missed")
            targets.append([target,
                            f"{name} mean {pct(df['mean'])}; FP32 {pct(fp['min'])} – "
                            f"{pct(fp['max'])} ({fp['n']} seeds)", status, f"{how}; {note}"])
    out.append(table(["model", "precision", "seeds", "mean test top-1", "min – max",
                      "std (n-1)"], srows))
    for model in models:
        per_prec = {p: runs[(model, p)] for p in precisions if (model, p) in runs}
        if not per_prec:
            continue
        png = os.path.join(results, f"{png_prefix}_{model}.png")
        if terminal:
            plot_accuracy(model, per_prec, png, terminal, tmp)
        out.append(f"\n### {model}: training loss and test accuracy\n")
        if os.path.exists(png):
            out.append(f"![{model} {' vs '.join(per_prec)}]({os.path.relpath(png, PAGE_DIR)})\n")
        else:
            out.append("(no plot: gnuplot is not installed)\n")
        out.append("Left: training loss of the logged batches (running mean of 5), mean of the "
                   "seeds, band from the lowest to the highest seed. Right: test top-1 after "
                   "each epoch, mean of the seeds, bars min–max. Plotted by "
                   f"`{REGEN}` from the metrics (`--metrics`) of:\n")
        out.append(code_block(sec.cmds(model + "/"), "Commands"))
    return "\n".join(out)


# --- throughput -------------------------------------------------------------------------------

BREAKDOWN_GROUPS = [("convolutions", lambda k: k.startswith("conv")),
                    ("fully-connected", lambda k: k.startswith("linear")),
                    ("quantization", lambda k: k == "quantization"),
                    ("batch-norm", lambda k: k == "batchnorm"),
                    ("ReLU, pooling", lambda k: k in ("relu", "pooling")),
                    ("SGD update", lambda k: k == "sgd_update"),
                    ("loss, other", lambda k: True)]


def plot_breakdown(records, out_png, terminal, tmp):
    """Stacked bars per model and precision: each part of the step as % of the FP32 step."""
    dat = os.path.join(tmp, "breakdown.dat")
    with open(dat, "w") as f:
        f.write("label " + " ".join(f'"{g}"' for g, _ in BREAKDOWN_GROUPS) + "\n")
        first = True
        for model in MODELS_TPUT:
            recs = records.get(model)
            fp = next((r for r in recs or [] if r["precision"] == "fp32"), None)
            if not fp:
                continue
            if not first:
                f.write('"" ' + " ".join("NaN" for _ in BREAKDOWN_GROUPS) + "\n")  # a gap
            first = False
            for r in recs:
                parts = [0.0] * len(BREAKDOWN_GROUPS)
                for k, v in (r.get("breakdown_ms") or {}).items():
                    i = next(i for i, (_, match) in enumerate(BREAKDOWN_GROUPS) if match(k))
                    parts[i] += v
                f.write(f'"{model} {r["precision"]}" '
                        + " ".join(f"{100 * v / fp['step_ms']:.3f}" for v in parts) + "\n")
    script = f"""set terminal {terminal}
set output '{os.path.abspath(out_png)}'
set title 'Training step by part, as % of the FP32 step (dfptrain bench train; lower is faster)'
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.75
set key outside right
set grid ytics
set ylabel '% of the FP32 step'
set yrange [0:*]
set xtics rotate by -25 scale 0
plot for [i=2:{len(BREAKDOWN_GROUPS) + 1}] '{dat}' u i:xtic(1) title columnheader(i)
"""
    run_gnuplot(script, tmp)


def plot_conv_share(conv, peaks, out_png, terminal, tmp):
    """Clustered bars: share of the INT16 peak per layer and pass, at the most threads."""
    threads = max(r["threads"] for r in conv)
    p = peaks.get(threads)
    if not p:
        return False
    passes = ["fprop", "bprop", "wtgrad"]
    layers = list(dict.fromkeys(r["layer"] for r in conv))
    dat = os.path.join(tmp, "conv_share.dat")
    with open(dat, "w") as f:
        f.write("layer " + " ".join(passes) + "\n")
        for layer in layers:
            vals = []
            for ps in passes:
                r = next((r for r in conv if r["layer"] == layer and r["pass"] == ps
                          and r["threads"] == threads), None)
                vals.append("NaN" if r is None else
                            f"{100 * r['gflop'] / (r['dfp16_ms'] / 1e3) / p['s16_vpdpwssd_gops']:.2f}")
            f.write(f'"{layer}" ' + " ".join(vals) + "\n")
    script = f"""set terminal {terminal}
set output '{os.path.abspath(out_png)}'
set title 'DFP16 Conv2d: share of the INT16 vpdpwssd peak ({p["s16_vpdpwssd_gops"]:.0f} GOP/s at {threads} thread(s))'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside right
set grid ytics
set ylabel '% of the INT16 peak'
set yrange [0:100]
set xtics scale 0
plot for [i=2:4] '{dat}' u i:xtic(1) title columnheader(i), {100 * TARGET_PEAK_SHARE:.0f} w lines dt 2 lw 2 lc rgb '#000000' title 'target {100 * TARGET_PEAK_SHARE:.0f}%'
"""
    run_gnuplot(script, tmp)
    return True


def throughput_section(sec, results, terminal, tmp, targets):
    head = "## 2. Throughput: training images/s at 224x224, FP32 vs DFP16\n"
    if not sec.present:
        return head + "\nNot run yet (`scripts/experiments.sh --section throughput`).\n"
    out = [head, section_banner(sec)]
    records = {}
    for model in MODELS_TPUT:
        data = sec.load_json(f"bench_train_{model}.json")
        if data:
            records[model] = data
    torch_recs = sec.load_json("pytorch_resnet50.json") or []
    dfp_resnet50 = None
    if "skipped_bench_train" in sec.facts or not records:
        why = sec.facts.get("skipped_bench_train", "no bench_train_*.json files")
        out.append(f"**dfptrain's own throughput was not measured**: {why}. This section fills "
                   "in when `scripts/experiments.sh --section throughput` runs with a dfptrain "
                   "that has `dfptrain bench train`.\n")
        for model in MODELS_TPUT:
            targets.append([f"DFP16 >= {TARGET_SPEEDUP}x dfptrain FP32, {model}", "not measured",
                            "n/a", "no `dfptrain bench train` in this build"])
    else:
        out.append(
            "`dfptrain bench train`: the training step of `dfptrain train` (forward, loss, "
            "backward, SGD update) on one synthetic batch, FP32 and DFP16 interleaved in one "
            "process, same weights and data, medians. `dfp16` is the paper's mixed precision "
            "(first and last layer FP32). Each round runs one sample of every precision back to "
            "back; 'per round' gives the lowest and highest ratio of those neighbouring samples, "
            "how far this shared machine moved the ratio within the run.\n")
        # Older records lack cpu and isa; an integer ISA other than avx512_vnni makes the ratios
        # those of the fallback kernels, which the page must say.
        first = next(iter(records.values()))[0]
        if "isa" in first:
            where = f"Ran on **{first['cpu']}**, integer kernels **{first['isa']}**."
            if first["isa"] != "avx512_vnni":
                where += (" This CPU has no AVX512-VNNI: the DFP columns are those of the "
                          "fallback kernels, slower than FP32, not the design's speed-up.")
            out.append(where + "\n")
        rows = []
        for model in MODELS_TPUT:
            recs = records.get(model)
            if not recs:
                rows.append([model, "", "", "not run", "", "", "", "", "", ""])
                continue
            fp = next((r for r in recs if r["precision"] == "fp32"), None)
            df = next((r for r in recs if str(r["precision"]).startswith("dfp16")), None)
            d8 = next((r for r in recs if str(r["precision"]).startswith("dfp8")), None)
            sp8 = fp["step_ms"] / d8["step_ms"] if fp and d8 else None
            if model == "resnet50" and sp8 is not None:
                targets.append([f"DFP8 >= {TARGET_SPEEDUP_8BIT}x dfptrain FP32, resnet50 (issue 7)",
                                ratio(sp8), "met" if sp8 >= TARGET_SPEEDUP_8BIT else "missed",
                                f"{100 * (1 - sp8 / TARGET_SPEEDUP_8BIT):.0f}% below; "
                                f"{limit_text(fp, d8)}" if sp8 < TARGET_SPEEDUP_8BIT else
                                f"{sp8 - TARGET_SPEEDUP_8BIT:.2f}x above the target"])
            sp = df.get("speedup_vs_fp32") if df else None
            if sp is None and fp and df:
                sp = fp["step_ms"] / df["step_ms"]
            if model == "resnet50":
                dfp_resnet50 = df
            rounds = df.get("speedup_vs_fp32_rounds") if df else None
            rows.append([model, (df or fp)["batch"], (df or fp)["threads"],
                         num(fp and fp["images_per_s"]), num(df and df["images_per_s"]),
                         ratio(sp),
                         f"{ratio(rounds[0])} – {ratio(rounds[1])}" if rounds else "–",
                         "met" if sp and sp >= TARGET_SPEEDUP else "missed",
                         num(d8 and d8["images_per_s"]), ratio(sp8)])
            if sp is not None:
                if sp >= TARGET_SPEEDUP:
                    how = f"{sp - TARGET_SPEEDUP:.2f}x above the target"
                else:
                    how = (f"{TARGET_SPEEDUP - sp:.2f}x short ({100 * (1 - sp / TARGET_SPEEDUP):.0f}%"
                           f" below); {limit_text(fp, df)}")
                targets.append([f"DFP16 >= {TARGET_SPEEDUP}x dfptrain FP32, {model}", ratio(sp),
                                "met" if sp >= TARGET_SPEEDUP else "missed", how])
        out.append(table(["model", "batch", "threads", "FP32 images/s", "DFP16 images/s",
                          "DFP16 / FP32", "per round", f">= {TARGET_SPEEDUP}x", "DFP8 images/s",
                          "DFP8 / FP32"], rows))
        out.append("\n### Where the time goes\n")
        png = os.path.join(results, "throughput_breakdown.png")
        if terminal:
            plot_breakdown(records, png, terminal, tmp)
            out.append(f"![training step by part]({os.path.relpath(png, PAGE_DIR)})\n")
            out.append("Each bar is one precision's step, split by kind of work, as a share of "
                       "the FP32 step of the same network (so the DFP16 bar's height is 1 / the "
                       f"ratio). Plotted by `{REGEN}` from the `--json` of the commands at the end "
                       "of this section.\n")
        out.append("The tables give milliseconds per step (share of that precision's step). "
                   "Each line excludes the lines nested in it (conv and linear lines exclude "
                   "quantization), so the lines add up to the step. FP32 convolutions report "
                   "their backward as one `conv_backward` (one oneDNN call); in DFP16 the first "
                   "layer (FP32) does too.\n")
        for model in MODELS_TPUT:
            recs = records.get(model)
            if not recs:
                continue
            keys = [k for k in BREAKDOWN_ORDER if any(k in r.get("breakdown_ms", {}) for r in recs)]
            keys += sorted({k for r in recs for k in r.get("breakdown_ms", {})} - set(keys))
            brows = []
            for k in keys:
                vals = [r.get("breakdown_ms", {}).get(k) for r in recs]
                if not any(vals):
                    continue  # no such work in this network (e.g. batch-norm in GoogLeNet)
                brows.append([k] + ["–" if not v else f"{v:.1f} ({100 * v / r['step_ms']:.0f}%)"
                                    for v, r in zip(vals, recs)])
            brows.append(["**step**"] + [f"**{r['step_ms']:.1f}**" for r in recs])
            out.append(f"\n**{model}** (batch {recs[0]['batch']}, {recs[0]['threads']} threads)\n")
            out.append(table(["part"] + [str(r["precision"]) for r in recs], brows))
            fp = next((r for r in recs if r["precision"] == "fp32"), None)
            df = next((r for r in recs if str(r["precision"]).startswith("dfp16")), None)
            if fp and df:
                out.append("\n" + limit_text(fp, df, full=True) + "\n")
                out.append(slowest_layers(fp, df))
        out.append("\n" + code_block(sec.cmds("bench_train/")))

    out.append(int8_speed(sec, targets))
    out.append("\n### Outside reference: PyTorch ResNet-50 training step\n")
    if not torch_recs:
        why = sec.facts.get("skipped_pytorch", "no pytorch_resnet50.json")
        out.append(f"Not measured ({why}).\n")
        targets.append(["DFP16 faster than PyTorch bf16 autocast, resnet50", "not measured",
                        "n/a", ""])
    else:
        t0 = torch_recs[0]
        out.append(
            f"`scripts/pytorch_reference.py`: PyTorch {t0['torch_version']} (Debian "
            "`python3-torch`, oneDNN inside), torchvision's ResNet-50 v1.5 defined in the script, "
            f"channels-last, {t0['threads']} thread(s) (`torch.set_num_threads`), SGD momentum "
            f"0.9, synthetic data, {t0['warmup']} warm-up steps then the median of "
            f"{t0['steps']} timed steps; CPU with AVX512-BF16: {t0.get('cpu_avx512_bf16', 'n/a')}.\n")
        prow = [[r["precision"], r["batch"], r["threads"], num(r["step_ms"]),
                 num(r["images_per_s"])] for r in torch_recs]
        out.append(table(["PyTorch precision", "batch", "threads", "step ms", "images/s"], prow))
        # The share of PyTorch's CPU time spent in the kernel; older records lack the CPU times.
        def system_share(r):
            user, system = r.get("user_cpu_s"), r.get("system_cpu_s")
            return system / (user + system) if user is not None and system is not None and \
                user + system > 0 else 0.0
        for r in torch_recs:
            share = system_share(r)
            if share > 0.2:
                user, system = r["user_cpu_s"], r["system_cpu_s"]
                out.append(f"\n**Caution:** PyTorch {r['precision']} spent {share:.0%} of its CPU "
                           f"time in the timed steps in the kernel ({system:.1f} s system, "
                           f"{user:.1f} s user): time outside its compute kernels (page faults of "
                           "memory its allocator maps afresh each step are the usual cause), so "
                           "this figure understates what PyTorch does on a machine where that is "
                           "cheap.\n")
        bf = next((r for r in torch_recs if r["precision"] == "bf16_autocast"), None)
        tfp = next((r for r in torch_recs if r["precision"] == "fp32"), None)
        if dfp_resnet50 and bf:
            same = dfp_resnet50["batch"] == bf["batch"] and dfp_resnet50["threads"] == bf["threads"]
            r = dfp_resnet50["images_per_s"] / bf["images_per_s"]
            caveat = "" if same else (f" (NOT the same set-up: dfptrain batch "
                                      f"{dfp_resnet50['batch']}, {dfp_resnet50['threads']} "
                                      f"threads; PyTorch batch {bf['batch']}, {bf['threads']})")
            line = f"\ndfptrain DFP16 ÷ PyTorch bf16 autocast: **{ratio(r)}**{caveat}."
            if tfp:
                line += (" dfptrain DFP16 ÷ PyTorch FP32: "
                         f"{ratio(dfp_resnet50['images_per_s'] / tfp['images_per_s'])}.")
            out.append(line + "\n")
            # Two programs timed minutes apart on a shared machine differ by about 3% from run
            # to run: a closer result is a tie, whichever side of 1 it falls.
            tie = abs(r - 1) < 0.03
            targets.append(["DFP16 faster than PyTorch bf16 autocast, resnet50",
                            f"{num(dfp_resnet50['images_per_s'])} vs {num(bf['images_per_s'])} "
                            "images/s",
                            ("met" if r > 1 else "missed") + (" (within noise)" if tie else ""),
                            (f"{ratio(r)}: " + (f"{100 * (r - 1):.0f}% faster" if r > 1 else
                                                 f"{100 * (1 - r):.0f}% slower"))
                            + (", inside the ~3% run-to-run spread of the two timings: level"
                               if tie else "") + caveat
                            + (f"; PyTorch spent {system_share(bf):.0%} of its CPU time in the "
                               "kernel (see the caution below)" if system_share(bf) > 0.2 else "")])
        else:
            targets.append(["DFP16 faster than PyTorch bf16 autocast, resnet50",
                            f"PyTorch bf16: {num(bf and bf['images_per_s'])} images/s",
                            "n/a", "dfptrain's ResNet-50 DFP16 step not measured"])
        out.append("\n" + code_block(sec.cmds("pytorch/")))
    return "\n".join(out)


def int8_speed(sec, targets):
    """Issue 7: NITI's integer-only int8 against FP32 (and dfp8) on vgg_small, from short
    `dfptrain train` runs on synthetic data (the integer engine has no `bench train`)."""
    runs = {}
    for path in glob.glob(os.path.join(sec.dir, "speed_vgg_small_*.jsonl")):
        prec = os.path.basename(path)[len("speed_vgg_small_"):-len(".jsonl")]
        epochs = [r for r in read_jsonl(path) if "test_top1" in r]
        if epochs:
            runs[prec] = epochs[-1]["images_per_s"]
    if not runs:
        return ""
    out = ["\n### NITI int8 on vgg_small (issue 7)\n",
           "Training images/s of one epoch of `dfptrain train` on synthetic 28x28x1 data (the "
           "integer engine has its own training loop, so `bench train` does not cover it; this "
           "counts the whole loop, data included, for every precision alike).\n"]
    fp = runs.get("fp32")
    rows = [[p, num(v), ratio(v / fp) if fp else "n/a"] for p, v in sorted(runs.items())]
    out.append(table(["precision", "images/s", "x FP32"], rows))
    if fp and "int8" in runs:
        sp = runs["int8"] / fp
        targets.append(["int8 (NITI) >= 2.5x dfptrain FP32, vgg_small (issue 7)", ratio(sp),
                        "met" if sp >= 2.5 else "missed",
                        f"{100 * (1 - sp / 2.5):.0f}% below" if sp < 2.5 else "above"])
    out.append("\n" + code_block(sec.cmds("speed/")))
    return "\n".join(out)


def slowest_layers(fp, df, count=8):
    """The layers that take longest in DFP16 (`bench train --json`'s layers_ms), beside FP32."""
    fl = {l["name"]: l for l in fp.get("layers_ms") or []}
    dl = df.get("layers_ms") or []
    if not fl or not dl:
        return ""
    rows = []
    for l in sorted(dl, key=lambda l: -l["ms"])[:count]:
        f = fl.get(l["name"])
        rows.append([f"`{l['name']}`", l["kind"], num(f and f["ms"]), num(l["ms"]),
                     ratio(f["ms"] / l["ms"]) if f and l["ms"] > 0 else "n/a"])
    return ("\nThe " + str(len(rows)) + " layers that take longest in DFP16 (forward and backward, "
            "their quantization included; `layers_ms`):\n\n" +
            table(["layer", "kind", "fp32 ms", "dfp16 ms", "fp32 ÷ dfp16"], rows))


# Multiply-adds per instruction against FP32 FMA's (16 per zmm): vpdpwssd does 32 (DFP16),
# vpdpbusd 64 (DFP8). An integer convolution cannot beat FP32's by more than this.
INSTRUCTION_SPEEDUP = {"DFP16": 2.0, "DFP8": 4.0}


def limit_text(fp, df, full=False):
    """What bounds the integer precision's ratio to FP32, from the two breakdowns: the ceiling is
    the step with every convolution at the instruction's speed-up over FP32's convolutions, no
    quantization, and the rest (mostly FP32 in both precisions) as measured."""
    name = str(df["precision"]).split(",")[0].upper()
    bf, bd = fp.get("breakdown_ms") or {}, df.get("breakdown_ms") or {}
    if not bf or not bd:
        return "no breakdown recorded"
    conv_f = sum(v for k, v in bf.items() if k.startswith("conv"))
    conv_d = sum(v for k, v in bd.items() if k.startswith("conv"))
    quant = bd.get("quantization", 0.0)
    rest_d = df["step_ms"] - conv_d - quant
    peak = INSTRUCTION_SPEEDUP.get(name)
    ideal = conv_f / peak + rest_d if peak and rest_d > 0 else None
    bound = fp["step_ms"] / ideal if ideal else None
    top = sorted(((v, k) for k, v in bd.items()), reverse=True)[:3]
    if not full:
        return (f"convolutions {ratio(conv_f / conv_d if conv_d else None)} faster than FP32's; "
                f"quantization {100 * quant / df['step_ms']:.0f}% and the rest (batch-norm, "
                f"ReLU, pooling, fully-connected, SGD, ...) {100 * rest_d / df['step_ms']:.0f}% "
                f"of the {name} step. With every convolution at the {num(peak)}x of the "
                f"instruction, no quantization and the rest as measured, the step would be at "
                f"most {ratio(bound)} FP32's")
    return (f"Convolutions: {conv_f:.1f} ms FP32 vs {conv_d:.1f} ms {name} "
            f"({ratio(conv_f / conv_d if conv_d else None)}; "
            f"{ratio(conv_f / (conv_d + quant) if conv_d + quant else None)} with {name}'s "
            f"quantization, {quant:.1f} ms, counted in). The rest of the {name} step (batch-norm, "
            f"ReLU, pooling, fully-connected, loss, SGD, other) takes {rest_d:.1f} ms "
            f"({fp['step_ms'] - conv_f:.1f} ms in FP32): even with every convolution at the "
            f"{num(peak)}x of "
            f"the instruction over FP32 FMA and no quantization, the {name} step would be at "
            f"most {ratio(bound)} FP32's. Largest parts of the {name} step: "
            + ", ".join(f"{k} {100 * v / df['step_ms']:.0f}%" for v, k in top) + ".")


# --- kernels ----------------------------------------------------------------------------------

def kernels_section(sec, results, terminal, tmp, targets):
    head = "## 3. Kernels: DFP16 convolution passes against the INT16 VNNI peak\n"
    if not sec.present:
        return head + "\nNot run yet (`scripts/experiments.sh --section kernels`).\n"
    out = [head, section_banner(sec)]
    peak = sec.load_json("bench_peak.json") or []
    conv = sec.load_json("bench_conv.json") or []
    gemm = sec.load_json("bench_gemm.json") or []
    peaks = {p["threads"]: p for p in peak}
    if peak:
        out.append(f"CPU: **{peak[0]['cpu']}**. Measured multiply-add peaks (`dfptrain bench "
                   "peak`; a multiply-add counts 2), the yardsticks below:\n")
        out.append(table(["threads", "FP32 FMA GFLOP/s", "INT16 vpdpwssd GOP/s",
                          "INT8 vpdpbusd GOP/s", "INT16 / FP32"],
                         [[p["threads"], num(p["fp32_fma_gflops"]), num(p["s16_vpdpwssd_gops"]),
                           num(p["s8_vpdpbusd_gops"]),
                           ratio(p["s16_vpdpwssd_gops"] / p["fp32_fma_gflops"])] for p in peak]))
        out.append("\n" + code_block(sec.cmds("peak")))
    else:
        out.append("No peak measured (bench_peak.json missing): shares of peak are n/a.\n")

    def share(gops, threads, key="s16_vpdpwssd_gops"):
        p = peaks.get(threads)
        return gops / p[key] if p and p.get(key) else None

    if conv:
        out.append("\n### DFP16 Conv2d (`dfptrain bench conv`), ResNet-50 layers\n")
        out.append("Share of INT16 peak = GFLOP of the pass ÷ DFP16 time ÷ the INT16 vpdpwssd "
                   "peak at the same thread count (quantization and overflow handling are in "
                   "the DFP16 time). oneDNN FP32's own share of the FP32 peak is shown for "
                   "scale. Ratios > 1: DFP16 faster.\n")
        rows, shares = [], []
        for r in conv:
            gops = r["gflop"] / (r["dfp16_ms"] / 1e3)
            s = share(gops, r["threads"])
            sf = share(r["gflop"] / (r["onednn_fp32_ms"] / 1e3), r["threads"], "fp32_fma_gflops")
            if s is not None:
                shares.append((s, r))
            rows.append([r["layer"], r["pass"], r["threads"], f"{r['gflop']:.2f}",
                         num(r["dfp16_ms"], 2), num(gops), pct(s, 0), pct(sf, 0),
                         ratio(r["speedup_vs_onednn_fp32"]),
                         ratio(r.get("speedup_vs_onednn_bf16"))])
        out.append(table(["layer", "pass", "threads", "GFLOP", "DFP16 ms", "DFP16 GOP/s",
                          "share of INT16 peak", "oneDNN FP32 share of FP32 peak",
                          "x oneDNN FP32", "x oneDNN bf16"], rows))
        if shares:
            met = sum(1 for s, _ in shares if s >= TARGET_PEAK_SHARE)
            med = statistics.median(s for s, _ in shares)
            worst = min(shares, key=lambda t: t[0])
            out.append(f"\nPasses at >= {pct(TARGET_PEAK_SHARE, 0)} of the INT16 peak: {met} of "
                       f"{len(shares)}; median {pct(med, 0)}; lowest {pct(worst[0], 0)} "
                       f"({worst[1]['layer']} {worst[1]['pass']}, {worst[1]['threads']} "
                       "thread(s)).\n")
            targets.append([f"each DFP16 conv pass >= {pct(TARGET_PEAK_SHARE, 0)} of the INT16 "
                            "peak (DESIGN.md)", f"{met} of {len(shares)} passes; median "
                            f"{pct(med, 0)}", "met" if met == len(shares) else "missed",
                            f"median {100 * (TARGET_PEAK_SHARE - med):.0f} points short"
                            if med < TARGET_PEAK_SHARE else "all passes at or above"])
        png = os.path.join(results, "kernels_conv_share.png")
        if terminal and plot_conv_share(conv, peaks, png, terminal, tmp):
            out.append(f"\n![share of the INT16 peak]({os.path.relpath(png, PAGE_DIR)})\n")
            out.append(f"Plotted by `{REGEN}` from the `--json` of `bench conv` and `bench peak` "
                       "(commands above and below).\n")
        out.append("\n" + code_block(sec.cmds("conv")))
    if gemm:
        out.append("\n### DFP16 GEMM (`dfptrain bench gemm`)\n")
        rows = []
        for r in gemm:
            rows.append([r.get("form", ""), f"{r['m']},{r['n']},{r['k']}",
                         f"{r.get('op_a', 'N')}{r.get('op_b', 'N')}", r["threads"],
                         num(r["dfp16_gflops"]), pct(share(r["dfp16_gflops"], r["threads"]), 0),
                         ratio(r["speedup_vs_onednn_fp32"]),
                         ratio(r.get("speedup_vs_onednn_bf16"))])
        out.append(table(["form", "M,N,K", "op", "threads", "DFP16 GFLOP/s",
                          "share of INT16 peak", "x oneDNN FP32", "x oneDNN bf16"], rows))
        out.append("\n" + code_block(sec.cmds("gemm")))
    out.append(eightbit_kernels(gemm, conv, share, targets))
    return "\n".join(out)


def eightbit_kernels(gemm, conv, share, targets):
    """Issue 7: the int8 GEMM (DFP8 one exponent per tensor, MXINT8 blocks of 32 along K) and
    DFP8 Conv2d against oneDNN FP32 and oneDNN int8, from the same bench runs."""
    out = []
    g8 = [r for r in gemm if r.get("dfp8_gflops")]
    if g8:
        out.append("\n### 8-bit GEMM (issue 7): DFP8 and MXINT8 against oneDNN FP32 and int8\n")
        out.append("Same runs as the table above. DFP8: int8 mantissas with one exponent per "
                   "tensor on `vpdpbusd`; MXINT8: one exponent per row (column) and block of 32 "
                   "along K, each block's INT32 sum scaled and added in FP32; oneDNN int8: its "
                   "s8 x s8 matmul to FP32 with one output scale.\n")
        rows = []
        for r in g8:
            rows.append([r.get("form", ""), f"{r['m']},{r['n']},{r['k']}",
                         f"{r.get('op_a', 'N')}{r.get('op_b', 'N')}", r["threads"],
                         num(r["dfp8_gflops"]),
                         pct(share(r["dfp8_gflops"], r["threads"], "s8_vpdpbusd_gops"), 0),
                         ratio(r["dfp8_gflops"] / r["onednn_fp32_gflops"]),
                         num(r.get("mxint8_gflops")),
                         ratio(r["mxint8_gflops"] / r["onednn_fp32_gflops"]
                               if r.get("mxint8_gflops") else None),
                         num(r.get("onednn_s8_gflops")),
                         ratio(r["dfp8_gflops"] / r["onednn_s8_gflops"]
                               if r.get("onednn_s8_gflops") else None)])
        out.append(table(["form", "M,N,K", "op", "threads", "DFP8 GFLOP/s", "share of INT8 peak",
                          "DFP8 x oneDNN FP32", "MXINT8 GFLOP/s", "MXINT8 x oneDNN FP32",
                          "oneDNN int8 GFLOP/s", "DFP8 x oneDNN int8"], rows))
        conv_shapes = [r for r in g8 if r.get("form") in ("fprop", "bprop", "wtgrad")]
        if conv_shapes:
            ratios = [r["dfp8_gflops"] / r["onednn_fp32_gflops"] for r in conv_shapes]
            met = sum(1 for x in ratios if x >= 3.5)
            worst = min(conv_shapes, key=lambda r: r["dfp8_gflops"] / r["onednn_fp32_gflops"])
            targets.append(["int8 GEMM >= 3.5x oneDNN FP32 sgemm on the conv shapes (issue 7)",
                            f"{met} of {len(ratios)}; median {ratio(statistics.median(ratios))}, "
                            f"{ratio(min(ratios))} – {ratio(max(ratios))}",
                            "met" if met == len(ratios) else "missed",
                            f"lowest {worst['form']} {worst['m']},{worst['n']},{worst['k']} at "
                            f"{worst['threads']} thread(s): small K or M, where packing and the "
                            "FP32 output weigh as much as the multiply-adds"])
    c8 = [r for r in conv if r.get("dfp8_ms")]
    if c8:
        out.append("\n### DFP8 Conv2d (issue 7)\n")
        out.append("Same runs as the DFP16 Conv2d table: dfptrain's Conv2d in `dfp8` "
                   "(quantization included) against oneDNN FP32, and oneDNN's int8 forward "
                   "convolution (FPROP only; its src and weights quantized once, outside the "
                   "timed region, as in inference).\n")
        rows = []
        for r in c8:
            s8 = r.get("onednn_s8_ms")
            rows.append([r["layer"], r["pass"], r["threads"], num(r["dfp8_ms"], 2),
                         pct(share(r["gflop"] / (r["dfp8_ms"] / 1e3), r["threads"],
                                   "s8_vpdpbusd_gops"), 0),
                         ratio(r.get("dfp8_speedup_vs_onednn_fp32")),
                         ratio(r["onednn_fp32_ms"] / r["dfp16_ms"] if r.get("dfp16_ms") else None),
                         num(s8, 2) if s8 else "–",
                         ratio(s8 / r["dfp8_ms"]) if s8 else "–",
                         f"{r.get('dfp8_rel_error_vs_fp32', float('nan')):.1e}"])
        out.append(table(["layer", "pass", "threads", "DFP8 ms", "share of INT8 peak",
                          "DFP8 x oneDNN FP32", "DFP16 x oneDNN FP32", "oneDNN int8 ms",
                          "DFP8 x oneDNN int8", "DFP8 rel. error"], rows))
    return "\n".join(out)


# --- the page ---------------------------------------------------------------------------------

def main():
    global PAGE_DIR, REGEN
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="docs/results")
    p.add_argument("--page", default="docs/RESULTS.md")
    a = p.parse_args()
    PAGE_DIR = os.path.dirname(os.path.abspath(a.page))
    REGEN = f"/usr/bin/python3 scripts/results_page.py --results {a.results} --page {a.page}"
    secs = {n: Section(a.results, n) for n in ("accuracy", "throughput", "kernels", "eightbit")}
    terminal = gnuplot_terminal()
    # Plots of a previous page go: each is drawn again below if its data are still there.
    for old in ["throughput_breakdown.png", "kernels_conv_share.png"] + \
            glob.glob(os.path.join(a.results, "accuracy_*.png")) + \
            glob.glob(os.path.join(a.results, "eightbit_*.png")):
        if os.path.exists(os.path.join(a.results, old)):
            os.remove(os.path.join(a.results, old))
    targets = []
    with tempfile.TemporaryDirectory() as tmp:
        body = [accuracy_section(secs["accuracy"], a.results, terminal, tmp, targets),
                throughput_section(secs["throughput"], a.results, terminal, tmp, targets),
                kernels_section(secs["kernels"], a.results, terminal, tmp, targets),
                eightbit_section(secs["eightbit"], a.results, terminal, tmp, targets)]

    out_dir = os.path.dirname(a.page)
    page_only = "scripts/experiments.sh --page-only" + (f" --out {out_dir}" if out_dir != "docs" else "")
    quick = [n for n, s in secs.items() if s.quick]
    head = ["# dfptrain results: DFP16 against the claims of Das et al. (ICLR 2018)\n"]
    if quick:
        head.append(f"> **QUICK MODE** for: {', '.join(quick)}. Those sections were made with "
                    "`scripts/experiments.sh --quick` (tiny limits: a few hundred images, one "
                    "epoch, one seed, one repetition) to check the pipeline. Their numbers are "
                    "not results; run `scripts/experiments.sh` for the real page.\n")
    head.append(
        "Made by `scripts/experiments.sh` (all sections; `--section NAME` for one, `--quick` to "
        f"check the pipeline in minutes); `{page_only}` rewrites this page and its plots from the "
        f"raw files in `{a.results}/` (JSON and JSON lines, with `commands.tsv`, the exact "
        "commands run) without running anything. Every table and figure below carries the "
        "commands that produced it.\n")
    cpu = None
    peak = secs["kernels"].load_json("bench_peak.json") if secs["kernels"].present else None
    if peak:
        cpu = peak[0].get("cpu")
    head.append(f"Machine of the kernels section: {cpu or 'CPU not recorded (run it)'}; each "
                "section names its own where it was run on another.\n")
    head.append("## Targets\n")
    head.append("From issue 6 and DESIGN.md; 'by how much' is read from the sections below.\n")
    head.append(table(["target", "measured", "status", "by how much / what limits it"],
                      targets) if targets else "No measurements yet.\n")
    if quick:
        head.append("\n(Quick mode: the statuses above are those of the pipeline check, not of "
                    "dfptrain.)\n")
    with open(a.page, "w") as f:
        f.write("\n".join(head) + "\n" + "\n\n".join(body))
    return 0


PAGE_DIR = "."
REGEN = ""

if __name__ == "__main__":
    sys.exit(main())
