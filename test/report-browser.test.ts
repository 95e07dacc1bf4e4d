/**
 * The HTML report in a real browser: headless Chromium from the npm package
 * @sparticuz/chromium (the binary is inside the tarball, so this runs with
 * no download and no network), driven by puppeteer-core. The page is opened
 * from file:// with every other request failing the test; it must raise no
 * console or page error, draw every plot with its marks inside the plot,
 * give each table its rows, and fit 1280 and 400 px wide windows (wide
 * tables scroll in their own box). A browser that cannot start fails the
 * file; it is not skipped.
 */
import test from 'ava';
import chromium from '@sparticuz/chromium';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeReport } from '../ts/report/index.js';
import { evaluationJson, writeFixtureRun } from './helpers/report-fixtures.js';

const tmp = (name: string) => mkdtempSync(path.join(tmpdir(), `st-report-browser-${name}-`));
const shots = tmp('screenshots');

let browser: Browser | undefined;

/** The version of @sparticuz/chromium installed (its package.json is not exported: found above its entry point). */
function chromiumPackageVersion(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.resolve('@sparticuz/chromium'))); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@sparticuz/chromium' && pkg.version) return pkg.version;
  }
  throw new Error('report-browser: no package.json of @sparticuz/chromium above its entry point');
}

test.before(async () => {
  let executablePath: string;
  try {
    // Unpacks the brotli-compressed binary (and its fonts) into the temp folder once.
    executablePath = await chromium.executablePath();
  } catch (e) {
    throw new Error(`report-browser: could not unpack Chromium from @sparticuz/chromium: ${(e as Error).message}`);
  }
  try {
    browser = await puppeteer.launch({
      executablePath,
      headless: 'shell',
      // No sandbox: CI runs as root in a container without user namespaces.
      args: ['--no-sandbox'],
      // The fonts that ship with the package (unpacked beside the binary), so text measures the same on any machine.
      env: { ...process.env, FONTCONFIG_PATH: path.join(tmpdir(), 'fonts') },
      timeout: 30_000,
    });
  } catch (e) {
    throw new Error(`report-browser: headless Chromium at ${executablePath} did not start (missing shared libraries? try ldd on it): ${(e as Error).message}`);
  }
  // executablePath() reuses any binary already unpacked there: it must be this package's.
  const major = chromiumPackageVersion().split('.')[0];
  const version = await browser.version();
  if (!version.includes(`/${major}.`)) {
    throw new Error(`report-browser: ${executablePath} is ${version}, @sparticuz/chromium ships ${major}; delete the stale ${executablePath} and rerun`);
  }
});

test.after.always(async () => {
  await browser?.close();
});

interface Opened {
  page: Page;
  /** Requests other than the report itself (all aborted), console errors and uncaught page errors. */
  problems: string[];
}

