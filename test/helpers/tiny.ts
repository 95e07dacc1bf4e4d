/** The smallest training the config allows to be meaningful: 128 digits, one epoch, one attack step, one thread. */
import type { ConfigOverrides } from '../../ts/config/presets.js';

export const tiny = (runsDir: string): ConfigOverrides[] => [
  { dataset: { trainSize: 128, testSize: 32 }, epochs: 1, batchSize: 32, device: 'cpu', threads: 1, runsDir, method: { steps: 1 }, eval: { steps: 1 } },
];

/** The same as `--set` arguments for the CLI. */
export const tinyArgs = (runsDir: string): string[] => [
  '--device', 'cpu', '--epochs', '1', '--runs-dir', runsDir,
  '--set', 'threads=1', '--set', 'batchSize=32', '--set', 'dataset.trainSize=128', '--set', 'dataset.testSize=32',
  '--set', 'method.steps=1', '--set', 'eval.steps=1',
];
