/**
 * The report's plots: Vega-Lite specs, compiled by vega-lite and rendered
 * to SVG by vega's headless View (no browser, no canvas: text widths are
 * estimated). Each function takes plain rows, so any caller (a run's
 * report, a sweep, a comparison) draws the same pictures.
 *
 * Layers are named (`points`, `bars`, `labels`, ...): vega writes
 * `<name>_marks` into the mark group's class and each item's data into its
 * aria-label, which is how tests count and read what was drawn.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { EvalRow, RunHistory } from './history.js';

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'bottom' as const, labelLimit: 360 },
  title: { fontSize: 14, anchor: 'start' as const },
};

/** Renders a Vega-Lite spec to an SVG fit to inline in HTML (no namespace URLs, a title for screen readers). */
export async function renderSvg(spec: TopLevelSpec, title: string): Promise<string> {
  // Loaded on first use (~170 ms): the CLI's other commands and the API's
  // other functions do not pay for the plotting libraries.
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new View(parse(compile({ config: CONFIG, ...spec } as TopLevelSpec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // Inline SVG in HTML gets its namespace from the parser: the xmlns
    // attributes only add URLs to a page that must reference none.
    return svg
      .replace(/ xmlns(?::xlink)?="[^"]*"/g, '')
      .replace(/^<svg /, `<svg role="img" aria-label="${escapeAttr(title)}" `)
      .replace(/^(<svg[^>]*>)/, `$1<title>${escapeAttr(title)}</title>`);
  } finally {
    view.finalize();
  }
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const pctAxis = { format: '.0%' } as const;
const pct2 = (x: number) => `${(100 * x).toFixed(2)}%`;

// ------------------------------------------------------------ a run's curves

/** Clean and robust accuracy per evaluated epoch, train accuracy per epoch, the best epoch marked. */
export function accuracySpec(history: RunHistory, bestEpoch: number | null): TopLevelSpec {
  const attack = history.evals[0]?.attack ?? 'attack';
  const rows = [
    ...history.evals.flatMap((e: EvalRow) => [
      { epoch: e.epoch, series: 'clean (eval)', value: e.cleanAcc },
      { epoch: e.epoch, series: `robust (${e.attack})`, value: e.robustAcc },
    ]),
    ...history.epochs.map((e) => ({ epoch: e.epoch, series: 'train (its training inputs)', value: e.trainAcc })),
  ].map((r) => ({ ...r, desc: `epoch ${r.epoch}, ${r.series}: ${pct2(r.value)}` }));
  const best = bestEpoch === null ? [] : [{ epoch: bestEpoch, label: `best: epoch ${bestEpoch}` }];
  return {
    title: `Accuracy per epoch (robust: ${attack})`,
    width: 520,
    height: 260,
    layer: [
      {
        data: { values: rows },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
          y: { field: 'value', type: 'quantitative', title: 'accuracy', axis: pctAxis, scale: { domain: [0, 1] } },
          color: { field: 'series', type: 'nominal', title: null },
        },
        layer: [
          { name: 'lines', mark: 'line' },
          {
            name: 'points',
            mark: { type: 'point', filled: true },
            // Each point's aria-label: its exact value, for screen readers (and tests).
            encoding: { description: { field: 'desc' } },
          },
        ],
      },
      {
        data: { values: best },
        layer: [
          { name: 'best', mark: { type: 'rule', strokeDash: [4, 3], color: '#555' }, encoding: { x: { field: 'epoch', type: 'quantitative' } } },
          { name: 'bestLabel', mark: { type: 'text', align: 'left', dx: 4, dy: 2, baseline: 'top', color: '#555' }, encoding: { x: { field: 'epoch', type: 'quantitative' }, y: { datum: 1 }, text: { field: 'label' } } },
        ],
      },
    ],
  };
}

/** The training loss and its parts (the paper's Fig. 8: CE on x_adv, x, x_col and the regulariser) per epoch. */
export function lossSpec(history: RunHistory): TopLevelSpec {
  const names = { ceAdv: 'CE(x_adv)', ceBenign: 'CE(x)', ceCol: 'CE(x_col)', reg: 'regulariser' } as const;
  const rows = history.epochs.flatMap((e) => [
    { epoch: e.epoch, series: 'loss', value: e.loss },
    ...(Object.keys(names) as (keyof typeof names)[]).flatMap((k) => (e.parts[k] === undefined ? [] : [{ epoch: e.epoch, series: names[k], value: e.parts[k] }])),
  ]).map((r) => ({ ...r, desc: `epoch ${r.epoch}, ${r.series}: ${r.value}` }));
  return {
    title: 'Training loss and its parts per epoch',
    width: 520,
    height: 260,
    data: { values: rows },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: 'per-batch mean' },
      color: { field: 'series', type: 'nominal', title: null },
    },
    layer: [
      { name: 'lines', mark: 'line' },
      {
        name: 'points',
        mark: { type: 'point', filled: true },
        encoding: { description: { field: 'desc' } },
      },
    ],
  };
}

/** The learning rate over training, per logged step. */
export function learningRateSpec(history: RunHistory): TopLevelSpec {
  return {
    title: 'Learning rate',
    width: 520,
    height: 160,
    data: { values: history.lr },
    name: 'lines',
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: 'epoch' },
      y: { field: 'lr', type: 'quantitative', title: 'learning rate', axis: { format: '~g' } },
    },
  };
}

// ------------------------------------------------------------ trade-off (Fig. 6)

/** One trained configuration: its clean and robust accuracy (fractions), with 95% intervals when known. */
export interface TradeOffPoint {
  /** One series per method/regulariser, e.g. "st / js". */
  series: string;
  beta: number | null;
  /** Default "β=<beta>" (or the series when there is no beta). */
  label?: string;
  clean: number;
  robust: number;
  cleanInterval?: readonly [number, number];
  robustInterval?: readonly [number, number];
}

