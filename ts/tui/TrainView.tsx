/**
 * The `train` dashboard: finished epochs in <Static> (printed once, never
 * redrawn), and below it a live region with progress bars, the loss parts,
 * throughput and ETA.
 */
import React from 'react';
import { Box, Static, Text } from 'ink';
import { bar, duration, etaText, lr, num, pct } from './format.js';

/** A no-break space: a label and its value wrap together at narrow widths. */
const NB = '\u00a0';
import { epochEtaSeconds, evalEtaSeconds, pendingRow, runEtaOf, settledRows, type EpochRow, type TrainViewState } from './state.js';

function EpochLine({ row }: { row: EpochRow }) {
  return (
    <Text>
      {String(row.epoch).padStart(5)}  {pct(row.eval?.cleanAcc)}  {pct(row.eval?.robustAcc)}  {num(row.loss).padStart(7)}
      {'  '}
      {pct(row.trainAcc)}  {duration(row.seconds + (row.eval?.seconds ?? 0)).padStart(7)}
      {row.best === 'new' ? <Text color="green">  ★ new best</Text> : row.best === 'tied' ? <Text dimColor>  tied best</Text> : null}
    </Text>
  );
}

/**
 * `nowMs`: the wall clock at this render (the App's tick), from which the
 * ETAs count down since the latest event; without it they are as measured.
 */
export function TrainView({ state, nowMs }: { state: TrainViewState; nowMs?: number }) {
  const s = state;
  const evaluating = s.phase === 'evaluating' || s.phase === 'testing';
  const progress = evaluating ? s.evalProgress : undefined;
  const firstEval = s.rows.find((r) => r.eval)?.eval;
  const attack = firstEval?.attack ?? 'pgd-20';
  const header = `${'epoch'.padStart(5)}  ${'clean'.padStart(6)}  ${attack.padStart(6)}  ${'loss'.padStart(7)}  ${'train'.padStart(6)}  ${'time'.padStart(7)}`;
  // Static prints each item once and never again, so only settled rows go
  // there (see isSettled); the newest row stays live until its best marker is known.
  const finished = settledRows(s);
  const pending = pendingRow(s);
  return (
    <Box flexDirection="column">
      <Static items={[{ key: 'header' }, ...finished.map((r) => ({ key: `e${r.epoch}`, row: r }))]}>
        {(item) =>
          'row' in item && item.row ? (
            <EpochLine key={item.key} row={item.row} />
          ) : (
            <Text key={item.key} bold>
              {header}
            </Text>
          )
        }
      </Static>
      {pending ? <EpochLine row={pending} /> : null}
      {firstEval?.split === 'validation' ? <Text dimColor>(per-epoch accuracy on the validation split)</Text> : null}
      {s.finalTest ? (
        <Text>
          best checkpoint (epoch {s.finalTest.epoch}) on test: clean {pct(s.finalTest.cleanAcc).trim()}, {s.finalTest.attack}{' '}
          {pct(s.finalTest.robustAcc).trim()}
        </Text>
      ) : null}
      {s.phase === 'done' ? null : (
        <Box flexDirection="column" marginTop={1}>
          <Text dimColor>
            {s.method ?? '…'} · {s.model ?? '…'} ({s.parameters?.toLocaleString('en-US') ?? '?'} params) · {s.device ?? '…'} · lr {lr(s.lr)}
          </Text>
          {s.stopping ? (
            <Text color="yellow">
              stopping after this {evaluating ? 'evaluation batch' : 'step'} and saving checkpoints/interrupted.safetensors… (Ctrl-C again quits at once)
            </Text>
          ) : null}
          <Text>
            epoch {bar(s.epoch - 1 + (s.stepsPerEpoch ? s.step / s.stepsPerEpoch : 0), s.epochs)} {s.epoch}/{s.epochs}
          </Text>
          <Text>
            batch {bar(s.step, s.stepsPerEpoch)} {s.step}/{s.stepsPerEpoch}
            {evaluating && !progress ? <Text color="yellow"> evaluating…</Text> : null}
          </Text>
          {progress ? (
            <Text>
              {progress.phase === 'finalTest' ? 'test ' : 'eval '} <Text color="yellow">{bar(progress.done, progress.total)}</Text>{' '}
              {`${progress.done}/${progress.total}`} · ETA{NB}{duration(evalEtaSeconds(s, nowMs))}
            </Text>
          ) : null}
          <Text>
            CE{NB}adv{NB}<Text color="red">{num(s.parts.ceAdv)}</Text> · benign{NB}{num(s.parts.ceBenign)} · col{NB}
            <Text color="cyan">{num(s.parts.ceCol)}</Text> · reg{NB}{num(s.parts.reg, 4)} · loss{NB}{num(s.loss)}
          </Text>
          <Text>
            {s.imagesPerSec === undefined ? '-' : s.imagesPerSec.toFixed(0)}{NB}img/s
            {s.phase === 'training' ? ` · epoch${NB}ETA${NB}${duration(epochEtaSeconds(s, nowMs))}` : ''} · run{NB}ETA{NB}{etaText(runEtaOf(s, nowMs))} · elapsed{NB}
            {duration(s.elapsedSec)}
          </Text>
        </Box>
      )}
    </Box>
  );
}
