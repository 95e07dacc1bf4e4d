"""Independent PyTorch reference of Squeeze Training, written from the method
page (docs: squeeze-training.md §2-§4), for two jobs:

  parity DIR   recompute what st-native's `st_parity` example wrote to DIR
               (same weights, inputs and seed, float64) and compare: the inner
               loop's final points, the loss, weight gradients and BatchNorm
               running statistics. Exit 1 on any mismatch.
  bench        time training steps (ST, or PGD-AT with --methods pgd_at) of
               the SmallCNN or ResNet-18 on this libtorch, CPU or CUDA, per
               precision and layout, and print one JSON line each (images per
               second, epoch time, memory peak), for benches/run.mjs and the
               device check (benches/device_check.py).

It runs on the same libtorch as the native core (the provisioned torch 2.11.0),
so both sides share kernels and the CPU random stream.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- models ---
class SmallCNN(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, drop=0.5):
        super().__init__()
        self.feature_extractor = nn.Sequential()
        self.feature_extractor.add_module("conv1", nn.Conv2d(in_channels, 32, 3))
        self.feature_extractor.add_module("relu1", nn.ReLU())
        self.feature_extractor.add_module("conv2", nn.Conv2d(32, 32, 3))
        self.feature_extractor.add_module("relu2", nn.ReLU())
        self.feature_extractor.add_module("pool1", nn.MaxPool2d(2))
        self.feature_extractor.add_module("conv3", nn.Conv2d(32, 64, 3))
        self.feature_extractor.add_module("relu3", nn.ReLU())
        self.feature_extractor.add_module("conv4", nn.Conv2d(64, 64, 3))
        self.feature_extractor.add_module("relu4", nn.ReLU())
        self.feature_extractor.add_module("pool2", nn.MaxPool2d(2))
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc1", nn.Linear(64 * 4 * 4, 200))
        self.classifier.add_module("relu1", nn.ReLU())
        self.classifier.add_module("drop", nn.Dropout(drop))
        self.classifier.add_module("fc2", nn.Linear(200, 200))
        self.classifier.add_module("relu2", nn.ReLU())
        self.classifier.add_module("fc3", nn.Linear(200, num_classes))

    def forward(self, x):
        return self.classifier(self.feature_extractor(x).flatten(1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, in_channels=3, num_classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin, layers = width, []
        for i in range(4):
            cout = width << i
            blocks = []
            for b in range(2):
                blocks.append(Block(cin, cout, 2 if (b == 0 and i > 0) else 1))
                cin = cout
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.linear = nn.Linear(cin, num_classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.linear(F.adaptive_avg_pool2d(h, 1).flatten(1))


# -------------------------------------------------------------------- ST ---
def set_running_stats_updates(model, on):
    # Train mode with track_running_stats=False normalises with batch
    # statistics and leaves the running ones alone (method page §4).
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.track_running_stats = on


def symmkl(a, b):
    return 0.5 * (
        F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1).detach(), reduction="batchmean")
        + F.kl_div(F.log_softmax(b, 1), F.softmax(a, 1).detach(), reduction="batchmean")
    )


def choose(triplet_logits, y):
    """Per sample: slot with the lowest p(y|.) (adv) and the highest (col);
    ties to the first slot (PyTorch's argmin/argmax return the first
    occurrence). Slots: 0 benign, 1 collaborative, 2 adversarial."""
    with torch.no_grad():
        p = torch.stack([l.softmax(1).gather(1, y[:, None])[:, 0] for l in triplet_logits])
        return p.argmin(0), p.argmax(0)


def per_sample(cands, slots):
    shape = (-1,) + (1,) * (cands[0].dim() - 1)
    s = slots.view(shape)
    return torch.where(s == 0, cands[0], torch.where(s == 1, cands[1], cands[2]))


def st_inner(model, x, y, eps, alpha, steps):
    model.train()
    set_running_stats_updates(model, False)
    x_adv = x + 0.001 * torch.randn_like(x)
    x_col = x + 0.001 * torch.randn_like(x)
    with torch.no_grad():
        nat = model(x)
    for _ in range(steps):
        xc = x_col.detach().requires_grad_()
        xa = x_adv.detach().requires_grad_()
        lc, la = model(xc), model(xa)
        adv, col = choose([nat, lc, la], y)
        need = bool(((adv == 0) | (col == 0)).any())
        xn = x.detach().requires_grad_(need)
        nat_g = model(xn) if need else nat
        if need:
            nat = nat_g.detach()
        g = symmkl(per_sample([nat_g, lc, la], adv), per_sample([nat_g, lc, la], col))
        inputs = [xn, xc, xa] if need else [xc, xa]
        grads = list(torch.autograd.grad(g, inputs))
        if not need:
            grads.insert(0, torch.zeros_like(x))
        points = [x, xc.detach(), xa.detach()]

        def step(slots):
            new = per_sample(points, slots) + alpha * per_sample(grads, slots).sign()
            return torch.min(torch.max(new, x - eps), x + eps).clamp(0.0, 1.0)

        x_adv, x_col = step(adv), step(col)
    return x_adv.detach(), x_col.detach()


def st_outer(model, x, y, x_adv, x_col, beta):
    set_running_stats_updates(model, False)
    lc = model(x_col)
    set_running_stats_updates(model, True)
    ln = model(x)
    la = model(x_adv)
    adv, col = choose([ln, lc, la], y)
    upper, lower = per_sample([ln, lc, la], adv), per_sample([ln, lc, la], col)
    return F.cross_entropy(ln, y) + beta * symmkl(upper, lower)


# ---------------------------------------------------------------- parity ---
def read_fixture(d):
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    tensors = {}
    for name, meta in manifest["tensors"].items():
        dtype = {"f64": torch.float64, "i64": torch.int64}[meta["dtype"]]
        raw = open(os.path.join(d, meta["file"]), "rb").read()
        tensors[name] = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(meta["shape"]).clone()
    return manifest, tensors


def parity(d):
    manifest, t = read_fixture(d)
    cfg = manifest["config"]
    if manifest["model"] == "small_cnn":
        model = SmallCNN(1, cfg["classes"], drop=0.0)
    else:
        model = ResNet18(3, cfg["classes"], width=cfg["width"])
    model = model.double()
    state = {k[len("weights/"):]: v for k, v in t.items() if k.startswith("weights/")}
    model.load_state_dict(state, strict=True)
    x, y = t["x"], t["y"]
    torch.manual_seed(cfg["seed"])
    x_adv, x_col = st_inner(model, x, y, cfg["epsilon"], cfg["stepSize"], cfg["steps"])
    loss = st_outer(model, x, y, x_adv, x_col, cfg["beta"])
    model.zero_grad()
    loss.backward()
    failures = []

    def close(name, a, b, tol):
        err = (a - b).abs().max().item() / max(b.abs().max().item(), 1e-12)
        status = "ok" if err <= tol else "MISMATCH"
        print(f"  {name:40s} rel err {err:.2e} (tol {tol:.0e}) {status}")
        if err > tol:
            failures.append(name)

    print(f"parity {manifest['model']}: K={cfg['steps']} batch={x.shape[0]} float64")
    close("inner x_adv", x_adv, t["out/x_adv"], 1e-9)
    close("inner x_col", x_col, t["out/x_col"], 1e-9)
    close("loss", loss.detach().reshape(1), t["out/loss"], 1e-9)
    params = dict(model.named_parameters())
    for k, v in t.items():
        if k.startswith("grad/"):
            close(k, params[k[5:]].grad, v, 1e-7)
    buffers = dict(model.named_buffers())
    for k, v in t.items():
        if k.startswith("after/"):
            close(k, buffers[k[6:]].to(v.dtype), v, 1e-9)
    if failures:
        print(f"parity {manifest['model']}: {len(failures)} mismatches: {failures}")
        sys.exit(1)


# ----------------------------------------------------------------- bench ---
def pgd_at_inner(model, x, y, eps, alpha, steps):
    """PGD-AT's attack (Madry et al.): uniform start in the ball, sign steps
    on the summed cross-entropy, train mode with running statistics frozen
    (as st-native's PGD-AT runs it)."""
    model.train()
    set_running_stats_updates(model, False)
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0.0, 1.0)
    for _ in range(steps):
        xa = x_adv.detach().requires_grad_()
        g = torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), [xa])[0]
        x_adv = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0.0, 1.0)
    set_running_stats_updates(model, True)
    return x_adv.detach()


