export { writeFileAtomic, writeJsonAtomic } from './files.js';
export { createRunDir, MetricsLog, type RunDir } from './run-dir.js';
export { runExperiment, type RunOptions, type RunResult } from './run.js';
export { evaluateRun, readRunConfig, type EvaluateOptions } from './evaluate.js';
