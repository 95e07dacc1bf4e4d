/**
 * One table, three renderings: aligned text for the terminal, GitHub
 * Markdown for notes and papers, CSV (RFC 4180) for spreadsheets and
 * pandas. Cells are strings already formatted by the caller, except CSV,
 * which takes the raw values so that numbers stay numbers.
 */
import type { MetricSummary } from './stats.js';

export interface Table {
  header: string[];
  rows: string[][];
  /** Columns to right-align (numbers) in text and Markdown. */
  numeric?: readonly boolean[];
}

export function textTable(t: Table): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (t.numeric?.[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(t.header), line(widths.map((w) => '-'.repeat(w))), ...t.rows.map(line)].join('\n');
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdownTable(t: Table): string {
  return [
    `| ${t.header.map(mdCell).join(' | ')} |`,
    `|${t.header.map((_, i) => (t.numeric?.[i] ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ].join('\n');
}

type CsvValue = string | number | boolean | null | undefined;

function csvCell(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with a header line; empty cells for null. Ends with a newline. */
export function csvTable(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** An accuracy (a fraction) as `95.6 ± 1.2%`, or `95.6%` for a single run. */
export function percentWithInterval(s: MetricSummary, digits = 1): string {
  const m = (100 * s.mean).toFixed(digits);
  return s.ci95 === null ? `${m}%` : `${m} ± ${(100 * s.ci95).toFixed(digits)}%`;
}

/** Any other quantity as `12.3 ± 0.4`. */
export function valueWithInterval(s: MetricSummary, digits = 1): string {
  const m = s.mean.toFixed(digits);
  return s.ci95 === null ? m : `${m} ± ${s.ci95.toFixed(digits)}`;
}
