/**
 * Run folders written by hand, in the shapes run-dir.ts and evaluate.ts
 * write, for the report tests: no training needed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface FixtureRun {
  method?: string;
  reg?: string;
  beta?: number;
  seed?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Evaluate every epoch (default) or none. */
  evaluated?: boolean;
  /** Write eval-best.json and one kept in eval-history/. */
  evaluations?: boolean;
  /** Clean accuracy of the last epoch, robust follows it (for trade-off plots). */
  clean?: number;
  robust?: number;
}

export const PROVENANCE = {
  stNative: '0.1.0',
  gitCommit: 'abc1234',
  libtorch: '2.11.0',
  node: 'v20.20.2',
  host: 'fixture-host',
  platform: 'linux-x64',
  openmpWait: 'GOMP_SPINCOUNT=20000',
  time: '2026-12-05T06:00:00.000Z',
  command: "st-native train --set 'method.beta=6'",
};

const lossParts = (e: number) => ({ ceAdv: 2 / e, ceBenign: 1 / e, ceCol: 1.5 / e, reg: 0.1 / e });

export function evaluationJson(seed: number, time: string) {
  const n = 200;
  const attack = (name: string, kind: string, correct: number, extra: object = {}) => ({
    name,
    spec: kind === 'clean' ? { kind, name } : { kind, name, norm: 'linf', epsilon: 0.3, stepSize: 0.01, steps: 20, restarts: 1, randomStart: true, keep: 'best' },
    accuracy: correct / n,
    correct,
    samples: n,
    batchSize: 100,
    seed,
    maxPerturbation: 0.3,
    seconds: 1.5,
    stages: null as { name: string; attacked: number; correct: number; accuracy: number; seconds: number }[] | null,
    resumed: false,
    // Wilson intervals as evaluate.ts stores them; values chosen by hand (the report must print what is stored).
    interval95: [correct / n - 0.0512, Math.min(1, correct / n + 0.0487)],
    ...extra,
  });
  return {
    checkpoint: 'checkpoints/best.safetensors',
    checkpointCrc32: 'deadbeef',
    verified: true,
    model: 'small_cnn',
    numClasses: 10,
    epoch: 3,
    device: 'cpu',
    libtorch: '2.11.0',
    seed,
    samples: n,
    batchSize: 100,
    normalize: null,
    cleanAccuracy: 0.935,
    attacks: [
      attack('clean', 'clean', 187),
      attack('pgd20', 'pgd', 121),
      attack('aa', 'autoAttack', 109, {
        spec: { kind: 'autoAttack', name: 'aa', norm: 'linf', epsilon: 0.3, version: 'standard' },
        stages: [
          { name: 'apgd-ce', attacked: 187, correct: 115, accuracy: 115 / n, seconds: 3.25 },
          { name: 'apgd-t', attacked: 115, correct: 110, accuracy: 110 / n, seconds: 9.5 },
          { name: 'fab-t', attacked: 110, correct: 110, accuracy: 110 / n, seconds: 4 },
          { name: 'square', attacked: 110, correct: 109, accuracy: 109 / n, seconds: 20 },
        ],
      }),
    ],
    worstCase: { accuracy: 108 / n, correct: 108, over: ['clean', 'pgd20', 'aa'], interval95: [0.4712, 0.6071] },
    run: null,
    notices: ['a fixture notice'],
    adversarialFile: null,
    seconds: 40,
    target: { kind: 'run', runDir: '.', checkpoint: 'best' },
    dataset: 'mnist-embedded',
    split: 'test',
    files: { json: 'eval-best.json', markdown: 'eval-best.md' },
    provenance: { ...PROVENANCE, time },
  };
}

/** Writes a run folder `dir` and returns its per-epoch evals as written. */
export function writeFixtureRun(dir: string, o: FixtureRun = {}) {
  const epochs = o.epochs ?? 4;
  const steps = o.stepsPerEpoch ?? 5;
  const method = { name: o.method ?? 'st', reg: o.reg ?? 'js', beta: o.beta ?? 6, epsilon: 0.3, stepSize: 0.01, steps: 10 };
  mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  const config = { method, model: 'small_cnn', dataset: { name: 'mnist-embedded', trainSize: null, testSize: null }, epochs, seed: o.seed ?? 0, runName: null };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ config, native: {}, provenance: PROVENANCE }, null, 2));
  const lines: object[] = [{ type: 'start', model: 'small_cnn', parameters: 1000, device: 'cpu', method: method.name, trainSize: 100, testSize: 200, epochs, stepsPerEpoch: steps, startEpoch: 0 }];
  const evals: { epoch: number; cleanAcc: number; robustAcc: number }[] = [];
  const clean = o.clean ?? 0.9;
  const robust = o.robust ?? 0.5;
  for (let e = 1; e <= epochs; e++) {
    for (let s = 1; s <= steps; s++) {
      lines.push({ type: 'step', epoch: e, step: s, stepsPerEpoch: steps, lr: e <= 2 ? 0.01 : 0.001, loss: 1, parts: lossParts(e), imagesPerSec: 100, elapsedSec: 1 });
    }
    lines.push({ type: 'epoch', epoch: e, loss: 3 / e, parts: lossParts(e), trainAcc: 0.5 + e / 20, seconds: 1, imagesPerSec: 100 });
    if (o.evaluated !== false) {
      const r = { epoch: e, split: 'test', cleanAcc: clean - (epochs - e) * 0.05, robustAcc: robust - (epochs - e) * 0.04, attack: 'pgd-20', samples: 200, seconds: 0.5 };
      evals.push(r);
      lines.push({ type: 'eval', ...r });
    }
  }
  const best = evals.at(-1) ?? null;
  const summary = { status: 'completed', epochsCompleted: epochs, selectedOn: 'test', best: best && { ...best, split: 'test' }, last: best, test: best, lastCheckpoint: 'checkpoints/last.safetensors', bestCheckpoint: 'checkpoints/best.safetensors', seconds: 12 };
  lines.push({ type: 'done', ...summary });
  writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => `${JSON.stringify({ time: '2026-12-05T06:00:00.000Z', ...l })}\n`).join(''));
  writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
  if (o.evaluations) {
    writeFileSync(path.join(dir, 'eval-best.json'), JSON.stringify(evaluationJson(0, '2026-12-05T07:00:00.000Z'), null, 2));
    mkdirSync(path.join(dir, 'eval-history'));
    writeFileSync(path.join(dir, 'eval-history', 'eval-best-2026-12-05T06-30-00.json'), JSON.stringify(evaluationJson(1, '2026-12-05T06:30:00.000Z'), null, 2));
  }
  return { evals, epochs, steps, summary };
}
