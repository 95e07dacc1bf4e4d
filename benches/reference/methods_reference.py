"""Independent PyTorch references of the methods ST is compared with, written
from their papers and the authors' public code, for the parity check:

  parity DIR   recompute what st-native's `st_parity` example wrote to DIR for
               one method (same weights, inputs and seed, float64) and compare:
               the inner loop's final points, the loss, weight gradients and
               BatchNorm running statistics; for AWP also the perturbed weights
               and the weights after the SGD step and the restore. Exit 1 on
               any mismatch.

Methods (the fixture's "method"):
  trades         TRADES, as `trades_loss` of github.com/yaodongyu/TRADES
  mart           MART, as `mart_loss` of github.com/YisenWang/MART
  collaborative  the ST paper's Eq. 5 (collaborative examples alone), from
                 the method page (docs: squeeze-training.md §8); no public code
  trades_awp     TRADES-AWP, as `train_trades_cifar.py` + `utils_awp.py` of
                 github.com/csdongxian/AWP (proxy model, proxy SGD step,
                 `diff_in_weights`, perturb, step, restore)
  st_awp         the same AWP procedure around ST's loss (st_reference.py)

Where the authors' code draws noise with `torch.randn(shape).cuda()` (float32
on the GPU) we draw `torch.randn_like(x)` on the CPU in float64, so both
sides share one random stream; nothing else is changed.
"""
import argparse
import copy
import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_reference import (  # noqa: E402  (the ST reference and its models)
    ResNet18,
    SmallCNN,
    read_fixture,
    set_running_stats_updates,
    st_inner,
    st_outer,
)


# ---------------------------------------------------------------- TRADES ---
def trades_inner(model, x, eps, alpha, steps):
    model.eval()
    x_adv = x.detach() + 0.001 * torch.randn_like(x).detach()
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1), reduction="sum")
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + alpha * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    return torch.clamp(x_adv, 0.0, 1.0).detach()


def trades_outer(model, x, y, x_adv, beta):
    model.train()
    batch_size = len(x)
    logits = model(x)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / batch_size) * F.kl_div(
        F.log_softmax(model(x_adv), dim=1), F.softmax(model(x), dim=1), reduction="sum"
    )
    return loss_natural + beta * loss_robust


# ------------------------------------------------------------------ MART ---
def mart_inner(model, x, y, eps, alpha, steps):
    model.eval()
    x_adv = x.detach() + 0.001 * torch.randn_like(x).detach()
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_ce = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(loss_ce, [x_adv])[0]
        x_adv = x_adv.detach() + alpha * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    return torch.clamp(x_adv, 0.0, 1.0).detach()


def mart_outer(model, x, y, x_adv, beta):
    kl = torch.nn.KLDivLoss(reduction="none")
    model.train()
    batch_size = len(x)
    logits = model(x)
    logits_adv = model(x_adv)
    adv_probs = F.softmax(logits_adv, dim=1)
    tmp1 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(tmp1[:, -1] == y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, (y.unsqueeze(1)).long()).squeeze()
    loss_robust = (1.0 / batch_size) * torch.sum(
        torch.sum(kl(torch.log(adv_probs + 1e-12), nat_probs), dim=1) * (1.0000001 - true_probs)
    )
    return loss_adv + float(beta) * loss_robust


# ------------------------------------------------- collaborative (Eq. 5) ---
def collaborative_inner(model, x, y, eps, alpha, steps):
    # ST's inner-loop BatchNorm semantics: train mode, running stats frozen.
    model.train()
    set_running_stats_updates(model, False)
    x_col = x + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        xc = x_col.detach().requires_grad_()
        grad = torch.autograd.grad(F.cross_entropy(model(xc), y), [xc])[0]
        # Descent on CE: towards lower loss.
        x_col = xc.detach() - alpha * grad.sign()
        x_col = torch.min(torch.max(x_col, x - eps), x + eps).clamp(0.0, 1.0)
    return x_col.detach()


def collaborative_outer(model, x, y, x_col, beta):
    set_running_stats_updates(model, False)
    lc = model(x_col)
    set_running_stats_updates(model, True)
    ln = model(x)
    # KL(f(x_col) || f(x)), the formula as written: gradients through both.
    kl = F.kl_div(F.log_softmax(ln, dim=1), F.softmax(lc, dim=1), reduction="batchmean")
    return F.cross_entropy(ln, y) + beta * kl


# ------------------------------------------------------------------- AWP ---
EPS = 1e-20


def diff_in_weights(model, proxy):
    diff_dict = OrderedDict()
    model_state_dict = model.state_dict()
    proxy_state_dict = proxy.state_dict()
    for (old_k, old_w), (new_k, new_w) in zip(model_state_dict.items(), proxy_state_dict.items()):
        if len(old_w.size()) <= 1:
            continue
        if "weight" in old_k:
            diff_w = new_w - old_w
            diff_dict[old_k] = old_w.norm() / (diff_w.norm() + EPS) * diff_w
    return diff_dict


def add_into_weights(model, diff, coeff=1.0):
    names_in_diff = diff.keys()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in names_in_diff:
                param.add_(coeff * diff[name])


def trades_awp_loss(model, x, y, x_adv, beta):
    """The TRADES-AWP training loss, forwards in its order (x', x, x)."""
    logits_adv = model(x_adv)
    loss_robust = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(model(x), dim=1), reduction="batchmean")
    logits = model(x)
    return F.cross_entropy(logits, y) + beta * loss_robust


def trades_calc_loss(proxy, x, y, x_adv, beta):
    """TradesAWP.calc_awp's loss on the proxy."""
    loss_natural = F.cross_entropy(proxy(x), y)
    loss_robust = F.kl_div(F.log_softmax(proxy(x_adv), dim=1), F.softmax(proxy(x), dim=1), reduction="batchmean")
    return loss_natural + beta * loss_robust


