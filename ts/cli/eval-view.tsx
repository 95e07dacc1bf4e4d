/**
 * The live view of `st-native eval` on a terminal: one line per attack
 * (waiting, a progress bar with the accuracy so far and its elapsed time and
 * ETA, or its result), the evaluation's elapsed time and ETA, the growing
 * table, and notices (a batch halved after running out of memory). The bar
 * moves inside a batch: `progress` events count the batch under attack by the
 * share of its iterations done. The state behind it is eval-state.ts.
 */
import React, { useSyncExternalStore } from 'react';
import { Box, Text } from 'ink';
import { bar, duration, pct } from '../tui/format.js';
import { type AttackRow, type EvalStore, type EvalViewState, overall, rowTiming } from './eval-state.js';

/** Images done, whole ones: `30/60`. */
const images = (r: AttackRow): string => `${Math.floor(r.done)}/${r.total}`;

export function EvalRows({ state }: { state: EvalViewState }) {
  const width = Math.max(10, ...state.rows.map((r) => r.name.length));
  const all = overall(state);
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
              {r.stage} {bar(r.done, r.total, 16)} {images(r)} · {r.correct}/{state.samples} robust so far{rowTiming(r)}
            </Text>
          ) : r.done > 0 ? (
            <Text>
              {bar(r.done, r.total, 24)} {images(r)}
              {r.scored > 0 ? ` · ${pct(r.correct / r.scored).trim()} so far` : ''}
              {rowTiming(r)}
            </Text>
          ) : (
            <Text dimColor>waiting</Text>
          )}
        </Text>
      ))}
      {all.eta !== null ? (
        <Text dimColor>
          in all: {duration(all.elapsed)} elapsed, ETA {all.atLeast ? '≥ ' : ''}
          {duration(all.eta)}
          {all.atLeast ? ' (later attacks and stages not counted yet)' : ''}
        </Text>
      ) : null}
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