/** Clean vs robust accuracy, one coloured series per method/regulariser, each point labelled by its beta, lines in beta order. */
export function tradeOffSpec(points: readonly TradeOffPoint[], title = 'Clean vs robust accuracy'): TopLevelSpec {
  const rows = points.map((p) => ({
    series: p.series,
    beta: p.beta,
    label: p.label ?? (p.beta === null ? p.series : `β=${p.beta}`),
    desc: `${p.series}, ${p.label ?? (p.beta === null ? p.series : `β=${p.beta}`)}: clean ${pct2(p.clean)}, robust ${pct2(p.robust)}`,
    clean: p.clean,
    robust: p.robust,
    cleanLow: p.cleanInterval?.[0] ?? p.clean,
    cleanHigh: p.cleanInterval?.[1] ?? p.clean,
    robustLow: p.robustInterval?.[0] ?? p.robust,
    robustHigh: p.robustInterval?.[1] ?? p.robust,
  }));
  const x = { field: 'clean', type: 'quantitative', title: 'clean accuracy', axis: pctAxis, scale: { zero: false, padding: 12 } } as const;
  const y = { field: 'robust', type: 'quantitative', title: 'robust accuracy', axis: pctAxis, scale: { zero: false, padding: 12 } } as const;
  const color = { field: 'series', type: 'nominal', title: null } as const;
  const withIntervals = points.some((p) => p.cleanInterval || p.robustInterval);
  return {
    title,
    width: 440,
    height: 340,
    data: { values: rows },
    layer: [
      { name: 'lines', mark: { type: 'line' as const }, encoding: { x, y, color, order: { field: 'beta', type: 'quantitative' } } },
      ...(withIntervals
        ? [
            { name: 'cleanIntervals', mark: { type: 'rule' as const }, encoding: { x: { ...x, field: 'cleanLow' }, x2: { field: 'cleanHigh' }, y, color } },
            { name: 'robustIntervals', mark: { type: 'rule' as const }, encoding: { x, y: { ...y, field: 'robustLow' }, y2: { field: 'robustHigh' }, color } },
          ]
        : []),
      {
        name: 'points',
        mark: { type: 'point' as const, filled: true, size: 60 },
        encoding: {
          x,
          y,
          color,
          description: { field: 'desc' },
        },
      },
      { name: 'labels', mark: { type: 'text' as const, align: 'left', dx: 6, dy: -6, fontSize: 10 }, encoding: { x, y, text: { field: 'label' }, color } },
    ],
  };
}

export function tradeOffSvg(points: readonly TradeOffPoint[], title?: string): Promise<string> {
  return renderSvg(tradeOffSpec(points, title), title ?? 'Clean vs robust accuracy');
}

// ------------------------------------------------------------ means with intervals

/** A bar: a mean (or an accuracy) and its 95% interval, as fractions unless `percent: false`. */
export interface IntervalRow {
  label: string;
  mean: number;
  low: number;
  high: number;
}

export interface IntervalPlotOptions {
  title?: string;
  /** The axis title (default "accuracy"). */
  measure?: string;
  /** Values are fractions shown as percentages (default true). */
  percent?: boolean;
}

/** Horizontal bars at the means with their 95% intervals as whiskers, the value written beside each. */
export function intervalSpec(rows: readonly IntervalRow[], options: IntervalPlotOptions = {}): TopLevelSpec {
  const percent = options.percent ?? true;
  const format = percent ? '.2%' : '.4~g';
  const show = percent ? pct2 : (x: number) => String(Number(x.toPrecision(4)));
  const values = rows.map((r) => ({ ...r, desc: `${r.label}: ${show(r.mean)} (95% interval ${show(r.low)} to ${show(r.high)})` }));
  const y = { field: 'label', type: 'nominal', title: null, sort: null } as const;
  const x = {
    field: 'mean',
    type: 'quantitative',
    title: options.measure ?? 'accuracy',
    ...(percent ? { axis: pctAxis, scale: { domain: [0, 1] } } : {}),
  } as const;
  return {
    title: options.title ?? '',
    width: 420,
    height: { step: 22 },
    data: { values },
    encoding: { y },
    layer: [
      {
        name: 'bars',
        mark: { type: 'bar', color: '#9ecae1' },
        encoding: {
          x,
          description: { field: 'desc' },
        },
      },
      { name: 'intervals', mark: { type: 'rule', color: '#08519c', strokeWidth: 1.5 }, encoding: { x: { ...x, field: 'low' }, x2: { field: 'high' } } },
      { name: 'labels', mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 }, encoding: { x: { field: 'high', type: 'quantitative' }, text: { field: 'mean', type: 'quantitative', format } } },
    ],
  };
}

export function intervalSvg(rows: readonly IntervalRow[], options: IntervalPlotOptions = {}): Promise<string> {
  return renderSvg(intervalSpec(rows, options), options.title ?? 'Means with 95% intervals');
}

// ------------------------------------------------------------ a run's curves as SVG

export interface RunCurves {
  accuracy: string;
  loss: string | null;
  learningRate: string | null;
}

/** The three training plots of a run; a plot without data (no step events logged) is null. */
export async function runCurvesSvg(history: RunHistory, bestEpoch: number | null): Promise<RunCurves> {
  return {
    accuracy: await renderSvg(accuracySpec(history, bestEpoch), 'Accuracy per epoch'),
    loss: history.epochs.length === 0 ? null : await renderSvg(lossSpec(history), 'Training loss and its parts per epoch'),
    learningRate: history.lr.length === 0 ? null : await renderSvg(learningRateSpec(history), 'Learning rate'),
  };
}