def fraction(text):
    a, _, b = text.partition("/")
    return float(a) / float(b) if b else float(a)


def bench_one(args, method, precision, memory_format):
    """Times `args.iters` training steps (after `args.warmup`) of `method` at
    one precision and layout; returns the JSON line."""
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        # Strict f32 unless tf32: PyTorch lets cuDNN use TF32 by default.
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    if args.model == "small_cnn":
        model, shape = SmallCNN(1, 10), (1, args.size or 28, args.size or 28)
    else:
        model, shape = ResNet18(3, 10, width=args.width), (3, args.size or 32, args.size or 32)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    x = torch.rand(args.batch, *shape).to(device)
    y = torch.randint(0, 10, (args.batch,)).to(device)
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # bf16: the whole step's forwards under autocast, f32 master weights
    # (the usual torch.amp recipe; no scaler needed for bf16).
    amp = precision == "bf16"
    eps, alpha = fraction(args.epsilon), fraction(args.step_size)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            if method == "st":
                x_adv, x_col = st_inner(model, x, y, eps, alpha, args.steps)
                loss = st_outer(model, x, y, x_adv, x_col, args.beta)
            else:
                x_adv = pgd_at_inner(model, x, y, eps, alpha, args.steps)
                loss = F.cross_entropy(model(x_adv), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    loss = None
    for _ in range(args.iters):
        loss = step()
    if cuda:
        torch.cuda.synchronize(device)
    secs = time.perf_counter() - start
    ips = args.iters * args.batch / secs
    if cuda:
        memory = {"peakAllocatedMiB": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                  "peakReservedMiB": round(torch.cuda.max_memory_reserved(device) / 2**20, 1),
                  "totalMiB": round(torch.cuda.get_device_properties(device).total_memory / 2**20, 1)}
    else:
        memory = {"unavailable": "CPU: PyTorch keeps no allocator statistics for the CPU"}
    last = float(loss) if loss is not None else float("nan")
    return {"check": "speed", "impl": f"pytorch-reference ({precision}, {memory_format})", "method": method,
            "precision": precision, "memoryFormat": memory_format, "batch": args.batch, "steps": args.steps,
            "iters": args.iters, "imagesPerSec": ips, "msPerStep": 1000 * secs / max(args.iters, 1),
            "epochSeconds": 50000 / ips, "lastLoss": last, "finite": math.isfinite(last), "memory": memory,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def bench(args):
    """One JSON line per (method, variant): `--variants f32,bf16+cl` (a `+cl`
    suffix is channels-last), or the single `--precision`/`--memory-format`."""
    if args.variants:
        variants = [(v.removesuffix("+cl"), "channels_last" if v.endswith("+cl") else "contiguous", v)
                    for v in args.variants.split(",")]
    else:
        variants = [(args.precision, args.memory_format, None)]
    for method in args.methods.split(","):
        for precision, memory_format, name in variants:
            line = bench_one(args, method, precision, memory_format)
            if name:
                line["variant"] = name
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity")
    p.add_argument("dir")
    b = sub.add_parser("bench")
    b.add_argument("--batch", type=int, default=128)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--iters", type=int, default=5)
    b.add_argument("--precision", choices=["f32", "tf32", "bf16"], default="f32")
    b.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="contiguous")
    b.add_argument("--variants", default="", help="comma-separated f32|tf32|bf16, each optionally +cl")
    b.add_argument("--methods", default="st", help="comma-separated st|pgd_at")
    b.add_argument("--model", choices=["small_cnn", "resnet18"], default="small_cnn")
    b.add_argument("--width", type=int, default=64, help="ResNet-18 width (64: the paper's)")
    b.add_argument("--size", type=int, default=0, help="image side (0: 28 for small_cnn, 32 for resnet18)")
    b.add_argument("--device", default="cpu")
    b.add_argument("--warmup", type=int, default=1)
    b.add_argument("--epsilon", default="0.1")
    b.add_argument("--step-size", default="0.02")
    b.add_argument("--beta", type=float, default=1.0)
    b.add_argument("--lr", type=float, default=0.01)
    b.add_argument("--weight-decay", type=float, default=0.0)
    a = ap.parse_args()
    parity(a.dir) if a.cmd == "parity" else bench(a)
