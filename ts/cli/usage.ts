/** Help texts, one per command. */
export const usage = {
  main: `st-native: adversarial training (Squeeze Training, ICLR 2023) on a Rust/libtorch core

Usage: st-native <command> [options]

Commands:
  train     train a model (default: ST on the embedded MNIST digits)
  eval      evaluate a run's checkpoint on its held-out split
  models    list the available models with parameter counts
  presets   list the named presets
  setup     install libtorch 2.11.0 into the per-user cache (once per machine)
  doctor    check what st-native would run on: addon, libtorch, CUDA, GPUs, folders

Run \`st-native <command> --help\` for a command's options.`,
  train: `Usage: st-native train [options]

Options:
  --preset NAME          start from a named preset (default: mnist-st-quick; see \`st-native presets\`)
  --config FILE          JSON overrides, e.g. {"method": {"beta": 6}, "epochs": 5}
  --set KEY.PATH=VALUE   one override (repeatable), e.g. --set method.beta=6 --set eval.steps=50;
                         VALUE is read as JSON when it parses (6, true, null, [80,100], '"2024"'), else as text
  --epochs N             shorthand for --set epochs=N
  --device D             auto | cpu | cuda
  --runs-dir DIR         where run folders go (default: runs)
  --name NAME            run folder name (default: <time>-<method>)
  --json                 print one JSON event per line on stdout, nothing else
  -h, --help             this text

Overrides apply in order: preset, --config, --set, then the shorthands. Unknown fields are errors.
On a terminal a live dashboard shows progress; otherwise plain progress lines (or --json).

Ctrl-C (or SIGTERM, SIGHUP) stops within one training step and saves
checkpoints/interrupted.safetensors; a second one quits at once (completed epochs'
checkpoints stay). A closed stdout (| head) stops the run the same way, quietly.
Exit codes: 0 done, 1 failed, 2 invalid config or usage, 130 Ctrl-C, 143 SIGTERM,
129 SIGHUP, 141 stdout closed.`,
  eval: `Usage: st-native eval <runDir> [options]

Options:
  --checkpoint WHICH     best | last | interrupted (default: best)
  --set eval.KEY=VALUE   override the run's evaluation settings, e.g. --set eval.steps=100
  --device D             auto | cpu | cuda
  --json                 print the result as JSON
  -h, --help             this text

Re-evaluating with the run's own settings reproduces its reported numbers
(PGD's random starts are seeded per run and epoch).`,
  models: `Usage: st-native models [--json]

Lists the models the native core registers: name, input shape, parameter count
(for 10 classes) and description. Needs the built addon.

Options:
  --json                 print the list as JSON
  -h, --help             this text`,
  presets: `Usage: st-native presets [--json]

Lists the named presets \`train --preset\` accepts, each a small override of the
base config. The default is mnist-st-quick.

Options:
  --json                 print the presets (name, description, overrides) as JSON
  -h, --help             this text`,
  setup: `Usage: st-native setup [--cpu | --cuda] [--force] [--json]

Installs libtorch 2.11.0 (the version st-native is built against) from PyPI
with pip into the per-user cache, $ST_NATIVE_CACHE_DIR or
$XDG_CACHE_HOME/st-native (default ~/.cache/st-native), where st-native finds
it at run time. Needs Python 3.10-3.14 with pip (ST_NATIVE_PYTHON, else python3).

Options:
  --cpu                  libtorch without its CUDA libraries (about 0.55 GB to download)
  --cuda                 torch==2.11.0 with its CUDA libraries (about 2.7 GB to download, 4.6 GB on disk)
  --force                reinstall even when a complete install is there
  --json                 print one JSON result line on stdout (pip's progress stays on stderr)
  -h, --help             this text

Without --cpu or --cuda: --cuda where an NVIDIA driver is loaded
(/proc/driver/nvidia or /dev/nvidiactl), else --cpu.
Rerunning is a no-op once installed. Interrupting is safe: nothing is put in
place until the install is complete, and leftovers are removed by the next run.
Exit codes: 0 installed (or already there), 1 failed, 2 usage, 130 Ctrl-C.`,
  doctor: `Usage: st-native doctor [--json]

Reports what st-native runs on: which addon package loaded and from where,
where libtorch came from and its version, CUDA and cuDNN availability (and why
not), GPUs with their memory, cores and threads, the cache and data folders,
the datasets present, and each problem with the command that fixes it.

libtorch is searched in this order: ST_NATIVE_LIBTORCH, LIBTORCH (a libtorch
folder or its lib/), the torch of ST_NATIVE_PYTHON (else python3), this
package's .venv, then the cache that \`st-native setup\` fills.

Options:
  --json                 print the report as JSON
  -h, --help             this text

Exit codes: 0 training can run, 1 it cannot (no usable libtorch, or the addon does not load).`,
} as const;
