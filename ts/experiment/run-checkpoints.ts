/**
 * A run folder's checkpoints (`<run>/checkpoints/<name>.safetensors`): the
 * trained weights' `best`, `last` and `interrupted`, and with weight
 * averaging (`ema`) the average's `ema-best` and `ema-last` (README:
 * "Weight averaging (EMA)"). Its own module so the CLI's option table and
 * the API's option schema can name them without loading the evaluator.
 */
export const RUN_CHECKPOINTS = ['best', 'last', 'interrupted', 'ema-best', 'ema-last'] as const;
export type RunCheckpoint = (typeof RUN_CHECKPOINTS)[number];
