"""AutoAttack components of torchattacks 3.5.1 (Kim, 2020; a port of Croce &
Hein's official code) on the same model and images as st-native's
`aa_component` example, configured to AutoAttack's standard settings.

    python autoattack_reference.py CHECKPOINT IMAGES COMPONENT [--eps 0.3]
        [--n 500] [--seed 0] [--steps 100] [--queries 5000] [--norm Linf|L2]
        [--threads 0] [--model small_cnn] [--classes 10] [--width W] [--device cpu]

COMPONENT: apgd-ce | apgd-dlr | apgd-t | fab-t | square | aa, or several
separated by commas (one JSON line each, the model loaded once)

Prints one JSON line: accuracy over all n images after the attack (a point
is correct only if classified correctly clean and after the attack), the
time, the largest perturbation; for `aa` also the accuracy after each stage.

torchattacks' defaults are not AutoAttack's: its APGD, APGDT and FAB run 10
iterations unless told otherwise, and its own AutoAttack class builds them
with those defaults. So every setting is passed here explicitly: 100
iterations, 1 restart, 9 target classes (APGD-T, FAB-T), 5000 Square
queries, and `aa` runs the four in sequence, each on the points still robust
(the standard version; torchattacks' MultiAttack also attacks the points
that are wrong clean, which changes no accuracy).
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402


def components(torchattacks, model, a, seed):
    common = dict(norm=a.norm, eps=a.eps, seed=seed)
    return {
        "apgd-ce": lambda: torchattacks.APGD(model, steps=a.steps, n_restarts=1, loss="ce", **common),
        "apgd-dlr": lambda: torchattacks.APGD(model, steps=a.steps, n_restarts=1, loss="dlr", **common),
        "apgd-t": lambda: targets(torchattacks.APGDT(model, steps=a.steps, n_restarts=1, n_classes=a.classes, **common), a),
        "fab-t": lambda: targets(
            torchattacks.FAB(model, steps=a.steps, n_restarts=1, multi_targeted=True, n_classes=a.classes, **common), a
        ),
        "square": lambda: torchattacks.Square(model, n_queries=a.queries, n_restarts=1, **common),
    }


def targets(attack, a):
    """Standalone APGD-T and FAB-T with `--targets` target classes (the 2nd to
    (targets+1)-th highest clean logits, the loop both run) instead of all
    other classes; AutoAttack's own stages keep n_classes - 1."""
    if a.targets is not None:
        attack.n_target_classes = a.targets
    return attack


def predict(model, x, batch=500):
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def distance(norm, x_adv, x):
    d = (x_adv - x).reshape(len(x), -1)
    return (d.abs().amax(1) if norm == "Linf" else d.norm(dim=1)).max().item() if len(x) else 0.0


def main():
    import torchattacks

    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("images")
    p.add_argument("component")
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--queries", type=int, default=5000)
    p.add_argument("--targets", type=int, default=None, help="target classes of standalone apgd-t and fab-t (default: all others)")
    p.add_argument("--norm", default="Linf", choices=["Linf", "L2"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--width", type=int, default=None, help="ResNet-18 at another width (the device check's dry run)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the device check)")
    p.add_argument("--points", action="store_true", help="also print which images stayed robust")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    if a.width is not None and a.model == "resnet18":
        from models import ResNet18

        model = ResNet18(3, a.classes, width=a.width)
    else:
        model = build(a.model, a.classes)
    model.load_state_dict(load_file(a.checkpoint))
    model = model.to(a.device).eval()
    data = load_file(a.images)
    x, y = data["images"].float()[: a.n].to(a.device), data["labels"].long()[: a.n].to(a.device)
    n = len(y)
    clean = predict(model, x) == y
    made = components(torchattacks, model, a, a.seed)
    # AutoAttack's stages at the standard settings, whatever --queries and
    # --targets set for the standalone components: Square 5000 queries, every
    # other class a target.
    standard = components(torchattacks, model, argparse.Namespace(**{**vars(a), "queries": 5000, "targets": None}), a.seed)
    for component in a.component.split(","):
        print(json.dumps(run(component, standard if component == "aa" else made, model, x, y, clean, a)), flush=True)


def run(component, made, model, x, y, clean, a):
    n = len(y)
    stages = ["apgd-ce", "apgd-t", "fab-t", "square"] if component == "aa" else [component]
    started = time.perf_counter()
    robust = clean.clone()
    worst = 0.0
    after = {}
    stage_seconds = {}
    for name in stages:
        stage_started = time.perf_counter()
        idx = robust.nonzero().flatten()
        if len(idx):
            xs, ys = x[idx], y[idx]
            adv = made[name]()(xs, ys)
            worst = max(worst, distance(a.norm, adv, xs))
            robust[idx] = predict(model, adv) == ys
        after[name] = robust.sum().item() / n
        stage_seconds[name] = time.perf_counter() - stage_started
    seconds = time.perf_counter() - started
    out = {
        "impl": "torchattacks",
        "component": component,
        "eps": a.eps,
        "n": n,
        "seed": a.seed,
        "clean": clean.sum().item() / n,
        "accuracy": robust.sum().item() / n,
        "seconds": seconds,
        "maxPerturbation": worst,
        "threads": torch.get_num_threads(),
    }
    if component == "aa":
        out["stages"] = after
        out["stageSeconds"] = stage_seconds
    if a.points:
        out["robust"] = robust.int().tolist()
    return out


if __name__ == "__main__":
    main()
