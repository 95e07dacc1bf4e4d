/** The README's CLI synopsis is what the parser prints (see `npm run docs:cli`). */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { withSynopsis } from '../ts/cli/synopsis.js';
import { cli, root } from './helpers/cli.js';

const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

test("the README's CLI synopsis matches --help (npm run docs:cli rewrites it)", (t) => {
  t.true(withSynopsis(readme) === readme, 'README.md is stale: run `npm run docs:cli`');
  // And the synopsis is what users see: the options list of `train --help`, line for line.
  const help = cli('train', '--help').stdout;
  const options = help.slice(help.indexOf('Options:'), help.indexOf('\n\n', help.indexOf('Options:')));
  t.true(options.length > 100);
  t.true(readme.includes(options), 'train --help options are in the README');
});

test('the README leads with the clone path and names one Python range', (t) => {
  const firstCode = /```(?:sh|bash)\n([^`]*)```/.exec(readme)?.[1] ?? '';
  t.regex(firstCode, /npm install/);
  t.notRegex(firstCode, /npm i st-native/);
  const ranges = new Set([...readme.matchAll(/Python (3\.\d+)[–-](3\.\d+)/g)].map((m) => `${m[1]}-${m[2]}`));
  t.deepEqual([...ranges], ['3.10-3.14']);
});
