/** Help laid out to the terminal: every line within the width, words whole. */
import test from 'ava';
import { buildProgram } from '../ts/cli/program.js';
import { helpWidth, reflow } from '../ts/cli/reflow.js';

async function helpAt(width: number, ...args: string[]): Promise<string> {
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s), tty: false };
  const program = buildProgram({ io, hooks: {}, exit: () => undefined }, width);
  await program.parseAsync([...args, '--help'], { from: 'user' }).catch(() => undefined);
  return out.join('\n');
}

const COMMANDS = [[], ['train'], ['sweep'], ['runs'], ['runs', 'list'], ['runs', 'compare'], ['eval'], ['report'], ['models'], ['presets'], ['presets', 'show'], ['setup'], ['doctor'], ['data'], ['data', 'list'], ['data', 'fetch'], ['data', 'import-rst'], ['completion']];

for (const width of [60, 80, 120]) {
  test(`every command's help fits ${width} columns`, async (t) => {
    for (const args of COMMANDS) {
      const help = await helpAt(width, ...args);
      t.regex(help, /^Usage: st-native/, args.join(' '));
      const long = help.split('\n').filter((l) => l.length > width);
      t.deepEqual(long, [], `${args.join(' ') || '(root)'} at ${width}`);
    }
  });
}

test('reflow re-fills paragraphs and hanging items on word boundaries, keeps examples', (t) => {
  const text = '\nOne two three four five six seven eight nine ten eleven twelve.\n\n  item     alpha beta gamma delta epsilon zeta eta theta\n           iota kappa\n\n  $ st-native train --preset a-very-long-preset-name --epochs 3';
  const out = reflow(text, 34);
  t.is(
    out,
    '\nOne two three four five six seven\neight nine ten eleven twelve.\n\n  item     alpha beta gamma delta\n           epsilon zeta eta theta\n           iota kappa\n\n  $ st-native train --preset a-very-long-preset-name --epochs 3',
  );
  // Too narrow for the hanging column: the item stays as written.
  t.true(reflow(text, 30).includes('  item     alpha beta gamma delta epsilon zeta eta theta\n           iota kappa'));
  // Every word survives, in order.
  t.deepEqual(out.split(/\s+/).filter(Boolean), text.split(/\s+/).filter(Boolean));
});

test('help width follows the terminal within 40-100 columns, 80 without one', (t) => {
  t.is(helpWidth({ isTTY: true, columns: 60 }), 60);
  t.is(helpWidth({ isTTY: true, columns: 200 }), 100);
  t.is(helpWidth({ isTTY: true, columns: 20 }), 40);
  t.is(helpWidth({ isTTY: false, columns: 60 }), 80);
});
