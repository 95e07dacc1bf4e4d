/**
 * Plots and HTML reports, on run folders written by hand (no training): the
 * page is well-formed and self-contained, each plot draws one mark per data
 * point, the tables print the stored numbers, and unreadable logs are errors
 * naming the file.
 */
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../ts/cli/main.js';
import { intervalSvg, readHistory, ReportInputError, tradeOffSvg, writeReport, type TradeOffPoint } from '../ts/report/index.js';
import { evaluationJson, PROVENANCE, writeFixtureRun } from './helpers/report-fixtures.js';

const tmp = (name: string) => mkdtempSync(path.join(tmpdir(), `st-report-${name}-`));

// ------------------------------------------------------------ helpers

const VOID = new Set(['meta', 'link', 'br', 'hr', 'img', 'input', 'wbr', 'col', 'area', 'base', 'source']);

/**
 * Checks the page's structure as a strict reader would: every element
 * closed in order, attributes quoted, self-closing tags only inside SVG,
 * no stray `<` or bare `&` in text. Returns the problems found.
 */
function structureProblems(html: string): string[] {
  const problems: string[] = [];
  if (!html.startsWith('<!DOCTYPE html>\n<html lang="en">')) problems.push('no doctype/html start');
  const stack: string[] = [];
  // Raw text elements (style, title) are skipped whole.
  const body = html.replace(/<(style|title)>[\s\S]*?<\/\1>/g, '<$1></$1>').replace(/^<!DOCTYPE html>/, '');
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let at = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const textBetween = body.slice(at, m.index);
    if (/[<>]/.test(textBetween)) problems.push(`stray < or > before offset ${m.index}: ${JSON.stringify(textBetween.slice(0, 60))}`);
    if (/&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)/.test(textBetween)) problems.push(`bare & before offset ${m.index}`);
    at = tag.lastIndex;
    const [, closing, name, , selfClosing] = m;
    const lower = name!.toLowerCase();
    if (closing) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open}> at ${m.index}`);
    } else if (selfClosing) {
      if (!stack.includes('svg')) problems.push(`self-closing <${name}/> outside SVG at ${m.index}`);
    } else if (!VOID.has(lower)) {
      stack.push(name!);
    }
  }
  if (/[<>]/.test(body.slice(at).trim())) problems.push('unparsed markup at the end');
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  return problems;
}

test('the structure check finds what it is for', (t) => {
  const start = '<!DOCTYPE html>\n<html lang="en">';
  t.deepEqual(structureProblems(`${start}<body><p>a &amp; b</p><svg><path d="M0"/></svg></body></html>`), []);
  t.true(structureProblems(`${start}<body><p><b>x</p></b></body></html>`).length > 0);
  t.true(structureProblems(`${start}<body><p/></body></html>`).length > 0);
  t.true(structureProblems(`${start}<body><p>a < b & c</p></body></html>`).length > 0);
  t.true(structureProblems(`${start}<body><p class=x>a</p></body></html>`).length > 0);
  t.true(structureProblems(`${start}<body><div>`).length > 0);
});

const svgs = (html: string) => html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];

/** The items (paths, texts) a named layer drew: vega writes `<name>_marks` into its group's class. */
function items(svg: string, layer: string): string[] {
  const groups = svg.match(new RegExp(`<g class="mark-\\w+ role-mark ${layer}_marks"[^>]*>([\\s\\S]*?)</g>`, 'g')) ?? [];
  return groups.flatMap((g) => g.match(/<(path|line|text|rect)\b[^>]*(?:\/>|>[^<]*<\/\1>)/g) ?? []);
}
const texts = (svg: string, layer: string) => items(svg, layer).map((t) => />([^<]*)<\/text>$/.exec(t)?.[1] ?? '');

function assertSelfContained(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void; false: (v: boolean, m?: string) => void }, html: string) {
  t.false(/<script/i.test(html), 'no script');
  // No reference to anything outside the file: no URL in any attribute, no CSS url(), no @import.
  t.deepEqual(html.match(/\s[\w:-]+="[^"]*(?:https?:|\/\/)[^"]*"/g) ?? [], [], 'no URL in an attribute');
  t.false(/url\(|@import/.test(html), 'no CSS reference');
  t.false(/https?:\/\//.test(html), 'no URL at all (the fixtures have none in their text)');
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const range = ([lo, hi]: readonly number[]) => `${(100 * lo!).toFixed(2)}–${(100 * hi!).toFixed(2)}%`;

// ------------------------------------------------------------ a run

test("a run's report: well-formed, self-contained, one SVG per plot with one mark per point, the stored numbers", async (t) => {
  const dir = path.join(tmp('run'), 'my-run');
  const { evals, epochs, steps } = writeFixtureRun(dir, { epochs: 4, stepsPerEpoch: 5, evaluations: true });
  const result = await writeReport(dir);
  t.is(result.file, path.join(dir, 'report.html'));
  t.is(result.kind, 'run');
  t.deepEqual(result.notices, []);
  // Written atomically: no temp file left beside it.
  t.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), []);
  const html = readFileSync(result.file, 'utf8');
  t.deepEqual(structureProblems(html), []);
  assertSelfContained(t, html);

  // Three training plots, one per evaluation kept (current and history).
  const all = svgs(html);
  t.is(all.length, 3 + 2);
  const [accuracy, loss, lr, current, kept] = all as [string, string, string, string, string];
  // Accuracy: clean and robust per evaluated epoch, train accuracy per epoch.
  t.is(items(accuracy, 'points').length, 2 * evals.length + epochs);
  t.is(items(accuracy, 'lines').length, 3);
  t.true(items(accuracy, 'points').some((p) => p.includes(`aria-label="epoch 4, robust (pgd-20): ${pct(evals[3]!.robustAcc)}"`)));
  t.deepEqual(texts(accuracy, 'bestLabel'), ['best: epoch 4']);
  // Loss: the loss and its four ST parts per epoch.
  t.is(items(loss, 'points').length, 5 * epochs);
  t.is(items(loss, 'lines').length, 5);
  // Learning rate: one line through every logged step.
  t.is(items(lr, 'lines').length, 1);
  t.true(epochs * steps <= 400);

  // Each evaluation: a bar and a whisker per attack, per AutoAttack stage, and the worst case.
  const stored = evaluationJson(0, '2026-12-05T07:00:00.000Z');
  const rows = stored.attacks.length + stored.attacks.reduce((n, a) => n + (a.stages?.length ?? 0), 0) + 1;
  for (const svg of [current, kept]) {
    t.is(items(svg, 'bars').length, rows);
    t.is(items(svg, 'intervals').length, rows);
  }
  t.deepEqual(texts(current, 'labels'), [...stored.attacks.flatMap((a) => [a.accuracy, ...(a.stages ?? []).map((s) => s.accuracy)]), stored.worstCase.accuracy].map(pct));

  // The tables print what the JSON stores: accuracy, stored interval, correct / n.
  for (const a of stored.attacks) {
    t.true(html.includes(`<td>${a.name}</td><td class="num">${pct(a.accuracy)}</td><td class="num">${range(a.interval95)}</td><td class="num">${a.correct} / ${a.samples}</td>`), a.name);
  }
  const w = stored.worstCase;
  t.true(html.includes(`<td>worst case</td><td class="num">${pct(w.accuracy)}</td><td class="num">${range(w.interval95)}</td><td class="num">${w.correct} / ${stored.samples}</td>`));
  t.true(html.includes('<tr class="stage"><td>after apgd-t</td><td class="num">55.00%</td>'));
  t.true(html.includes('<h3>eval-best.json — 2026-12-05T07:00:00.000Z</h3>'));
  t.true(html.includes('<h3>eval-history/eval-best-2026-12-05T06-30-00.json — 2026-12-05T06:30:00.000Z</h3>'));
  t.true(html.includes('<li>a fixture notice</li>'));
  // The run's results with n.
  const best = evals.at(-1)!;
  t.true(html.includes(`<td>best (model selection)</td><td class="num">4</td><td>test</td><td class="num">${pct(best.cleanAcc)}</td>`));
  // Provenance and config, escaped.
  t.true(html.includes(`<dd>${PROVENANCE.command.replace(/'/g, "'")}</dd>`));
  t.true(html.includes('<dd>abc1234</dd>'));
  t.true(html.includes('&quot;reg&quot;: &quot;js&quot;'));
});

