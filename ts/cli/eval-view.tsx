/**
 * The live view of `st-native eval` on a terminal: one line per attack
 * (waiting, a progress bar with the accuracy so far, or its result), the
 * growing table, and notices (a batch halved after running out of memory).
 */
import React, { useSyncExternalStore } from 'react';
import { Box, Text } from 'ink';
import type { EvalEvent } from '../native-types.js';
import { bar, duration, pct } from '../tui/format.js';

interface AttackRow {
  name: string;
  done: number;
  total: number;
  correct: number;
  /** An AutoAttack's current stage ("apgd-t 2/4"); its bar counts the stage's images and `correct` the robust ones. */
  stage: string | null;
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

export function reduceEval(s: EvalViewState, e: EvalEvent): EvalViewState {
  switch (e.type) {
    case 'start':
      return {
        ...s,
        samples: e.samples,
        device: e.device,
        crc: e.checkpointCrc32,
        rows: e.attacks.map((name) => ({ name, done: 0, total: e.samples, correct: 0, stage: null, accuracy: null, seconds: null })),
      };
    case 'batch':
      return { ...s, rows: s.rows.map((r) => (r.name === e.attack ? { ...r, done: e.done, total: e.total, correct: e.correct } : r)) };
    case 'stage':
      return {
        ...s,
        rows: s.rows.map((r) => (r.name === e.attack ? { ...r, stage: `${e.stage} ${e.stageIndex + 1}/${e.stages}`, done: 0, total: e.points, correct: e.robust } : r)),
      };
    case 'attack':
      return {
        ...s,
        rows: s.rows.map((r) => (r.name === e.name ? { ...r, done: e.samples, total: e.samples, correct: e.correct, accuracy: e.accuracy, seconds: e.seconds } : r)),
      };
    case 'notice':
      return { ...s, notices: [...s.notices, e.message] };
  }
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

export function EvalRows({ state }: { state: EvalViewState }) {
  const width = Math.max(10, ...state.rows.map((r) => r.name.length));
  return (
    <Box flexDirection="column">
      <Text>
        {state.samples} images · {state.device} · checkpoint crc32 {state.crc}
      </Text>
      {state.rows.map((r) => (
        <Text key={r.name}>
          {r.name.padEnd(width)}{' '}
          {r.accuracy !== null ? (
            <Text color="green">
              {pct(r.accuracy)} ({r.correct}/{r.total}) in {duration(r.seconds ?? 0)}
            </Text>
          ) : r.stage !== null ? (
            <Text>
              {r.stage} {bar(r.done, r.total, 24)} {r.done}/{r.total} · {r.correct}/{state.samples} robust so far
            </Text>
          ) : r.done > 0 ? (
            <Text>
              {bar(r.done, r.total, 24)} {r.done}/{r.total} · {pct(r.correct / r.done).trim()} so far
            </Text>
          ) : (
            <Text dimColor>waiting</Text>
          )}
        </Text>
      ))}
      {state.notices.map((n, i) => (
        <Text key={i} color="yellow">
          note: {n}
        </Text>
      ))}
    </Box>
  );
}

export function EvalView({ store }: { store: EvalStore }) {
  const state = useSyncExternalStore(store.subscribe, store.getState);
  return <EvalRows state={state} />;
}
