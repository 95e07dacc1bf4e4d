/**
 * The published declarations type-check in a consumer's strict project that
 * has neither @types/node nor skipLibCheck, with `lib: ES2022` only: no
 * `NodeJS.*`, and the few web globals they name (AbortSignal, zod's URL) are
 * declared by the package itself.
 */
import test from 'ava';
import { rmSync } from 'node:fs';
import { consumerProject } from './helpers/consumer-project.js';

const project = consumerProject();
test.after.always(() => rmSync(project.dir, { recursive: true, force: true }));

test('dist/ts/index.d.ts and all it reaches compile without @types/node, DOM or skipLibCheck', (t) => {
  const r = project.check(
    [
      "import * as st from 'st-native';",
      "import type { Environment, FetchOptions, TrainOptions, Evaluation } from 'st-native';",
      'const env: Environment = { ST_NATIVE_OFFLINE: "1" };',
      'const fetchOptions: FetchOptions = { env, dataDir: null };',
      'const train: (o?: TrainOptions) => Promise<st.RunResult> = st.train;',
      'const table: (e: Evaluation) => string = st.markdownReport;',
      'export { fetchOptions, train, table };',
      '',
    ].join('\n'),
  );
  t.is(r.status, 0, r.output);
  t.is(r.output, '');
  // It really ran on the declarations, and without Node's types.
  t.true(r.files.some((f) => f.endsWith('node_modules/st-native/dist/ts/index.d.ts')), r.files.join('\n'));
  t.false(r.files.some((f) => f.includes('@types/node')), 'no @types/node in the program');
});

test('the consumer project itself is strict: a type error in the snippet is reported', (t) => {
  const r = project.check("import { train } from 'st-native';\nvoid train({ preset: 42 });\n");
  t.not(r.status, 0);
  t.regex(r.output, /main\.ts\(2,\d+\): error TS2322/);
});