test('--out writes elsewhere; a second report replaces the first', async (t) => {
  const root = tmp('out');
  const dir = path.join(root, 'r');
  writeFixtureRun(dir, { evaluated: false, stepsPerEpoch: 1000 });
  const out = path.join(root, 'sub', 'r.html');
  const first = await writeReport(dir, { out });
  t.is(first.file, out);
  t.false(existsSync(path.join(dir, 'report.html')));
  writeFileSync(out, 'stale');
  await writeReport(dir, { out });
  const html = readFileSync(out, 'utf8');
  t.true(html.startsWith('<!DOCTYPE html>'));
  t.deepEqual(structureProblems(html), []);
  // No evaluated epoch: the accuracy plot has the training accuracy only; 4,000 steps thinned to at most 400 points.
  t.true(html.includes('no evaluated epoch'));
  t.is(items(svgs(html)[0]!, 'points').length, 4);
  t.true(html.includes('None kept in this folder'));
  const lr = readHistory(dir).lr;
  t.is(lr.length, 400);
  t.is(lr.at(-1)!.x, 4);
  t.is(lr[0]!.x, 1 / 1000);
  t.deepEqual([...new Set(lr.map((r) => r.lr))], [0.01, 0.001]);
});

test('text from the folder is escaped: markup and URLs in names and config stay text', async (t) => {
  const dir = path.join(tmp('escape'), 'r');
  writeFixtureRun(dir, { evaluations: true });
  const file = path.join(dir, 'config.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { config: Record<string, unknown>; provenance: Record<string, unknown> };
  doc.config.runName = '<script>alert(1)</script> & see https://example.org/x';
  doc.provenance.command = 'st-native train --name "<b>"';
  writeFileSync(file, JSON.stringify(doc));
  const html = readFileSync((await writeReport(dir)).file, 'utf8');
  t.deepEqual(structureProblems(html), []);
  t.false(/<script/i.test(html));
  t.deepEqual(html.match(/\s[\w:-]+="[^"]*https?:[^"]*"/g) ?? [], []);
  t.true(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; see https://example.org/x'));
  t.true(html.includes('<dd>st-native train --name &quot;&lt;b&gt;&quot;</dd>'));
  // Inside the plots too: series names with markup.
  const svg = await tradeOffSvg([{ series: 'a<b & "c"', beta: 1, clean: 0.9, robust: 0.4 }]);
  t.deepEqual(structureProblems(`<!DOCTYPE html>\n<html lang="en"><body>${svg}</body></html>`), []);
  t.false(svg.includes('a<b'));
});

// ------------------------------------------------------------ unreadable inputs

test('an empty or corrupt metrics.jsonl is an error naming the file (and the line, and the field)', async (t) => {
  const dir = path.join(tmp('bad'), 'r');
  writeFixtureRun(dir);
  const log = path.join(dir, 'metrics.jsonl');
  const good = readFileSync(log, 'utf8').split('\n');

  writeFileSync(log, '');
  let e = await t.throwsAsync(writeReport(dir), { instanceOf: ReportInputError });
  t.true(e!.message.includes(log), e!.message);
  t.regex(e!.message, /empty/);

  writeFileSync(log, [good[0], '{"type": "epoch", "epo', good[2], ''].join('\n'));
  e = await t.throwsAsync(writeReport(dir), { instanceOf: ReportInputError });
  t.true(e!.message.startsWith(`${log}: line 2: not JSON`), e!.message);

  writeFileSync(log, `${JSON.stringify({ type: 'epoch', epoch: 1, loss: 'high', parts: {}, trainAcc: 0.5 })}\n`);
  e = await t.throwsAsync(writeReport(dir));
  t.true(e!.message.startsWith(`${log}: line 1: loss:`), e!.message);

  writeFileSync(log, `${JSON.stringify({ type: 'start' })}\n`);
  e = await t.throwsAsync(writeReport(dir));
  t.regex(e!.message, /no epoch or eval events/);

  // Nothing was written by the failed attempts.
  t.false(existsSync(path.join(dir, 'report.html')));
  t.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), []);
});

