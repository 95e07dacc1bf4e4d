/**
 * This process's rank in a data-parallel job started by `torchrun` or
 * Slurm's `srun`, read from the same variables as the native core
 * (native/core/src/distributed/launcher.rs): WORLD_SIZE > 1 with RANK, or
 * inside an srun step SLURM_NTASKS > 1 with SLURM_PROCID. The core joins the
 * job and checks the variables (a bad value fails the run with a message
 * naming it); here the rank only decides who writes: rank 0 makes the run
 * folder, its config, metrics, summary and report and may show the
 * dashboard; the other ranks write nothing and print plain lines.
 */
export interface LaunchRank {
  rank: number;
  worldSize: number;
}

function whole(v: string | undefined): number | null {
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return null;
  return Number(v);
}

/** The rank and world size, or null outside a job of more than one process. */
export function launchRank(env: NodeJS.ProcessEnv = process.env): LaunchRank | null {
  const set = (k: string) => env[k] !== undefined && env[k] !== '';
  let world: number | null;
  let rank: number | null;
  if (set('WORLD_SIZE')) {
    world = whole(env.WORLD_SIZE);
    rank = whole(env.RANK);
  } else if (set('SLURM_PROCID') && set('SLURM_STEP_ID')) {
    world = whole(env.SLURM_NTASKS);
    rank = whole(env.SLURM_PROCID);
  } else {
    return null;
  }
  if (world === null || world <= 1) return null;
  // A bad rank is the core's to report; until then this process writes nothing.
  return { rank: rank ?? -1, worldSize: world };
}

/** Whether this process writes the run's files: a single process, or rank 0. */
export function writesRunFiles(env: NodeJS.ProcessEnv = process.env): boolean {
  const l = launchRank(env);
  return l === null || l.rank === 0;
}
