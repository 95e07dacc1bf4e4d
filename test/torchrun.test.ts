/**
 * `torchrun --no-python` starts st-native as a data-parallel job: two CPU
 * ranks over Gloo on loopback, launched by the provisioning Python's torch
 * (`python -m torch.distributed.run`, i.e. torchrun). Rank 0 makes the run
 * folder and prints the --json events; rank 1 prints prefixed plain lines
 * on stderr and writes nothing.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { launchRank, writesRunFiles } from '../ts/experiment/launch.js';
import { root } from './helpers/cli.js';
import { needsTorchPython } from './helpers/torch-python.js';

const { findTorchPython } = (await import(pathToFileURL(path.join(root, 'scripts', 'libtorch.mjs')).href)) as { findTorchPython: () => string | null };
const python = findTorchPython();

test('the rank comes from torchrun or an srun step, as the core reads it; only rank 0 or a single process writes', (t) => {
  t.is(launchRank({}), null);
  t.is(launchRank({ WORLD_SIZE: '1', RANK: '0' }), null);
  t.deepEqual(launchRank({ WORLD_SIZE: '4', RANK: '3', MASTER_ADDR: 'h', MASTER_PORT: '1' }), { rank: 3, worldSize: 4 });
  t.deepEqual(launchRank({ SLURM_PROCID: '1', SLURM_NTASKS: '2', SLURM_STEP_ID: '0' }), { rank: 1, worldSize: 2 });
  // A batch script (no srun step) is a single process.
  t.is(launchRank({ SLURM_PROCID: '0', SLURM_NTASKS: '8' }), null);
  t.true(writesRunFiles({}));
  t.true(writesRunFiles({ WORLD_SIZE: '2', RANK: '0' }));
  t.false(writesRunFiles({ WORLD_SIZE: '2', RANK: '1' }));
  // A bad rank writes nothing (the core refuses it with a message naming RANK).
  t.false(writesRunFiles({ WORLD_SIZE: '2', RANK: 'x' }));
});

if (python === null) {
  needsTorchPython('torchrun data-parallel run');
} else {
  test('torchrun --nproc-per-node 2 --no-python st-native train runs one job of two ranks; rank 0 alone writes', (t) => {
    const runs = mkdtempSync(path.join(tmpdir(), 'st-torchrun-'));
    const started = Date.now();
    const r = spawnSync(
      python,
      [
        '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', '--no-python',
        process.execPath, path.join(root, 'bin', 'st-native.js'),
        'train', '--json', '--no-report', '--runs-dir', runs, '--name', 'ddp', '--epochs', '1', '--device', 'cpu',
        '--preset', 'mnist-natural-quick', '--set', 'dataset.trainSize=96', '--set', 'dataset.testSize=16',
        '--set', 'batchSize=16', '--set', 'eval.steps=1',
      ],
      { encoding: 'utf8', env: { ...process.env, CI: 'true', OMP_NUM_THREADS: '1' }, timeout: 120_000 },
    );
    t.log(`torchrun took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
    // Rank 0's events: 96 images in global batches of 2 × 16 = 3 steps.
    const events = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; stepsPerEpoch?: number; status?: string });
    const start = events.find((e) => e.type === 'start');
    t.is(start?.stepsPerEpoch, 3);
    t.is(events.filter((e) => e.type === 'done').length, 1, 'one rank reports on stdout');
    t.is(events.find((e) => e.type === 'done')?.status, 'completed');
    t.regex(r.stderr, /\[rank 1\/2\] start: natural on small_cnn/);
    t.regex(r.stderr, /\[rank 1\/2\] completed after 1 epoch; rank 0 wrote the run folder/);
    // Rank 1 trains and does not evaluate (rank 0 alone does).
    t.regex(r.stderr, /\[rank 1\/2\] epoch 1 trained in [^\n]*img\/s\n/);
    // One run folder, rank 0's, with its checkpoints and summary.
    t.deepEqual(readdirSync(runs), ['ddp']);
    const files = readdirSync(path.join(runs, 'ddp', 'checkpoints')).sort();
    t.true(files.includes('last.safetensors') && files.includes('resume.safetensors'), files.join(', '));
    const summary = JSON.parse(readFileSync(path.join(runs, 'ddp', 'summary.json'), 'utf8')) as { status: string; epochsCompleted: number };
    t.is(summary.status, 'completed');
    t.is(summary.epochsCompleted, 1);
  });
}
