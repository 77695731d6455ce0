#!/usr/bin/env python3
"""The step-time model of docs/SCALING.md: synchronous data-parallel ResNet-50 on N nodes, with the
gradients averaged by a ring allreduce in FP32 or DFP16. Python standard library; prints the
Markdown tables of the page.

  step = compute + max(0, exchange - hidden)
  exchange = codec + 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency x messages

compute: the measured DFP16 training step per node (batch 32); hidden: 0 without overlap, or the
backward pass (2/3 of the step) with ideal overlap; codec: DFP16 only, the max, quantize and
dequantize passes over the gradients; messages: 1 when all tensors travel in one fused buffer.
"""

PARAMS = 25_557_032  # ResNet-50 (dfptrain inspect --model resnet50)
TENSORS = 161  # its parameter tensors: 53 conv, 53 x 2 batch-norm, fc weight and bias
BATCH_PER_NODE = 32
STEP_DFP16_2CORES = 1.93  # s, docs/RESULTS.md: ResNet-50 DFP16 batch 32 on 2 cores (Zen 5)
# The DFP16 codec: three passes over the FP32 gradients (max, quantize, dequantize) at the 20.8 GiB/s
# the README gives for quantization from memory on 2 threads (Zen 4), per 2 cores.
CODEC_2CORES = 3 * 4 * PARAMS / (20.8 * 2**30)
NETWORKS = [("10 Gb/s Ethernet", 10e9 / 8, 25e-6), ("100 Gb/s InfiniBand", 100e9 / 8, 2e-6)]
NODES = [8, 16, 32, 64, 128, 256]


def exchange(n, bytes_, bandwidth, latency, codec, messages=1):
    return codec + 2 * (n - 1) / n * bytes_ / bandwidth + 2 * (n - 1) * latency * messages


def table(cores, network, overlap):
    name, bandwidth, latency = network
    speedup = cores / 2  # compute scales with the cores of a node (an assumption)
    compute = STEP_DFP16_2CORES / speedup
    codec = CODEC_2CORES / speedup
    hidden = 2 / 3 * compute if overlap else 0.0
    print(f"\n{cores}-core node (compute {compute * 1e3:.0f} ms per step), {name}, "
          f"{'ideal overlap with backward' if overlap else 'no overlap'}:\n")
    print("| nodes | FP32 exchange ms | DFP16 exchange ms | step FP32 / DFP16 exchange ms | "
          "efficiency FP32 / DFP16 | images/s FP32 / DFP16 | DFP16 gain |")
    print("|---|---|---|---|---|---|---|")
    for n in NODES:
        e32 = exchange(n, 4 * PARAMS, bandwidth, latency, 0.0)
        e16 = exchange(n, 2 * PARAMS + 4 * TENSORS, bandwidth, latency, codec) + 2 * (n - 1) * latency
        s32 = compute + max(0.0, e32 - hidden)
        s16 = compute + max(0.0, e16 - hidden)
        print(f"| {n} | {e32 * 1e3:.0f} | {e16 * 1e3:.0f} | {s32 * 1e3:.0f} / {s16 * 1e3:.0f} | "
              f"{compute / s32:.0%} / {compute / s16:.0%} | "
              f"{n * BATCH_PER_NODE / s32:.0f} / {n * BATCH_PER_NODE / s16:.0f} | "
              f"{s32 / s16:.2f}x |")


def latency_table():
    print("\nLatency term alone, 2 (N-1) x latency, per fused buffer and per tensor (161 messages):\n")
    print("| nodes | 10 Gb/s fused / per tensor ms | 100 Gb/s fused / per tensor ms |")
    print("|---|---|---|")
    for n in NODES:
        cells = [f"{2 * (n - 1) * lat * 1e3:.2f} / {2 * (n - 1) * lat * TENSORS * 1e3:.0f}"
                 for _, _, lat in NETWORKS]
        print(f"| {n} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    for cores in (2, 64):
        for network in NETWORKS:
            table(cores, network, overlap=False)
    table(64, NETWORKS[0], overlap=True)
    latency_table()
