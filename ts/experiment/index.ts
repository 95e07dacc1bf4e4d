export { writeFileAtomic, writeJsonAtomic } from './files.js';
export { createRunDir, MetricsLog, type RunDir } from './run-dir.js';
export { runExperiment, type RunOptions, type RunResult } from './run.js';
export {
  evaluateAttacks,
  evaluateRun,
  markdownReport,
  PAPER_ATTACKS,
  readRunConfig,
  resolveAttack,
  RUN_ATTACKS,
  type AttackEvaluateOptions,
  type AttackInput,
  type EvaluateOptions,
  type Evaluation,
} from './evaluate.js';
