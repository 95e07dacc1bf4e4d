/** Help texts, one per command. */
export const usage = {
  main: `st-native: adversarial training (Squeeze Training, ICLR 2023) on a Rust/libtorch core

Usage: st-native <command> [options]

Commands:
  train     train a model (default: ST on the embedded MNIST digits)
  eval      evaluate a run's checkpoint on its held-out split
  models    list the available models with parameter counts
  presets   list the named presets

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
} as const;
