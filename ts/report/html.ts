/**
 * The HTML of a report: escaping, tables, and the page around them. The page
 * is one file that opens anywhere: inline CSS and SVG, no scripts, no
 * fonts, images or styles from elsewhere.
 */

/** Text for an element or a quoted attribute. */
export function esc(value: string | number | null | undefined): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A cell: text (escaped), or markup the caller built (`{ html }`), right-aligned when numeric. */
export type Cell = string | number | { html: string; numeric?: boolean };

function cell(c: Cell, tag: 'td' | 'th'): string {
  if (typeof c === 'object') return `<${tag}${c.numeric ? ' class="num"' : ''}>${c.html}</${tag}>`;
  return `<${tag}${typeof c === 'number' ? ' class="num"' : ''}>${esc(c)}</${tag}>`;
}

export function table(head: readonly string[], rows: readonly (readonly Cell[])[], caption?: string): string {
  return [
    '<table>',
    ...(caption ? [`<caption>${esc(caption)}</caption>`] : []),
    `<thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>`,
    '<tbody>',
    ...rows.map((r) => `<tr>${r.map((c) => cell(c, 'td')).join('')}</tr>`),
    '</tbody>',
    '</table>',
  ].join('\n');
}

/** A definition list of facts (missing values shown as "—"). */
export function facts(items: readonly (readonly [string, string | number | null | undefined])[]): string {
  return `<dl class="facts">\n${items.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v === null || v === undefined || v === '' ? '—' : esc(v)}</dd>`).join('\n')}\n</dl>`;
}

export function figure(svg: string, caption: string): string {
  return `<figure>\n${svg}\n<figcaption>${esc(caption)}</figcaption>\n</figure>`;
}

export function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}">\n<h2>${esc(title)}</h2>\n${body}\n</section>`;
}

export function notices(list: readonly string[]): string {
  return list.length === 0 ? '' : `<ul class="notices">\n${list.map((n) => `<li>${esc(n)}</li>`).join('\n')}\n</ul>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.sub { color: #666; margin: 0 0 16px; }
/* A table wider than the page scrolls inside its own box, not the page (narrow screens). */
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; display: block; max-width: 100%; overflow-x: auto; }
caption { text-align: left; color: #666; padding-bottom: 4px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.stage td:first-child { padding-left: 24px; color: #555; }
tr.worst td { font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.facts dt { color: #666; }
dl.facts dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; overflow-wrap: anywhere; }
figure { margin: 12px 0 20px; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #666; font-size: 13px; }
pre { background: #f6f6f6; padding: 12px; overflow: auto; font-size: 12px; }
ul.notices { background: #fff8e1; border: 1px solid #f0d98c; padding: 8px 8px 8px 28px; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
nav a { margin-right: 12px; }
`;

export function page(title: string, subtitle: string, nav: readonly [string, string][], body: readonly string[]): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<header>\n<h1>${esc(title)}</h1>\n<p class="sub">${esc(subtitle)}</p>\n<nav>${nav.map(([id, label]) => `<a href="#${esc(id)}">${esc(label)}</a>`).join('')}</nav>\n</header>`,
    '<main>',
    ...body.filter((b) => b !== ''),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
