"""The device check's orchestrator: runs st-native's measuring binary
(`device_check`, built from native/core/examples/device_check) and the
PyTorch references side by side on one machine, each part under its own
time limit, and writes report.json and report.md to --out (rewritten after
every part, so whatever finished is kept if the whole run is stopped).

Needs Python 3 with torch only (torchattacks travels in the bundle's site/
folder and is put on the path of the step that uses it; it imports numpy
and scipy, which a CUDA image with PyTorch normally has). No network, no
cargo, no Node: benches/device-check.sh builds the bundle where those are,
and runs this there.

    python3 device_check.py --bundle DIR --out DIR [--dry-run] [--device auto|cpu|cuda]

Parts, with their time limits on one H100 (full sizes; --dry-run: tiny
sizes on the CPU, the same code paths, about a minute in all):

  correctness           60 s   ours: device vs CPU, f32, TF32, bf16, channels-last, determinism
  speed                 80 s   ours: ST and PGD-AT steps, ResNet-18, batch 128, 5 variants
  speed-reference       80 s   the authors'-style PyTorch steps, same variants
  autoattack            90 s   ours: brief PGD-AT on synthetic data, then standard AutoAttack, n=500
  autoattack-reference 110 s   torchattacks 3.5.1's AutoAttack components on the same model and images
  memory                60 s   largest ST batch (ResNet-18, WRN-34-10); real OOM -> batch halving
                       ----
                       480 s   (8 minutes) at most, plus about 10 s of start-up
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# Per part: time limit (s) on the device, and the dry run's.
LIMITS = {
    "correctness": (60, 60),
    "speed": (80, 60),
    "speed-reference": (80, 60),
    "autoattack": (90, 60),
    "autoattack-reference": (110, 60),
    "memory": (60, 60),
}


def sizes(dry_run):
    """Flags per part: the device's full sizes, or the dry run's tiny ones."""
    if dry_run:
        model = ["--model", "resnet18", "--width", "8", "--size", "16", "--threads", "1"]
        return {
            "model": model,
            "width": "8",
            "size": "16",
            "correctness": model + ["--batch", "8", "--steps", "2", "--pgd-steps", "3"],
            "speed": model + ["--batch", "8", "--steps", "2", "--warmup", "1", "--iters", "1",
                              "--variants", "f32,bf16,f32+cl", "--methods", "st,pgd_at"],
            # Barely trained and a large radius: every point falls at the
            # first stages, so both sides go through AutoAttack in seconds.
            "autoattack": model + ["--n", "8", "--train-steps", "4", "--train-batch", "16",
                                   "--train-pgd-steps", "1", "--amplitude", "0.3", "--eps", "0.25"],
            "eps": "0.25",
            "memory": model + ["--models", "resnet18", "--start-batch", "64", "--max-batch", "8192",
                               "--halving-n", "2048", "--halving-steps", "1", "--cpu-limit-mb", "96"],
            "n": "8",
        }
    model = ["--model", "resnet18", "--width", "64", "--size", "32"]
    return {
        "model": model,
        "width": "64",
        "size": "32",
        "correctness": model + ["--batch", "32", "--steps", "10", "--pgd-steps", "20"],
        "speed": model + ["--batch", "128", "--steps", "10", "--warmup", "2", "--iters", "10",
                          "--variants", "f32,tf32,bf16,f32+cl,bf16+cl", "--methods", "st,pgd_at"],
        "autoattack": model + ["--n", "500", "--train-steps", "100", "--train-batch", "128",
                               "--train-pgd-steps", "5", "--amplitude", "0.1"],
        "eps": str(8 / 255),
        "memory": ["--size", "32", "--models", "resnet18,wrn34_10", "--start-batch", "128",
                   "--max-batch", "65536", "--halving-n", "32768", "--halving-steps", "2"],
        "n": "500",
    }


def flag(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def run_part(name, cmd, limit, env=None):
    """Runs one part under its limit; never raises."""
    started = time.perf_counter()
    record = {"part": name, "command": cmd, "limitSeconds": limit}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env)
        record.update(rc=p.returncode, timedOut=False, stdout=p.stdout, stderr=p.stderr)
    except subprocess.TimeoutExpired as e:
        decode = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        record.update(rc=None, timedOut=True, stdout=decode(e.stdout), stderr=decode(e.stderr))
    except OSError as e:
        record.update(rc=None, timedOut=False, stdout="", stderr=f"could not start: {e}")
    record["seconds"] = round(time.perf_counter() - started, 2)
    record["lines"] = json_lines(record.pop("stdout"))
    record["stderrTail"] = record.pop("stderr")[-3000:]
    record["ok"] = record["rc"] == 0 and not record["timedOut"]
    status = "ok" if record["ok"] else ("TIMED OUT" if record["timedOut"] else f"FAILED rc={record['rc']}")
    print(f"device-check: {name}: {status} in {record['seconds']} s ({len(record['lines'])} results)", flush=True)
    if not record["ok"] and record["stderrTail"]:
        print(record["stderrTail"][-1500:], file=sys.stderr, flush=True)
    return record


def environment(device):
    import torch

    env = {"python": sys.version.split()[0], "torch": torch.__version__,
           "cudaAvailable": torch.cuda.is_available(), "device": device,
           "ldLibraryPath": os.environ.get("LD_LIBRARY_PATH", "")}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpuMemoryMiB=round(p.total_memory / 2**20), multiprocessors=p.multi_processor_count,
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return env


def write_atomic(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def summary(parts):
    """Every result line that passes or fails something, and the verdict."""
    failures = []
    for p in parts:
        if not p["ok"]:
            failures.append(f"{p['part']}: {'timed out' if p['timedOut'] else 'exit ' + str(p['rc'])}")
        for line in p["lines"]:
            if line.get("pass") is False:
                failures.append(f"{p['part']}: {line.get('check')} {line.get('name', line.get('model', ''))} "
                                f"{line.get('variant', '')}".rstrip())
    return {"pass": not failures, "failures": failures}


def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-2 or abs(v) >= 1e5 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(v)


def markdown(report):
    env = report["environment"]
    out = [f"# st-native device check{' (dry run, CPU)' if report['dryRun'] else ''}", ""]
    out.append(f"- Machine: {env.get('gpu', 'no GPU')}, torch {env['torch']}, Python {env['python']}"
               + (f", CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}" if env.get("gpu") else ""))
    out.append(f"- Verdict: {'PASS' if report['summary']['pass'] else 'FAIL'}; total {report['seconds']} s")
    for f in report["summary"]["failures"]:
        out.append(f"  - {f}")
    out.append("")
    out.append("| part | status | seconds | limit |")
    out.append("| --- | --- | ---: | ---: |")
    for p in report["parts"]:
        status = "ok" if p["ok"] else ("timed out" if p["timedOut"] else f"exit {p['rc']}")
        out.append(f"| {p['part']} | {status} | {p['seconds']} | {p['limitSeconds']} |")
    lines = {p["part"]: p["lines"] for p in report["parts"]}

    corr = [l for l in lines.get("correctness", []) if l.get("check") == "correctness"]
    if corr:
        out += ["", "## Correctness", "", "| check | variant | compared | metric: value (tolerance) | pass |",
                "| --- | --- | --- | --- | --- |"]
        for l in corr:
            m = "; ".join(f"{k}: {fmt(v)} ({fmt(l['tolerances'][k])})" for k, v in l["metrics"].items())
            out.append(f"| {l['name']} | {l['variant']} | {l['compared']} | {m} | {'yes' if l['pass'] else 'NO'} |")

    speed = [l for l in lines.get("speed", []) + lines.get("speed-reference", []) if l.get("check") == "speed"]
    if speed:
        out += ["", "## Training-step speed", "", "| method | variant | implementation | images/s | epoch (50k) s | peak MiB |",
                "| --- | --- | --- | ---: | ---: | ---: |"]
        for l in sorted(speed, key=lambda l: (l["method"], l.get("variant", ""), l["impl"])):
            mem = l.get("memory", {}).get("peakAllocatedMiB", "-")
            impl = "st-native" if l["impl"].startswith("st-native") else "PyTorch reference"
            out.append(f"| {l['method']} | {l.get('variant', '')} | {impl} | {fmt(l['imagesPerSec'], 4)} | "
                       f"{fmt(l['epochSeconds'], 4)} | {mem} |")

    aa = [l for l in lines.get("autoattack", []) + lines.get("autoattack-reference", [])
          if l.get("check") == "autoattack" or l.get("impl") == "torchattacks"]
    if aa:
        out += ["", "## AutoAttack (standard, L-inf)", "", "| implementation | n | clean | robust | seconds | after each stage |",
                "| --- | ---: | ---: | ---: | ---: | --- |"]
        for l in aa:
            stages = ", ".join(f"{k} {fmt(v)}" for k, v in (l.get("stages") or {}).items())
            out.append(f"| {l['impl']} | {l['n']} | {fmt(l['clean'])} | {fmt(l['accuracy'])} | {fmt(l['seconds'], 4)} | {stages} |")

    mem = lines.get("memory", [])
    if mem:
        out += ["", "## Memory", ""]
        for l in mem:
            if l.get("check") == "largest-batch":
                oom = l.get("firstOutOfMemory")
                out.append(f"- {l['model']}, ST step: largest batch that fits {l['largestFitting']}"
                           + (f" (peak {l['memoryAtLargest'].get('peakAllocatedMiB')} MiB)"
                              if isinstance(l.get("memoryAtLargest"), dict) and "peakAllocatedMiB" in l["memoryAtLargest"] else "")
                           + (f"; out of memory at {oom['batch']}: `{oom['message'][:160]}`" if oom else "")
                           + (f"; other error at {l['otherError']['batch']}: `{l['otherError']['message'][:160]}`" if l.get("otherError") else "")
                           + ("; stopped at the cap" if l.get("stoppedAtCap") else ""))
            if l.get("check") == "oom-halving":
                out.append(f"- Batch halving ({l['attack']}, {l['model']}, n={l['n']}): completed {l['completed']}, "
                           f"halved {l['halved']}" + (f", error {l['error']}" if l.get("error") else ""))
                for n in l.get("notices", []):
                    out.append(f"  - {n[:200]}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="the folder device-check.sh bundle made")
    ap.add_argument("--out", required=True, help="where report.json and report.md go")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    ap.add_argument("--device", default=None, help="auto|cpu|cuda (default: cpu for --dry-run, else auto)")
    ap.add_argument("--only", default="", help="comma-separated parts to run (default: all)")
    ap.add_argument("--work", default=None, help="scratch folder (model, images; default: a new temporary one, "
                    "kept out of --out so only the reports come back from a device run)")
    a = ap.parse_args()
    device = a.device or ("cpu" if a.dry_run else "auto")
    binary = os.path.join(a.bundle, "bin", "device_check")
    ref = os.path.join(a.bundle, "reference")
    work = a.work or tempfile.mkdtemp(prefix="st-device-check-")
    os.makedirs(work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    s = sizes(a.dry_run)
    limit = lambda part: LIMITS[part][1 if a.dry_run else 0]
    dev = ["--device", device]
    py = [sys.executable, "-W", "ignore"]
    ref_device = "cpu" if device == "cpu" else "cuda"
    if device == "auto":
        import torch

        ref_device = "cuda" if torch.cuda.is_available() else "cpu"
    py_env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(a.bundle, "site"), ref] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    if a.dry_run:
        py_env["OMP_NUM_THREADS"] = "1"
    aa_dir = os.path.join(work, "autoattack")
    speed_flags = s["speed"]
    parts = [
        ("correctness", [binary, "correctness"] + dev + s["correctness"], None),
        ("speed", [binary, "speed"] + dev + speed_flags, None),
        ("speed-reference", py + [os.path.join(ref, "st_reference.py"), "bench", "--device", ref_device,
                                  "--model", "resnet18", "--width", s["width"], "--size", s["size"],
                                  "--batch", flag(speed_flags, "--batch"), "--steps", flag(speed_flags, "--steps"),
                                  "--warmup", flag(speed_flags, "--warmup"), "--iters", flag(speed_flags, "--iters"),
                                  "--variants", flag(speed_flags, "--variants"), "--methods", flag(speed_flags, "--methods"),
                                  "--epsilon", "8/255", "--step-size", "2/255", "--beta", "6", "--lr", "0.1",
                                  "--weight-decay", "5e-4"], py_env),
        ("autoattack", [binary, "autoattack", "--out", aa_dir] + dev + s["autoattack"], None),
        ("autoattack-reference", py + [os.path.join(ref, "autoattack_reference.py"),
                                       os.path.join(aa_dir, "model.safetensors"), os.path.join(aa_dir, "images.safetensors"),
                                       "aa", "--eps", s["eps"], "--n", s["n"], "--seed", "0", "--model", "resnet18",
                                       "--width", s["width"], "--device", ref_device]
                                 + (["--threads", "1"] if a.dry_run else []), py_env),
        ("memory", [binary, "memory"] + dev + s["memory"] + (["--width", s["width"], "--threads", "1"] if a.dry_run else []), None),
    ]
    only = set(filter(None, a.only.split(",")))
    started = time.perf_counter()
    report = {"dryRun": a.dry_run, "environment": environment(device), "parts": []}

    def save():
        report["seconds"] = round(time.perf_counter() - started, 1)
        report["summary"] = summary(report["parts"])
        write_atomic(os.path.join(a.out, "report.json"), json.dumps(report, indent=2) + "\n")
        write_atomic(os.path.join(a.out, "report.md"), markdown(report))

    for name, cmd, env in parts:
        if only and name not in only:
            continue
        report["parts"].append(run_part(name, cmd, limit(name), env))
        save()
    save()
    print(f"device-check: {'PASS' if report['summary']['pass'] else 'FAIL'} in {report['seconds']} s; "
          f"{os.path.join(a.out, 'report.md')}", flush=True)
    for f in report["summary"]["failures"]:
        print(f"  {f}", flush=True)
    sys.exit(0 if report["summary"]["pass"] else 1)


if __name__ == "__main__":
    main()
