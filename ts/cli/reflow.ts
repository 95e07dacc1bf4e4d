/**
 * Help notes re-wrapped to the terminal's width on word boundaries. Notes
 * are written wrapped at 80 columns; a narrower terminal would otherwise
 * break their words. Paragraphs are re-filled; indented items with a hanging
 * indent (`  clean    no attack`) are re-filled under their own column;
 * example lines (`  $ ...`) are left as written.
 */

function fill(words: string[], width: number, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of words) {
    const prefix = lines.length === 0 ? first : rest;
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `${rest}${word}`;
    } else {
      line = empty ? `${prefix}${word}` : `${line} ${word}`;
    }
    empty = false;
  }
  if (!empty) lines.push(line);
  return lines;
}

const HANGING = /^(\s+\S.*?\s{2,})(\S.*)$/;

function reflowBlock(block: string[], width: number): string[] {
  if (block.every((l) => !/^\s/.test(l))) return fill(block.join(' ').split(/\s+/).filter(Boolean), width, '', '');
  const out: string[] = [];
  for (let i = 0; i < block.length; i++) {
    const line = block[i]!;
    const item = HANGING.exec(line);
    if (/^\s+\$ /.test(line) || /^\s{4,}\S/.test(line) && i > 0 && /^\s+\$ .*\\$/.test(block[i - 1]!)) {
      out.push(line);
      continue;
    }
    if (!item) {
      // An indented line of its own: re-filled at its indentation.
      const indent = /^\s*/.exec(line)![0];
      out.push(...(width - indent.length < 20 ? [line] : fill(line.trim().split(/\s+/), width, indent, indent)));
      continue;
    }
    const start = i;
    const column = item[1]!.length;
    const words = item[2]!.split(/\s+/);
    // Continuation lines sit at the item's text column.
    while (i + 1 < block.length && block[i + 1]!.length > column && /^\s+$/.test(block[i + 1]!.slice(0, column)) && block[i + 1]![column] !== ' ') {
      words.push(...block[++i]!.trim().split(/\s+/));
    }
    // Too narrow for a hanging column: keep the item as written.
    if (width - column < 20) out.push(...block.slice(start, i + 1));
    else out.push(...fill(words, width, item[1]!, ' '.repeat(column)));
  }
  return out;
}

export function reflow(text: string, width: number): string {
  const lead = /^\n*/.exec(text)![0];
  const blocks: string[][] = [[]];
  for (const line of text.slice(lead.length).split('\n')) {
    if (line.trim() === '') blocks.push([]);
    else blocks[blocks.length - 1]!.push(line);
  }
  return lead + blocks.map((b) => reflowBlock(b, width).join('\n')).join('\n\n');
}

/** The width help is laid out for: the terminal's (within 40-100 columns), else 80. */
export function helpWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout): number {
  return stream.isTTY && stream.columns ? Math.min(100, Math.max(40, stream.columns)) : 80;
}