/** Opens `file` at a window `width` px wide; any request for something other than the file is aborted and recorded. */
async function open(file: string, width: number): Promise<Opened> {
  if (!browser) throw new Error('report-browser: no browser (see the before hook)');
  const page = await browser.newPage();
  const url = pathToFileURL(file).href;
  const problems: string[] = [];
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.url() === url) return void req.continue();
    problems.push(`request: ${req.url()}`);
    void req.abort();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e instanceof Error ? e.message : String(e)}`));
  await page.setViewport({ width, height: 900 });
  const response = await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  if (!response?.ok()) problems.push(`loading ${url}: ${response?.status() ?? 'no response'}`);
  return { page, problems };
}

interface Layer {
  /** Vega's `<name>_marks` group class. */
  layer: string;
  count: number;
  /** Items drawn with an empty box (a mark that is not drawn). */
  empty: number;
  /** Items outside the plot's box. */
  outside: number;
}
interface Plot {
  width: number;
  height: number;
  right: number;
  layers: Layer[];
}

/** Every `<svg>` on the page, its box, and per vega layer how many items it drew and how many are empty or outside the plot. */
function plots(page: Page): Promise<Plot[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('svg')].map((svg) => {
      const box = svg.getBoundingClientRect();
      const layers = [...svg.querySelectorAll('g.role-mark')].map((g) => {
        const layer = /(\w+)_marks/.exec(g.getAttribute('class') ?? '')?.[1] ?? '?';
        const drawn = [...g.querySelectorAll('path, line, rect, text')];
        let empty = 0;
        let outside = 0;
        for (const el of drawn) {
          const b = el.getBoundingClientRect();
          // A rule is a line: one of its sides may be zero, not both.
          if (b.width + b.height <= 0 || (el.tagName !== 'line' && (b.width <= 0 || b.height <= 0))) empty++;
          if (b.left < box.left - 1 || b.right > box.right + 1 || b.top < box.top - 1 || b.bottom > box.bottom + 1) outside++;
        }
        return { layer, count: drawn.length, empty, outside };
      });
      // A layer split by series (lines, one per colour) is one group per series: added up by name.
      const merged = new Map<string, { layer: string; count: number; empty: number; outside: number }>();
      for (const l of layers) {
        const m = merged.get(l.layer);
        if (m) {
          m.count += l.count;
          m.empty += l.empty;
          m.outside += l.outside;
        } else merged.set(l.layer, { ...l });
      }
      return { width: box.width, height: box.height, right: box.right, layers: [...merged.values()] };
    }),
  );
}

const count = (p: Plot, layer: string) => p.layers.find((l) => l.layer === layer)?.count ?? 0;

/** Rows in each table's body, in page order. */
const tableRows = (page: Page) => page.evaluate(() => [...document.querySelectorAll('table')].map((t) => t.tBodies[0]?.rows.length ?? 0));

/** Whether the page scrolls sideways, and what sticks out if so (tags with their right edge). */
const overflow = (page: Page) =>
  page.evaluate(() => {
    const root = document.documentElement;
    const sticking = [...document.body.querySelectorAll('*')]
      .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 0.5 && !el.closest('table, pre'))
      .map((el) => `${el.tagName.toLowerCase()} to ${Math.round(el.getBoundingClientRect().right)} px`);
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, sticking: sticking.slice(0, 10) };
  });

/** Plot checks shared by both reports: each one drawn, no empty or stray mark, none wider than the window. */
function checkPlots(t: { true: (v: boolean, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void }, all: Plot[], width: number) {
  for (const [i, p] of all.entries()) {
    t.true(p.width > 0 && p.height > 0, `svg ${i} at ${width} px: box ${p.width}×${p.height}`);
    t.true(p.right <= width + 0.5, `svg ${i} at ${width} px: right edge ${p.right}`);
    t.true(p.layers.length > 0, `svg ${i}: no vega marks`);
    for (const l of p.layers) {
      t.true(l.count > 0, `svg ${i} layer ${l.layer}: nothing drawn`);
      t.deepEqual([l.empty, l.outside], [0, 0], `svg ${i} layer ${l.layer} at ${width} px: [empty, outside the plot] of ${l.count}`);
    }
  }
}

for (const width of [1280, 400]) {
  test(`a run's report at ${width} px: no request, no error, every plot drawn with its marks, every table's rows, no sideways scroll`, async (t) => {
    const dir = path.join(tmp('run'), 'my-run');
    const { evals, epochs } = writeFixtureRun(dir, { epochs: 4, stepsPerEpoch: 5, evaluations: true });
    const { file } = await writeReport(dir);
    const { page, problems } = await open(file, width);
    try {
      t.deepEqual(problems, []);
      const all = await plots(page);
      checkPlots(t, all, width);
      // Training plots (accuracy, loss, learning rate), then one per kept evaluation (eval-best.json and its history).
      t.is(all.length, 3 + 2);
      const [accuracy, loss, lr, ...evaluations] = all as [Plot, Plot, Plot, Plot, Plot];
      t.is(count(accuracy, 'points'), 2 * evals.length + epochs);
      t.is(count(accuracy, 'lines'), 3);
      t.is(count(accuracy, 'best'), 1);
      t.is(count(accuracy, 'bestLabel'), 1);
      t.is(count(loss, 'points'), 5 * epochs);
      t.is(count(loss, 'lines'), 5);
      t.is(count(lr, 'lines'), 1);
      const stored = evaluationJson(0, '2026-12-05T07:00:00.000Z');
      const attackRows = stored.attacks.length + stored.attacks.reduce((n, a) => n + (a.stages?.length ?? 0), 0) + 1;
      for (const e of evaluations) {
        for (const layer of ['bars', 'intervals', 'labels']) t.is(count(e, layer), attackRows, layer);
      }
      // Results (best, last, the best checkpoint on test), then each evaluation's attacks with their stages and the worst case.
      t.deepEqual(await tableRows(page), [3, attackRows, attackRows]);
      const o = await overflow(page);
      t.deepEqual(o.sticking, []);
      t.true(o.scrollWidth <= o.clientWidth, `page ${o.scrollWidth} px wide in a ${o.clientWidth} px window`);
      const shot = path.join(shots, `run-${width}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      t.log(`screenshot: ${shot}`);
    } finally {
      await page.close();
    }
  });
}

test("a folder's report at 1280 and 400 px: the trade-off, each run's curve, the runs table, no request or error, no sideways scroll", async (t) => {
  const root = tmp('folder');
  const grid = [
    ['js', 2, 0.95, 0.4],
    ['js', 6, 0.9, 0.5],
    ['l2', 2, 0.94, 0.42],
    // Two runs per series: a one-run series' line is a single point, drawn as an empty path.
    ['l2', 6, 0.91, 0.47],
  ] as const;
  grid.forEach(([reg, beta, clean, robust], i) => writeFixtureRun(path.join(root, `run-${i}`), { reg, beta, clean, robust, epochs: 3, evaluations: i === 0 }));
  mkdirSync(path.join(root, 'empty'));
  const { file, runs } = await writeReport(root);
  t.is(runs, grid.length);
  t.false(/<script/i.test(readFileSync(file, 'utf8')));
  for (const width of [1280, 400]) {
    const { page, problems } = await open(file, width);
    try {
      t.deepEqual(problems, [], `${width} px`);
      const all = await plots(page);
      checkPlots(t, all, width);
      const [tradeOff, ...curves] = all as [Plot, ...Plot[]];
      // One point and one β label per run, one line per regulariser.
      t.is(count(tradeOff, 'points'), grid.length);
      t.is(count(tradeOff, 'labels'), grid.length);
      t.is(count(tradeOff, 'lines'), 2);
      t.is(curves.length, grid.length);
      for (const c of curves) t.true(count(c, 'lines') > 0);
      // The runs side by side: one row each.
      t.deepEqual(await tableRows(page), [grid.length]);
      const o = await overflow(page);
      t.deepEqual(o.sticking, [], `${width} px`);
      t.true(o.scrollWidth <= o.clientWidth, `page ${o.scrollWidth} px wide in a ${o.clientWidth} px window`);
      const shot = path.join(shots, `folder-${width}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      t.log(`screenshot: ${shot}`);
    } finally {
      await page.close();
    }
  }
});
