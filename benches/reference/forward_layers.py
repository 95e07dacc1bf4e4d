"""Where a SmallCNN forward spends its time on this CPU, layer by layer, next
to the best rate this libtorch reaches here (a large matrix product).

The README's "Limits" uses it to bound what any AutoAttack on the same
libtorch kernels can gain per forward pass: if the convolutions already run
near the matrix product's rate, only fewer passes (or other kernels) can make
an attack much faster.

    .venv/bin/python -W ignore -B benches/reference/forward_layers.py [--batch 94] [--threads 2]

Prints one line per layer (ms per call, and GFLOP/s for convolutions and
linear layers), the total, and the rate of a 1,024 x 1,024 float32 matmul.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import SmallCNN  # noqa: E402


def mean_seconds(fn, calls):
    with torch.no_grad():
        for _ in range(10):
            fn()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls


def layer_flops(layer, out):
    """Multiply-adds times two for the layers that do arithmetic, else None."""
    if isinstance(layer, nn.Conv2d):
        k = layer.kernel_size[0] * layer.kernel_size[1] * layer.in_channels // layer.groups
        return 2.0 * out.numel() * k
    if isinstance(layer, nn.Linear):
        return 2.0 * out.numel() * layer.in_features
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=94)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = SmallCNN().eval()
    layers = list(model.feature_extractor) + [nn.Flatten()] + list(model.classifier)
    x = torch.rand(args.batch, 1, 28, 28)
    # Each layer is timed inside whole forwards, not called alone in a loop:
    # alone, a layer frees and allocates the same large output every call,
    # and glibc's default mmap threshold turns that into fresh pages each
    # time (conv1 measured 7.5 ms alone against 1.1 ms in a forward).
    seconds = [0.0] * len(layers)
    with torch.no_grad():
        for call in range(10 + args.calls):
            h = x
            for i, layer in enumerate(layers):
                start = time.perf_counter()
                h = layer(h)
                if call >= 10:
                    seconds[i] += time.perf_counter() - start
    h = x
    with torch.no_grad():
        for layer, total in zip(layers, seconds):
            h = layer(h)
            per_call = total / args.calls
            flops = layer_flops(layer, h)
            rate = f"  {flops / per_call / 1e9:6.1f} GFLOP/s" if flops else ""
            print(f"{per_call * 1e3:7.2f} ms{rate}  {layer}")
    print(f"{sum(seconds) / args.calls * 1e3:7.2f} ms  whole forward, batch {args.batch}, {args.threads} threads")
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    seconds = mean_seconds(lambda: a @ b, args.calls)
    print(f"matmul 1024 x 1024: {2 * 1024**3 / seconds / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
