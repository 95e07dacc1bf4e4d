/**
 * The part of a folder report that a seeds group or a sweep adds: its
 * results.json summarised (every metric as mean ± 95% CI over the seeds),
 * and for a sweep the paper's Fig. 6 from the cells' means: clean vs robust
 * per cell (one series per method/regulariser, labelled by β, whiskers the
 * 95% CI over seeds when there are several), and each cell's means with
 * their intervals as bars.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { esc, figure, section, table, type Cell } from './html.js';
import { intervalSvg, tradeOffSvg, type IntervalRow, type TradeOffPoint } from './plots.js';

interface Metric {
  key: string;
  label: string;
  kind: string;
  n: number;
  mean: number;
  ci95: number | null;
  low: number | null;
  high: number | null;
}

interface SweepResults {
  kind: 'st-native-sweep-results';
  seeds: number[];
  cells: { id: string; dir: string; values: Record<string, unknown>; status: string; metrics: Metric[] }[];
}

interface SeedsResults {
  kind: 'st-native-seeds-results';
  seeds: number[];
  metrics: Metric[];
}

function readResults(dir: string): SweepResults | SeedsResults | null {
  const file = path.join(dir, 'results.json');
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as { kind?: string };
    if (r.kind === 'st-native-sweep-results' || r.kind === 'st-native-seeds-results') return r as SweepResults | SeedsResults;
  } catch {
    /* a torn or foreign results.json: the plain folder report */
  }
  return null;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const withCi = (m: Metric) => (m.kind === 'accuracy' ? `${pct(m.mean)}${m.ci95 === null ? '' : ` ± ${(100 * m.ci95).toFixed(2)}`}` : `${m.mean.toFixed(1)}${m.ci95 === null ? '' : ` ± ${m.ci95.toFixed(1)}`}`);
const num = (s: string): Cell => ({ html: esc(s), numeric: true });
const interval = (m: Metric): readonly [number, number] | undefined => (m.low !== null && m.high !== null ? [m.low, m.high] : undefined);
const bar = (label: string, m: Metric): IntervalRow => ({ label, mean: m.mean, low: m.low ?? m.mean, high: m.high ?? m.mean });
const valueText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** A cell's method, regulariser and beta, from the config its seeds group recorded. */
function cellMethod(dir: string): { series: string; beta: number | null } {
  try {
    const c = (JSON.parse(readFileSync(path.join(dir, 'seeds.json'), 'utf8')) as { config: { method?: { name?: string; reg?: string; beta?: number } } }).config;
    const m = c.method ?? {};
    return { series: `${m.name ?? 'run'}${m.reg !== undefined ? ` / ${m.reg}` : ''}`, beta: typeof m.beta === 'number' ? m.beta : null };
  } catch {
    return { series: 'run', beta: null };
  }
}

/** The sections (and their nav entries) a seeds group or sweep adds to its folder report; none for other folders. */
export async function groupSections(dir: string): Promise<{ body: string[]; nav: [string, string][] }> {
  const r = readResults(dir);
  if (!r) return { body: [], nav: [] };
  const note = `mean ± half-width of the 95% confidence interval (Student t, n−1) over seeds ${r.seeds.join(', ')}`;
  if (r.kind === 'st-native-seeds-results') {
    const accuracy = r.metrics.filter((m) => m.kind === 'accuracy');
    const rows = r.metrics.map((m) => [m.label, num(withCi(m)), num(String(m.n))]);
    return {
      nav: [['seeds', 'Seeds']],
      body: [
        section(
          'seeds',
          `Over ${r.seeds.length} seed${r.seeds.length === 1 ? "" : "s"}`,
          table(['metric', 'mean ± 95% CI', 'n'], rows, note) +
            (accuracy.length > 0 ? figure(await intervalSvg(accuracy.map((m) => bar(m.label, m)), { title: 'Mean accuracy over the seeds' }), 'Bars: means; whiskers: 95% confidence intervals over the seeds.') : ''),
        ),
      ],
    };
  }
  const axes = Object.keys(r.cells[0]?.values ?? {});
  const cells = r.cells.map((c) => ({ ...c, clean: c.metrics.find((m) => m.key === 'clean'), robust: c.metrics.find((m) => m.key === 'robust') }));
  const rows = cells.map((c) => [c.id, ...axes.map((a) => valueText(c.values[a])), num(c.clean ? withCi(c.clean) : '—'), num(c.robust ? withCi(c.robust) : '—'), num(String(c.clean?.n ?? 0)), c.status]);
  const robustLabel = cells.find((c) => c.robust)?.robust?.label ?? 'robust';
  const points: TradeOffPoint[] = cells.flatMap((c) => {
    if (!c.clean || !c.robust) return [];
    const { series, beta } = cellMethod(path.join(dir, c.dir));
    const ci = interval(c.clean);
    const ri = interval(c.robust);
    return [{ series, beta, ...(beta === null ? { label: c.id } : {}), clean: c.clean.mean, robust: c.robust.mean, ...(ci ? { cleanInterval: ci } : {}), ...(ri ? { robustInterval: ri } : {}) }];
  });
  const bars = cells.flatMap((c) => [...(c.clean ? [bar(`${c.id}: clean`, c.clean)] : []), ...(c.robust ? [bar(`${c.id}: ${robustLabel}`, c.robust)] : [])]);
  const several = r.seeds.length > 1;
  return {
    nav: [['cells', 'Cells']],
    body: [
      section(
        'cells',
        `Cells (${cells.length})`,
        [
          table(['cell', ...axes, 'clean', robustLabel, 'n', 'status'], rows, `accuracies of the best checkpoint on the test split, ${note}`),
          points.length > 0
            ? figure(await tradeOffSvg(points, 'Clean vs robust accuracy per cell'), `One point per cell at its mean over the seeds, one colour per method and regulariser, labelled by β${several ? '; whiskers: 95% confidence intervals over the seeds' : ''}.`)
            : '<p>No cell has finished yet.</p>',
          bars.length > 0 ? figure(await intervalSvg(bars, { title: 'Mean accuracy per cell' }), `Bars: means over the seeds${several ? '; whiskers: 95% confidence intervals' : ' (one seed: no interval)'}.`) : '',
        ].join('\n'),
      ),
    ],
  };
}
