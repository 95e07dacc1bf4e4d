/**
 * `writeReport`: one self-contained HTML file for a run folder (its curves,
 * results, every evaluation kept, provenance and config) or for a folder of
 * runs (a sweep, a runs folder: the runs side by side, the clean vs robust
 * trade-off, each run's accuracy curve). Written atomically, by default as
 * report.html in the folder.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describeAttack, wilson } from '../experiment/evaluate.js';
import { writeFileAtomic } from '../experiment/files.js';
// Stored evaluations are checked for what the table shows; the attack settings are described as evaluate.ts wrote them.
import type { AttackSpec, EvalResult } from '../native-types.js';
import { esc, facts, figure, notices, page, section, table, type Cell } from './html.js';
import { groupSections } from './groups.js';
import { readHistory, ReportInputError, type RunHistory } from './history.js';
import { intervalSvg, renderSvg, accuracySpec, runCurvesSvg, tradeOffSvg, type IntervalRow, type TradeOffPoint } from './plots.js';
import { readConfigFile, readEvaluations, readSummary, type EvaluationFile, type ResultRow, type RunConfigFile, type RunSummary } from './run-files.js';

export interface ReportOptions {
  /** Where to write (default `<folder>/report.html`). */
  out?: string;
}

export interface ReportResult {
  file: string;
  kind: 'run' | 'folder';
  /** The runs reported (one for a run folder). */
  runs: number;
  /** What the report warns about (files left out, runs without results). */
  notices: string[];
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const range = ([lo, hi]: readonly [number, number]) => `${(100 * lo).toFixed(2)}–${(100 * hi).toFixed(2)}%`;
const num = (html: string): Cell => ({ html: esc(html), numeric: true });

interface RunData {
  dir: string;
  name: string;
  config: RunConfigFile;
  summary: RunSummary | null;
  history: RunHistory;
}

function readRun(dir: string, name = path.basename(path.resolve(dir))): RunData {
  return { dir, name, config: readConfigFile(dir), summary: readSummary(dir), history: readHistory(dir) };
}

/** A field of the stored config, if it is there (older runs may lack it). */
function field(config: Record<string, unknown>, dotted: string): unknown {
  let v: unknown = config;
  for (const k of dotted.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}
const text = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** The result to quote for a run: the best checkpoint on the test split, else the selection's best. */
function headline(s: RunSummary | null): ResultRow | null {
  return s?.test ?? s?.best ?? null;
}

function resultRows(s: RunSummary): Cell[][] {
  const rows: [string, ResultRow | null | undefined][] = [
    ['best (model selection)', s.best],
    ['last epoch', s.last],
    ['best checkpoint on test', s.test],
  ];
  return rows.flatMap(([label, r]) => {
    if (!r) return [];
    const k = (acc: number) => Math.round(acc * r.samples);
    return [[label, num(String(r.epoch)), r.split, num(pct(r.cleanAcc)), num(range(wilson(k(r.cleanAcc), r.samples))), num(pct(r.robustAcc)), num(range(wilson(k(r.robustAcc), r.samples))), r.attack, num(String(r.samples))]];
  });
}

function provenanceFacts(p: RunConfigFile['provenance']): string {
  if (!p) return '<p>config.json records no provenance (a run of an older version).</p>';
  return facts([
    ['st-native', p.stNative],
    ['git commit', p.gitCommit ?? 'none (an installed package)'],
    ['libtorch', p.libtorch],
    ['Node', p.node],
    ['host', p.host],
    ['platform', p.platform],
    ['OpenMP wait', p.openmpWait],
    ['started', p.time],
    ['command', p.command ?? 'API call'],
  ]);
}

async function evaluationHtml({ name, evaluation: e }: EvaluationFile): Promise<string> {
  const rows: string[] = [];
  const bars: IntervalRow[] = [];
  for (const a of e.attacks) {
    const iv = a.interval95 ?? wilson(a.correct, a.samples);
    const settings = describeAttack(a.spec as AttackSpec, { run: (e.run ?? null) as EvalResult | null }) ?? a.spec.kind;
    rows.push(`<tr><td>${esc(a.name)}</td><td class="num">${pct(a.accuracy)}</td><td class="num">${range(iv)}</td><td class="num">${a.correct} / ${a.samples}</td><td>${esc(settings)}${a.resumed ? ' (resumed from a saved state)' : ''}</td></tr>`);
    bars.push({ label: a.name, mean: a.accuracy, low: iv[0], high: iv[1] });
    for (const st of a.stages ?? []) {
      // Stages store no interval: the Wilson interval over the attack's images, as the Markdown file has it.
      const stageIv = wilson(st.correct, a.samples);
      rows.push(`<tr class="stage"><td>after ${esc(st.name)}</td><td class="num">${pct(st.accuracy)}</td><td class="num">${range(stageIv)}</td><td class="num">${st.correct} / ${a.samples}</td><td>attacked ${st.attacked} images, ${st.seconds.toFixed(1)} s</td></tr>`);
      bars.push({ label: `${a.name}: after ${st.name}`, mean: st.accuracy, low: stageIv[0], high: stageIv[1] });
    }
  }
  const w = e.worstCase;
  const wIv = w.interval95 ?? wilson(w.correct, e.samples);
  rows.push(`<tr class="worst"><td>worst case</td><td class="num">${pct(w.accuracy)}</td><td class="num">${range(wIv)}</td><td class="num">${w.correct} / ${e.samples}</td><td>robust only if correct clean and under every attack above (${esc(w.over.join(', '))})</td></tr>`);
  bars.push({ label: 'worst case', mean: w.accuracy, low: wIv[0], high: wIv[1] });
  const svg = await intervalSvg(bars, { title: `${name}: accuracy per attack` });
  const when = e.provenance?.time ? ` — ${e.provenance.time}` : '';
  return [
    `<h3>${esc(name)}${esc(when)}</h3>`,
    `<p class="sub">${esc(`${e.target?.checkpoint ?? path.basename(e.checkpoint)} checkpoint${e.epoch !== null && e.epoch !== undefined ? ` (epoch ${e.epoch})` : ''}, ${e.model}, the first ${e.samples} images of the ${e.dataset ?? ''} test split, seed ${e.seed}${e.device ? `, ${e.device}` : ''}; intervals: 95% Wilson over the ${e.samples} images`)}</p>`,
    '<table>',
    '<thead><tr><th scope="col">attack</th><th scope="col" class="num">accuracy</th><th scope="col" class="num">95% interval</th><th scope="col" class="num">correct / n</th><th scope="col">settings</th></tr></thead>',
    '<tbody>',
    ...rows,
    '</tbody>',
    '</table>',
    notices(e.notices ?? []),
    figure(svg, 'Bars: accuracy; whiskers: 95% Wilson interval.'),
  ].join('\n');
}

function describeRun(c: Record<string, unknown>): string {
  const method = text(field(c, 'method.name'));
  const reg = field(c, 'method.reg');
  const beta = field(c, 'method.beta');
  return [
    method + (reg !== undefined ? ` (${text(reg)}${beta !== undefined ? `, β=${text(beta)}` : ''})` : beta !== undefined ? ` (β=${text(beta)})` : ''),
    text(field(c, 'model')),
    text(field(c, 'dataset.name')),
    field(c, 'epochs') !== undefined ? `${text(field(c, 'epochs'))} epochs` : '',
    field(c, 'seed') !== undefined ? `seed ${text(field(c, 'seed'))}` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

async function runReport(dir: string): Promise<{ html: string; notices: string[] }> {
  const run = readRun(dir);
  const evals = readEvaluations(dir);
  const warn = [...run.history.notices, ...evals.errors.map((m) => `left out: ${m}`)];
  if (!run.summary) warn.push(`${path.join(dir, 'summary.json')}: not found: the run is still going or was killed; the curves show what it logged`);
  const curves = await runCurvesSvg(run.history, run.summary?.best?.epoch ?? null);
  const s = run.summary;
  const status = s ? `${s.status}${s.epochsCompleted !== undefined ? `, ${s.epochsCompleted} epochs` : ''}${s.seconds !== undefined ? `, ${s.seconds.toFixed(0)} s` : ''}${s.error ? `: ${s.error}` : ''}` : 'no summary';
  const body = [
    notices(warn),
    section(
      'results',
      'Results',
      s && resultRows(s).length > 0
        ? table(['', 'epoch', 'split', 'clean', '95% interval', 'robust', '95% interval', 'attack', 'n'], resultRows(s), `status: ${status}; intervals: 95% Wilson over n images`)
        : `<p>${esc(`status: ${status}; no evaluated epoch`)}</p>`,
    ),
    section(
      'curves',
      'Training curves',
      [
        figure(curves.accuracy, 'Clean and robust accuracy of each evaluated epoch, and training accuracy; the dashed line marks the best epoch (model selection).'),
        curves.loss ? figure(curves.loss, 'Mean training loss per epoch and, where the method has them, its parts: cross-entropy on the adversarial, benign and collaborative inputs and the regulariser.') : '',
        curves.learningRate ? figure(curves.learningRate, 'Learning rate at each logged step.') : '',
      ].join('\n'),
    ),
    section('evaluations', `Evaluations (${evals.files.length})`, evals.files.length === 0 ? '<p>None kept in this folder (run <code>st-native eval</code> on it).</p>' : (await Promise.all(evals.files.map(evaluationHtml))).join('\n')),
    section('provenance', 'Provenance', provenanceFacts(run.config.provenance)),
    section('config', 'Config', `<pre>${esc(JSON.stringify(run.config.config, null, 2))}</pre>`),
  ];
  const nav: [string, string][] = [
    ['results', 'Results'],
    ['curves', 'Curves'],
    ['evaluations', 'Evaluations'],
    ['provenance', 'Provenance'],
    ['config', 'Config'],
  ];
  return { html: page(`Run ${run.name}`, describeRun(run.config.config), nav, body), notices: warn };
}

const isRun = (p: string) => existsSync(path.join(p, 'config.json'));
const isDir = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/**
 * The runs of a folder, in name order: the folders with a config.json up to
 * three levels down (`runs/<run>`, `<sweep>/<run>`, `runs/<sweep>/runs/<run>`);
 * a run's own subfolders are not searched.
 */
function runFolders(dir: string, depth = 3): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new ReportInputError(`${dir}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return names
    .sort()
    .map((n) => path.join(dir, n))
    .filter(isDir)
    .flatMap((p) => (isRun(p) ? [p] : depth > 1 ? runFolders(p, depth - 1) : []));
}

/** The latest attack table of a run's best checkpoint in a few words ("pgd20 60.50%, aa 54.50%, worst case 54.00% (n 200)"). */
function evaluatedCell(dir: string): string {
  const current = readEvaluations(dir).files.find((f) => f.name === 'eval-best.json')?.evaluation;
  if (!current) return '';
  const rows = current.attacks.filter((a) => a.name !== 'clean').map((a) => `${a.name} ${pct(a.accuracy)}`);
  return `${[...rows, `worst case ${pct(current.worstCase.accuracy)}`].join(', ')} (n ${current.samples})`;
}

/** "st / js": the trade-off plot's series of a run. */
function seriesOf(c: Record<string, unknown>): string {
  const reg = field(c, 'method.reg');
  return `${text(field(c, 'method.name')) || 'run'}${reg !== undefined ? ` / ${text(reg)}` : ''}`;
}

async function folderReport(dir: string, folders: string[]): Promise<{ html: string; notices: string[]; runs: number }> {
  const warn: string[] = [];
  const runs: RunData[] = [];
  for (const f of folders) {
    try {
      runs.push(readRun(f, path.relative(dir, f)));
    } catch (e) {
      warn.push(`left out: ${(e as Error).message}`);
    }
  }
  if (runs.length === 0) throw new ReportInputError(`${dir}: none of its ${folders.length} runs could be read (${warn.join('; ')})`);
  const rows: Cell[][] = runs.map((r) => {
    const c = r.config.config;
    const h = headline(r.summary);
    return [
      r.name,
      text(field(c, 'method.name')),
      text(field(c, 'method.reg')),
      num(text(field(c, 'method.beta'))),
      text(field(c, 'model')),
      text(field(c, 'dataset.name')),
      num(text(field(c, 'seed'))),
      r.summary?.status ?? 'no summary',
      num(String(r.summary?.epochsCompleted ?? r.history.epochs.length)),
      num(h ? pct(h.cleanAcc) : '—'),
      num(h ? pct(h.robustAcc) : '—'),
      h ? `${h.attack}, ${h.split}` : '',
      num(h ? String(h.samples) : '—'),
      evaluatedCell(r.dir),
    ];
  });
  const points: TradeOffPoint[] = runs.flatMap((r) => {
    const h = headline(r.summary);
    if (!h) return [];
    const beta = field(r.config.config, 'method.beta');
    const k = (acc: number) => Math.round(acc * h.samples);
    return [
      {
        series: seriesOf(r.config.config),
        beta: typeof beta === 'number' ? beta : null,
        ...(typeof beta === 'number' ? {} : { label: r.name }),
        clean: h.cleanAcc,
        robust: h.robustAcc,
        cleanInterval: wilson(k(h.cleanAcc), h.samples),
        robustInterval: wilson(k(h.robustAcc), h.samples),
      },
    ];
  });
  const curves = await Promise.all(
    runs.map(async (r) => `<details>\n<summary>${esc(r.name)}: ${esc(describeRun(r.config.config))}</summary>\n${figure(await renderSvg(accuracySpec(r.history, r.summary?.best?.epoch ?? null), `Accuracy per epoch of ${r.name}`), `Accuracy per epoch of ${r.name}; dashed: the best epoch.`)}\n</details>`),
  );
  // A seeds group or a sweep: its means and intervals come first.
  const group = await groupSections(dir);
  const body = [
    notices(warn),
    ...group.body,
    section(
      'runs',
      `Runs (${runs.length})`,
      table(
        ['run', 'method', 'reg', 'β', 'model', 'dataset', 'seed', 'status', 'epochs', 'clean', 'robust', 'attack, split', 'n', 'attack table (eval-best.json)'],
        rows,
        'clean and robust: the best checkpoint on the test split (else the selection split); the attack table: the latest `st-native eval` of the best checkpoint, with its n',
      ),
    ),
    section(
      'trade-off',
      'Clean vs robust accuracy',
      points.length === 0 ? '<p>No run has an evaluated epoch yet.</p>' : figure(await tradeOffSvg(points), 'One point per run, one colour per method and regulariser, labelled by β; whiskers: 95% Wilson intervals over the evaluated images.'),
    ),
    section('curves', 'Training curves', curves.join('\n')),
  ];
  const nav: [string, string][] = [
    ...group.nav,
    ['runs', 'Runs'],
    ['trade-off', 'Trade-off'],
    ['curves', 'Curves'],
  ];
  return { html: page(`Runs in ${path.basename(path.resolve(dir))}`, `${runs.length} runs`, nav, body), notices: warn, runs: runs.length };
}

/** The HTML of the report on `folder` (a run folder, or a folder of runs), not written. */
export async function buildReport(folder: string): Promise<{ html: string; kind: 'run' | 'folder'; runs: number; notices: string[] }> {
  if (!existsSync(folder)) throw new ReportInputError(`${folder}: not found`);
  if (isRun(folder)) {
    const r = await runReport(folder);
    return { ...r, kind: 'run', runs: 1 };
  }
  const folders = runFolders(folder);
  if (folders.length === 0) throw new ReportInputError(`${folder}: neither a run folder (no config.json) nor a folder of runs (no subfolder has one)`);
  const r = await folderReport(folder, folders);
  return { ...r, kind: 'folder' };
}

/** Writes the report on `folder` atomically (default `<folder>/report.html`). */
export async function writeReport(folder: string, options: ReportOptions = {}): Promise<ReportResult> {
  const built = await buildReport(folder);
  const file = path.resolve(options.out ?? path.join(folder, 'report.html'));
  writeFileAtomic(file, built.html);
  return { file, kind: built.kind, runs: built.runs, notices: built.notices };
}
