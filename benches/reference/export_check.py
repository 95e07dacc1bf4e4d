"""Checks that every checkpoint st-native writes loads into the reference
PyTorch definitions (models.py) with the plain

    model.load_state_dict(safetensors.torch.load_file(path))

(strict: no missing or unexpected key) and gives st-native's logits.

    python export_check.py DIR

DIR is what `cargo run --example export_fixture -- DIR` wrote: per model a
checkpoint, a batch of [0,1] images and st-native's eval-mode logits on it.
Both sides run float32 on the same libtorch; the logits must agree within
TOLERANCE relative to the largest logit, and give the same classes. Measured:
bit-identical for every model (error 0); the tolerance only leaves room for a
kernel that a future libtorch picks differently on each side. Exit 1 on any
failure.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402

TOLERANCE = 1e-5


def main(d):
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    failed = False
    for entry in manifest:
        name, classes = entry["model"], entry["numClasses"]
        model = build(name, classes)
        result = model.load_state_dict(load_file(os.path.join(d, f"{name}.safetensors")))
        assert not result.missing_keys and not result.unexpected_keys, result
        model.eval()
        io = load_file(os.path.join(d, f"{name}.io.safetensors"))
        with torch.no_grad():
            ours = io["logits"]
            theirs = model(io["x"])
        scale = max(1.0, ours.abs().max().item())
        err = (ours - theirs).abs().max().item() / scale
        same_class = bool((ours.argmax(1) == theirs.argmax(1)).all())
        ok = err <= TOLERANCE and same_class
        failed |= not ok
        print(json.dumps({"model": name, "maxRelativeError": err, "sameArgmax": same_class, "ok": ok}))
    if failed:
        print(f"export check FAILED (tolerance {TOLERANCE})", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
