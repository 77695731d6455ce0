#!/usr/bin/python3
"""PyTorch's own training step, the outside reference for `dfptrain bench train` (issue 6).

Times one training step (forward, cross-entropy loss, backward, SGD update with momentum) of
ResNet-50 on one synthetic batch of 224x224x3 images and 1000 classes, in FP32 and in bf16
autocast, and prints one JSON record per precision (also written to --json FILE):
framework, torch_version, model, batch, threads, precision, step_ms (median of the timed steps),
images_per_s, step_ms_all, warmup, steps, channels_last, cpu_avx512_bf16, mkldnn_available, cpu,
user_cpu_s and system_cpu_s (the process's CPU time in the timed steps: a large system share is
time in the kernel, such as page faults of freshly mapped memory, not in PyTorch's kernels).

Set-up as fast as PyTorch allows on a CPU: channels-last model and input, torch.set_num_threads
explicit (one inter-op thread), denormals flushed, SGD momentum 0.9 and weight decay 1e-4 at
learning rate 0 (as dfptrain bench train does: every step computes the same thing, the update
included). The model is torchvision's ResNet-50 (v1.5: stride in the 3x3 convolution, as
dfptrain's resnet50), defined here so that only Debian's python3-torch is needed.
Run with /usr/bin/python3 (Debian's python3-torch, PyTorch 1.13, built on oneDNN).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for stage, (width, count) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
            for b in range(count):
                blocks.append(Bottleneck(cin, width, 2 if stage > 0 and b == 0 else 1))
                cin = width * 4
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.blocks(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cpu_has_avx512_bf16():
    """Whether the CPU has AVX512-BF16 (bf16 dot products); without it oneDNN emulates bf16."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512_bf16" in line.split()
    except OSError:
        pass
    return None


def measure(model, opt, x, y, precision, warmup, steps):
    def step():
        opt.zero_grad(set_to_none=True)
        if precision == "bf16_autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), y)
        else:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    cpu0 = os.times()
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    cpu1 = os.times()
    return times, cpu1.user - cpu0.user, cpu1.system - cpu0.system


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet50", choices=["resnet50"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per precision")
    p.add_argument("--steps", type=int, default=10, help="timed steps per precision (median)")
    p.add_argument("--precision", default="fp32,bf16_autocast",
                   help="comma-separated: fp32, bf16_autocast")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the records to this file")
    a = p.parse_args()
    precisions = a.precision.split(",")
    for prec in precisions:
        if prec not in ("fp32", "bf16_autocast"):
            p.error(f"--precision: unknown '{prec}' (fp32, bf16_autocast)")
    if a.batch < 1 or a.threads < 1 or a.warmup < 0 or a.steps < 1:
        p.error("--batch, --threads and --steps must be >= 1, --warmup >= 0")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.set_flush_denormal(True)
    torch.manual_seed(a.seed)
    model = ResNet50().to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (a.batch,))

    records = []
    for prec in precisions:
        times, user_s, system_s = measure(model, opt, x, y, prec, a.warmup, a.steps)
        step_ms = statistics.median(times)
        records.append({
            "framework": "pytorch", "torch_version": torch.__version__, "model": a.model,
            "batch": a.batch, "threads": torch.get_num_threads(), "precision": prec,
            "step_ms": step_ms, "images_per_s": a.batch / (step_ms / 1e3),
            "step_ms_all": times, "warmup": a.warmup, "steps": a.steps, "channels_last": True,
            "cpu_avx512_bf16": cpu_has_avx512_bf16(),
            "mkldnn_available": torch.backends.mkldnn.is_available(), "cpu": cpu_name(),
            "user_cpu_s": user_s, "system_cpu_s": system_s})
        print(json.dumps(records[-1]), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
