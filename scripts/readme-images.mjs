// Renders the README's pictures from a finished sweep folder: its trade-off
// plot (the first SVG of the sweep's report.html, as a PNG) and a screenshot
// of the top of that report, both through the headless Chromium the browser
// test uses (@sparticuz/chromium + puppeteer-core, devDependencies).
//
//   node scripts/readme-images.mjs runs/<sweep> [docs/images]
//
// Writes trade-off.png and report.png, small (a few tens of kB): they are
// committed so the README shows them without a build.
import chromium from '@sparticuz/chromium';
import puppeteer from 'puppeteer-core';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [sweepDir, outDir = 'docs/images'] = process.argv.slice(2);
if (!sweepDir) {
  console.error('usage: node scripts/readme-images.mjs <sweep folder> [out folder]');
  process.exit(2);
}
const report = path.resolve(sweepDir, 'report.html');
if (!existsSync(report)) {
  console.error(`${report} does not exist: run the sweep to its end first (it writes report.html), or st-native report ${sweepDir}`);
  process.exit(1);
}
mkdirSync(outDir, { recursive: true });
const browser = await puppeteer.launch({
  executablePath: await chromium.executablePath(),
  headless: 'shell',
  args: ['--no-sandbox'],
  env: { ...process.env, FONTCONFIG_PATH: path.join(tmpdir(), 'fonts') },
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 700, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(report).href, { waitUntil: 'load' });
  const plot = await page.$('svg');
  if (!plot) throw new Error(`${report} has no plot`);
  await plot.screenshot({ path: path.join(outDir, 'trade-off.png') });
  await page.screenshot({ path: path.join(outDir, 'report.png'), clip: { x: 0, y: 0, width: 900, height: 700 } });
  console.error(`wrote ${path.join(outDir, 'trade-off.png')} and ${path.join(outDir, 'report.png')}`);
} finally {
  await browser.close();
}