def awp_step(model, x, y, cfg, inner, record):
    """One training step with AWP, ordered as train_trades_cifar.py's loop."""
    eps, alpha, steps, beta, gamma = cfg["epsilon"], cfg["stepSize"], cfg["steps"], cfg["beta"], cfg["gamma"]
    o = cfg["optimizer"]
    optimizer = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weightDecay"])
    proxy = copy.deepcopy(model)
    proxy_optim = torch.optim.SGD(proxy.parameters(), lr=o["lr"])

    if inner == "st":
        x_adv, x_col = st_inner(model, x, y, eps, alpha, steps)
        record["out/x_col"] = x_col
    else:
        x_adv = trades_inner(model, x, eps, alpha, steps)
    record["out/x_adv"] = x_adv
    model.train()

    # calc_awp
    proxy.load_state_dict(model.state_dict())
    proxy.train()
    if inner == "st":
        proxy_loss = st_outer(proxy, x, y, x_adv, x_col, beta)
    else:
        proxy_loss = trades_calc_loss(proxy, x, y, x_adv, beta)
    loss = -1.0 * proxy_loss
    proxy_optim.zero_grad()
    loss.backward()
    proxy_optim.step()
    awp = diff_in_weights(model, proxy)
    # perturb
    add_into_weights(model, awp, coeff=1.0 * gamma)
    for k in awp:
        record[f"perturbed/{k}"] = dict(model.named_parameters())[k].detach().clone()

    optimizer.zero_grad()
    if inner == "st":
        loss = st_outer(model, x, y, x_adv, x_col, beta)
    else:
        loss = trades_awp_loss(model, x, y, x_adv, beta)
    optimizer.zero_grad()
    loss.backward()
    record["out/loss"] = loss.detach().reshape(1)
    for k, p in model.named_parameters():
        record[f"grad/{k}"] = p.grad.detach().clone()
    optimizer.step()
    # restore
    add_into_weights(model, awp, coeff=-1.0 * gamma)
    for k, p in model.named_parameters():
        record[f"restored/{k}"] = p.detach().clone()


# ---------------------------------------------------------------- parity ---
def parity(d):
    manifest, t = read_fixture(d)
    cfg = manifest["config"]
    method = manifest["method"]
    if manifest["model"] == "small_cnn":
        model = SmallCNN(1, cfg["classes"], drop=0.0)
    else:
        model = ResNet18(3, cfg["classes"], width=cfg["width"])
    model = model.double()
    state = {k[len("weights/"):]: v for k, v in t.items() if k.startswith("weights/")}
    model.load_state_dict(state, strict=True)
    x, y = t["x"], t["y"]
    eps, alpha, steps, beta = cfg["epsilon"], cfg["stepSize"], cfg["steps"], cfg["beta"]
    torch.manual_seed(cfg["seed"])
    record = {}
    if method in ("trades", "mart", "collaborative"):
        if method == "trades":
            point = trades_inner(model, x, eps, alpha, steps)
            loss = trades_outer(model, x, y, point, beta)
            record["out/x_adv"] = point
        elif method == "mart":
            point = mart_inner(model, x, y, eps, alpha, steps)
            loss = mart_outer(model, x, y, point, beta)
            record["out/x_adv"] = point
        else:
            point = collaborative_inner(model, x, y, eps, alpha, steps)
            loss = collaborative_outer(model, x, y, point, beta)
            record["out/x_col"] = point
        model.zero_grad()
        loss.backward()
        record["out/loss"] = loss.detach().reshape(1)
        for k, p in model.named_parameters():
            record[f"grad/{k}"] = p.grad
    elif method in ("trades_awp", "st_awp"):
        awp_step(model, x, y, cfg, "st" if method == "st_awp" else "trades", record)
    else:
        raise SystemExit(f"unknown method {method}")
    for k, b in model.named_buffers():
        record[f"after/{k}"] = b

    failures = []
    tolerances = {"grad/": 1e-7}
    print(f"parity {method} on {manifest['model']}: K={steps} batch={x.shape[0]} float64")
    native_names = {k for k in t if "/" in k and not k.startswith("weights/")}
    if native_names != set(record):
        print(f"  tensor sets differ: native only {sorted(native_names - set(record))}, "
              f"reference only {sorted(set(record) - native_names)}")
        failures.append("tensor set")
    worst = {}
    for k in sorted(native_names & set(record)):
        a, b = record[k].detach(), t[k]
        tol = next((v for p, v in tolerances.items() if k.startswith(p)), 1e-9)
        err = (a.to(b.dtype) - b).abs().max().item() / max(b.abs().max().item(), 1e-12)
        group = k.split("/")[0]
        worst[group] = max(worst.get(group, 0.0), err)
        if err > tol:
            print(f"  {k:48s} rel err {err:.2e} (tol {tol:.0e}) MISMATCH")
            failures.append(k)
        elif not k.startswith(("grad/", "after/", "perturbed/", "restored/")):
            print(f"  {k:48s} rel err {err:.2e} (tol {tol:.0e}) ok")
    for group, err in sorted(worst.items()):
        if group in ("grad", "after", "perturbed", "restored"):
            n = sum(1 for k in native_names if k.startswith(group + "/"))
            tol = tolerances.get(group + "/", 1e-9)
            print(f"  {group + '/* (' + str(n) + ' tensors), worst':48s} rel err {err:.2e} (tol {tol:.0e})")
    if failures:
        print(f"parity {method} on {manifest['model']}: {len(failures)} mismatches: {failures}")
        sys.exit(1)
    print(f"parity {method} on {manifest['model']}: ok")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity")
    p.add_argument("dir")
    a = ap.parse_args()
    parity(a.dir)