test('a last line cut short (a killed run) is left out with a notice; a corrupt evaluation file is named and skipped', async (t) => {
  const dir = path.join(tmp('cut'), 'r');
  writeFixtureRun(dir, { evaluations: true });
  const log = path.join(dir, 'metrics.jsonl');
  writeFileSync(log, `${readFileSync(log, 'utf8')}{"type":"step","epo`);
  writeFileSync(path.join(dir, 'eval-history', 'eval-best-broken.json'), '{"model": ');
  const result = await writeReport(dir);
  t.is(result.notices.length, 2);
  t.true(result.notices[0]!.startsWith(`${log}: the last line (`));
  t.true(result.notices[1]!.includes(path.join(dir, 'eval-history', 'eval-best-broken.json')));
  const html = readFileSync(result.file, 'utf8');
  t.is(svgs(html).length, 3 + 2);
});

test('an evaluation written before intervals were stored gets its Wilson interval computed', async (t) => {
  const dir = path.join(tmp('old-eval'), 'r');
  writeFixtureRun(dir, { evaluations: true });
  const file = path.join(dir, 'eval-best.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof evaluationJson>;
  const { interval95: _dropped, ...pgd } = doc.attacks[1]!;
  writeFileSync(file, JSON.stringify({ ...doc, attacks: [doc.attacks[0], pgd, doc.attacks[2]] }));
  const html = readFileSync((await writeReport(dir)).file, 'utf8');
  // 121 of 200: Wilson 95% is 53.59–67.02%.
  t.true(html.includes('<td>pgd20</td><td class="num">60.50%</td><td class="num">53.59–67.02%</td><td class="num">121 / 200</td>'));
});

test('a folder that is not a run and holds none is an error', async (t) => {
  const dir = tmp('empty');
  await t.throwsAsync(writeReport(dir), { message: /neither a run folder \(no config\.json\) nor a folder of runs/ });
  await t.throwsAsync(writeReport(path.join(dir, 'missing')), { message: /missing: not found/ });
});

// ------------------------------------------------------------ plots alone

test('trade-off plot: one point and one label per configuration, one line per series, intervals when given', async (t) => {
  const points: TradeOffPoint[] = [];
  for (const [i, reg] of ['js', 'l2', 'symmkl'].entries()) {
    for (const beta of [1, 2, 4]) points.push({ series: `st / ${reg}`, beta, clean: 0.9 - beta / 100 - i / 200, robust: 0.4 + beta / 50 + i / 100 });
  }
  const svg = await tradeOffSvg(points);
  t.is(items(svg, 'points').length, 9);
  t.is(items(svg, 'lines').length, 3);
  t.deepEqual(texts(svg, 'labels').sort(), ['β=1', 'β=1', 'β=1', 'β=2', 'β=2', 'β=2', 'β=4', 'β=4', 'β=4']);
  t.is(items(svg, 'cleanIntervals').length, 0);
  t.true(items(svg, 'points').some((p) => p.includes(`aria-label="st / l2, β=2: clean ${pct(points[4]!.clean)}, robust ${pct(points[4]!.robust)}"`)));
  // Series in the legend.
  for (const reg of ['js', 'l2', 'symmkl']) t.true(svg.includes(`>st / ${reg}</text>`), reg);

  const withIntervals = await tradeOffSvg(
    points.slice(0, 3).map((p) => ({ ...p, cleanInterval: [p.clean - 0.01, p.clean + 0.01] as const, robustInterval: [p.robust - 0.02, p.robust + 0.02] as const })),
    'with intervals',
  );
  t.is(items(withIntervals, 'cleanIntervals').length, 3);
  t.is(items(withIntervals, 'robustIntervals').length, 3);
  t.regex(withIntervals, /<title>with intervals<\/title>/);
});

test('interval plot: a bar, a whisker and a value per row, in the order given', async (t) => {
  const rows = [
    { label: 'seed mean, clean', mean: 0.912, low: 0.9, high: 0.93 },
    { label: 'seed mean, PGD-20', mean: 0.456, low: 0.41, high: 0.5 },
    { label: 'seed mean, AA', mean: 0.433, low: 0.4, high: 0.47 },
  ];
  const svg = await intervalSvg(rows, { title: 'five seeds' });
  t.is(items(svg, 'bars').length, 3);
  t.is(items(svg, 'intervals').length, 3);
  t.deepEqual(texts(svg, 'labels'), ['91.20%', '45.60%', '43.30%']);
  t.true(items(svg, 'bars')[1]!.includes('aria-label="seed mean, PGD-20: 45.60% (95% interval 41.00% to 50.00%)"'));
  // Labels on the axis in the order given.
  const axis = rows.map((r) => svg.indexOf(`>${r.label}</text>`));
  t.true(axis.every((i) => i > 0));
  t.deepEqual([...axis].sort((a, b) => a - b), axis);
  const raw = await intervalSvg([{ label: 'loss', mean: 1.25, low: 1, high: 1.5 }], { percent: false, measure: 'loss' });
  t.deepEqual(texts(raw, 'labels'), ['1.25']);
});

// ------------------------------------------------------------ a folder of runs

test("a folder's report: the runs side by side, the trade-off with one point per run, each run's curve; unreadable runs named", async (t) => {
  const root = tmp('folder');
  const grid = [
    ['js', 2, 0.95, 0.4],
    ['js', 6, 0.9, 0.5],
    ['l2', 2, 0.94, 0.42],
  ] as const;
  grid.forEach(([reg, beta, clean, robust], i) => writeFixtureRun(path.join(root, `run-${i}`), { reg, beta, clean, robust, epochs: 3, evaluations: i === 0 }));
  mkdirSync(path.join(root, 'broken'));
  writeFileSync(path.join(root, 'broken', 'config.json'), JSON.stringify({ config: {} }));
  mkdirSync(path.join(root, 'not-a-run'));
  // A sweep keeping its runs one level down: found, named by their path.
  writeFixtureRun(path.join(root, 'sweep', 'runs', 'cell-0'), { reg: 'l2', beta: 6, clean: 0.91, robust: 0.47, epochs: 3 });
  writeFixtureRun(path.join(root, 'sweep', 'runs', 'cell-0', 'deeper', 'too-deep'), { epochs: 1 });
  const result = await writeReport(root);
  t.is(result.kind, 'folder');
  t.is(result.runs, 4);
  t.is(result.notices.length, 1);
  t.true(result.notices[0]!.includes(path.join(root, 'broken', 'metrics.jsonl')));
  const html = readFileSync(result.file, 'utf8');
  t.deepEqual(structureProblems(html), []);
  assertSelfContained(t, html);
  const [tradeOff, ...curves] = svgs(html);
  t.is(items(tradeOff!, 'points').length, 4);
  t.deepEqual(texts(tradeOff!, 'labels').sort(), ['β=2', 'β=2', 'β=6', 'β=6']);
  t.is(items(tradeOff!, 'lines').length, 2);
  t.is(curves.length, 4);
  t.true(html.includes(`<tr><td>${path.join('sweep', 'runs', 'cell-0')}</td><td>st</td><td>l2</td><td class="num">6</td>`));
  t.false(html.includes('too-deep'));
  // run-0's attack table in a few words.
  t.true(html.includes('<td>pgd20 60.50%, aa 54.50%, worst case 54.00% (n 200)</td></tr>'));
  for (const [i, [reg, beta, clean, robust]] of grid.entries()) {
    t.true(html.includes(`<tr><td>run-${i}</td><td>st</td><td>${reg}</td><td class="num">${beta}</td>`), `row ${i}`);
    t.true(html.includes(`<td class="num">${pct(clean)}</td><td class="num">${pct(robust)}</td>`), `numbers ${i}`);
  }
});

// ------------------------------------------------------------ the command

test('st-native report writes the file and prints its path; errors name the file and exit 1', async (t) => {
  const dir = path.join(tmp('cli'), 'r');
  writeFixtureRun(dir);
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), tty: false };
  t.is(await main(['report', dir], io), 0);
  t.deepEqual(out, [path.join(dir, 'report.html')]);
  writeFileSync(path.join(dir, 'metrics.jsonl'), '');
  t.is(await main(['report', dir, '--out', path.join(dir, 'x.html')], io), 1);
  t.regex(err.join('\n'), new RegExp(`error \\[ERR_REPORT_INPUT\\]: ${path.join(dir, 'metrics.jsonl').replace(/[.]/g, '\\.')}: no epoch recorded`));
  t.false(existsSync(path.join(dir, 'x.html')));
});
