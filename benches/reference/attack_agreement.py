"""An independent check of st-native's attacks with torchattacks (Kim, 2020)
on the same model and images.

    python attack_agreement.py CHECKPOINT ADVERSARIAL_FILE --model small_cnn
        --classes 10 --eps 0.1 --step 0.025 --steps 10 --seeds 0,1,2

CHECKPOINT is a checkpoint st-native wrote, loaded into the reference
PyTorch model (models.py) with `load_state_dict(safetensors.torch.load_file)`.
ADVERSARIAL_FILE is what `st-native eval --save-adversarial` wrote: the clean
images and labels the attacks ran on, and each attack's adversarial inputs.

Prints one JSON object:
  - torchattacks: accuracy under torchattacks' FGSM, PGD (L-inf, random
    start) and CW-inf, per seed (FGSM is deterministic: one entry);
  - rescored: the accuracy of each `adversarial.<name>` tensor of the file
    under the reference model (the numbers st-native reported, if its saved
    inputs are what it scored).

torchattacks' defaults are not the paper's (PGD: eps 8/255, alpha 2/255,
10 steps), so every setting is passed explicitly. It puts the model in eval
mode and clamps to [0, 1] as st-native does. It has no CW-inf (its CW is the
L2 optimisation attack), so CW-inf runs as torchattacks.PGD on a wrapper
whose two outputs are (true logit, largest other logit) with label 0: the
cross-entropy of those two is softplus(margin), a strictly increasing
function of the CW margin, and in eval mode each image's gradient only
depends on its own loss, so the signed steps are exactly those of PGD on the
margin.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import build  # noqa: E402


class CwMargin(nn.Module):
    """(true logit, largest other logit) of `model`, for the labels set in `labels`."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.labels = None

    def forward(self, x):
        logits = self.model(x)
        true = logits.gather(1, self.labels.view(-1, 1))
        others = logits.masked_fill(nn.functional.one_hot(self.labels, logits.shape[1]).bool(), float("-inf"))
        return torch.cat([true, others.amax(1, keepdim=True)], 1)


def accuracy(model, x, y, batch=500):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / len(y)


def main():
    import torchattacks

    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("adversarial")
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--eps", type=float)
    p.add_argument("--step", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--rescore-only", action="store_true", help="only re-score the file's adversarial inputs")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    model = build(a.model, a.classes)
    model.load_state_dict(load_file(a.checkpoint))
    model.eval()
    data = load_file(a.adversarial)
    x, y = data["images"].float(), data["labels"].long()
    out = {"samples": len(y), "clean": accuracy(model, x, y), "torchattacks": {}, "rescored": {}}
    for name, t in data.items():
        if name.startswith("adversarial."):
            out["rescored"][name[len("adversarial.") :]] = accuracy(model, t, y)
    if a.rescore_only:
        print(json.dumps(out))
        return
    if a.eps is None or a.step is None or a.steps is None:
        p.error("--eps, --step and --steps are needed (or --rescore-only)")

    fgsm = torchattacks.FGSM(model, eps=a.eps)
    out["torchattacks"]["fgsm"] = [accuracy(model, fgsm(x, y), y)]
    seeds = [int(s) for s in a.seeds.split(",")]
    pgd = torchattacks.PGD(model, eps=a.eps, alpha=a.step, steps=a.steps, random_start=True)
    wrapper = CwMargin(model).eval()
    cw = torchattacks.PGD(wrapper, eps=a.eps, alpha=a.step, steps=a.steps, random_start=True)
    out["torchattacks"]["pgd"], out["torchattacks"]["cw"] = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        out["torchattacks"]["pgd"].append(accuracy(model, pgd(x, y), y))
        torch.manual_seed(seed)
        wrapper.labels = y
        x_cw = cw(x, torch.zeros_like(y))
        out["torchattacks"]["cw"].append(accuracy(model, x_cw, y))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
