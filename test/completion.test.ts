/** Tab completion: the generated bash script, run by bash on typed command lines. */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';

const script = cli('completion', 'bash');
const dir = mkdtempSync(path.join(tmpdir(), 'st-completion-'));
const file = path.join(dir, 'st-native.bash');
writeFileSync(file, script.stdout);

/** What bash offers after the words typed so far (the last one is being completed). */
function complete(...words: string[]): string[] {
  const driver = `source ${JSON.stringify(file)}
COMP_WORDS=(st-native ${words.map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${words.length}
_st_native_complete
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', driver], { encoding: 'utf8', cwd: dir });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.split('\n').filter((l) => l.length > 0);
}

test('completion bash prints a script; an unknown shell is a usage error', (t) => {
  t.is(script.status, 0, script.stderr);
  t.regex(script.stdout, /complete -o default -F _st_native_complete st-native/);
  t.regex(cli('completion', 'zsh').stdout, /^autoload -U \+X bashcompinit && bashcompinit/);
  const fish = cli('completion', 'fish');
  t.is(fish.status, 2);
  t.regex(fish.stderr, /unknown shell "fish"; expected bash or zsh/);
});

test('commands, subcommands and options complete from the command tree', (t) => {
  t.deepEqual(complete('tr'), ['train']);
  t.deepEqual(complete('d'), ['doctor', 'data']);
  t.deepEqual(complete('data', 'f'), ['fetch']);
  t.deepEqual(complete('train', '--pre'), ['--preset']);
  t.deepEqual(complete('eval', 'run', '--eps'), ['--eps', '--eps-l2']);
  // A subcommand's own options, not its parent's.
  t.deepEqual(complete('data', 'fetch', '--d'), ['--data-dir']);
  t.deepEqual(complete('presets', 'show', '--'), ['--json', '--help']);
});

test('option values complete from their known sets', (t) => {
  t.deepEqual(complete('train', '--preset', 'cifar10-resnet18-s'), ['cifar10-resnet18-st']);
  t.deepEqual(complete('train', '--device', ''), ['auto', 'cpu', 'cuda']);
  t.deepEqual(complete('eval', 'run', '--checkpoint', ''), ['best', 'last', 'interrupted', 'ema-best', 'ema-last']);
  t.deepEqual(complete('eval', 'run', '--model', 'wrn34'), ['wrn34_10', 'wrn34_5']);
  // --attacks is a comma list: the last item completes, the ones before stay.
  t.deepEqual(complete('eval', 'run', '--attacks', 'clean,apgd-'), ['clean,apgd-ce', 'clean,apgd-t', 'clean,apgd-dlr']);
  // After a value, options complete again.
  t.deepEqual(complete('train', '--preset', 'mnist-st-quick', '--epo'), ['--epochs']);
});
