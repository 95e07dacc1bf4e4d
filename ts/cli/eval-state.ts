/**
 * The state behind \`st-native eval\`'s live view: events in, one row per
 * attack out (progress, stage, result), the overall elapsed time and ETA, and
 * the store React reads. No Ink or React here: the command loads those only
 * when a terminal shows the view (see dashboard.ts).
 */
import type { EvalEvent } from '../native-types.js';
import { duration } from '../tui/format.js';

export interface AttackRow {
  name: string;
  /** Images done of `total` (an AutoAttack: of its stage), fractional inside a batch. */
  done: number;
  total: number;
  /** Images scored so far (whole batches) and how many of them held. */
  scored: number;
  correct: number;
  /** An AutoAttack's current stage ("apgd-t 2/4"); its bar counts the stage's images and `correct` the robust ones. */
  stage: string | null;
  /** Whether the current stage is the AutoAttack's last (or the attack has none). */
  lastStage: boolean;
  /** Seconds in the attack (an AutoAttack: the stage) and in the whole attack, at its last `progress` event. */
  elapsed: number | null;
  attackElapsed: number | null;
  /** Set once the attack finished. */
  accuracy: number | null;
  seconds: number | null;
}

export interface EvalViewState {
  rows: AttackRow[];
  samples: number;
  device: string;
  crc: string;
  notices: string[];
}

const empty: EvalViewState = { rows: [], samples: 0, device: '', crc: '', notices: [] };

/** Seconds left at the rate so far (null before any work is done). */
export function etaSeconds(done: number, total: number, elapsed: number): number | null {
  return done > 0 && total > 0 ? (elapsed * Math.max(0, total - done)) / done : null;
}

/**
 * The evaluation's elapsed time (the finished attacks' and the running one's)
 * and ETA: the running attack's (or AutoAttack stage's) time left, exact only
 * when nothing runs after it, else a lower bound (`atLeast`).
 */
export function overall(s: EvalViewState): { elapsed: number; eta: number | null; atLeast: boolean } {
  const finished = s.rows.reduce((sum, r) => sum + (r.seconds ?? 0), 0);
  const running = s.rows.findIndex((r) => r.accuracy === null && r.elapsed !== null);
  if (running < 0) return { elapsed: finished, eta: null, atLeast: false };
  const r = s.rows[running]!;
  return {
    elapsed: finished + (r.attackElapsed ?? 0),
    eta: etaSeconds(r.done, r.total, r.elapsed ?? 0),
    atLeast: !r.lastStage || s.rows.some((o, i) => i !== running && o.accuracy === null),
  };
}

const update = (s: EvalViewState, name: string, f: (r: AttackRow) => AttackRow): EvalViewState => ({
  ...s,
  rows: s.rows.map((r) => (r.name === name ? f(r) : r)),
});

export function reduceEval(s: EvalViewState, e: EvalEvent): EvalViewState {
  switch (e.type) {
    case 'start':
      return {
        ...s,
        samples: e.samples,
        device: e.device,
        crc: e.checkpointCrc32,
        rows: e.attacks.map((name) => ({
          name,
          done: 0,
          total: e.samples,
          scored: 0,
          correct: 0,
          stage: null,
          lastStage: true,
          elapsed: null,
          attackElapsed: null,
          accuracy: null,
          seconds: null,
        })),
      };
    case 'batch':
      return update(s, e.attack, (r) => ({ ...r, done: Math.max(r.done, e.done), scored: e.done, total: e.total, correct: e.correct }));
    case 'progress':
      return update(s, e.attack, (r) => ({ ...r, done: e.done, total: e.total, elapsed: e.seconds, attackElapsed: e.attackSeconds }));
    case 'stage':
      return update(s, e.attack, (r) => ({
        ...r,
        stage: `${e.stage} ${e.stageIndex + 1}/${e.stages}`,
        lastStage: e.stageIndex + 1 === e.stages,
        done: 0,
        scored: 0,
        total: e.points,
        correct: e.robust,
        elapsed: null,
      }));
    case 'attack':
      return update(s, e.name, (r) => ({ ...r, done: e.samples, total: e.samples, correct: e.correct, accuracy: e.accuracy, seconds: e.seconds }));
    case 'notice':
      return { ...s, notices: [...s.notices, e.message] };
  }
}

/** ` · 01:30, ETA 02:10` (elapsed, time left) of a running row; empty before its first `progress` event. */
export function rowTiming(r: Pick<AttackRow, 'done' | 'total' | 'elapsed'>): string {
  if (r.elapsed === null) return '';
  return ` · ${duration(r.elapsed)}, ETA ${duration(etaSeconds(r.done, r.total, r.elapsed) ?? undefined)}`;
}

/** Events in, a snapshot out (React's external store). */
export class EvalStore {
  private state: EvalViewState = empty;
  private readonly listeners = new Set<() => void>();
  getState = (): EvalViewState => this.state;
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
  push(e: EvalEvent): void {
    this.state = reduceEval(this.state, e);
    for (const l of this.listeners) l();
  }
}
