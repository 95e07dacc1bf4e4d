/**
 * Preset and attack names are literal types of the API: a consumer's
 * compiler accepts the real names and refuses typos; the run-time guards
 * agree with what `presets` holds and what the evaluation accepts.
 */
import test from 'ava';
import { rmSync } from 'node:fs';
import { isAttackName, isPresetName, type AttackName, PRESET_NAMES, presets, RUN_ATTACKS, PAPER_ATTACKS } from '../ts/index.js';
import { resolveAttack } from '../ts/experiment/evaluate.js';
import { ConfigError } from '../ts/config/errors.js';
import { consumerProject } from './helpers/consumer-project.js';

const project = consumerProject();
test.after.always(() => rmSync(project.dir, { recursive: true, force: true }));

test('PRESET_NAMES is exactly the presets, in order', (t) => {
  t.deepEqual([...PRESET_NAMES], presets.map((p) => p.name));
  for (const p of presets) t.true(isPresetName(p.name), p.name);
  for (const bad of ['mnist-fast', 'MNIST-ST-QUICK', '', 42, null, undefined, {}]) t.false(isPresetName(bad), String(bad));
});

test('isAttackName accepts what the evaluation resolves and refuses what it rejects', (t) => {
  const d = { epsilon: 0.3, stepSize: 0.01, epsilonL2: 2, keep: 'best' as const };
  const good = [...RUN_ATTACKS, ...PAPER_ATTACKS, 'pgd-20', 'pgd-50', 'cw-20', 'cw20', 'pgd20x5', 'pgd-20x5-l2', 'fgsm-l2', 'aa', 'aa-rand-l2', 'apgd-ce', 'fab-t', 'square-l2'];
  for (const name of good) {
    t.true(isAttackName(name), name);
    t.notThrows(() => resolveAttack(name as AttackName, d), name);
  }
  for (const name of ['bim', 'PGD20', 'pgd', 'pgd--20', 'pgd_20', 'apgdce', 'cw-l2x', '', 'pgd20 ']) {
    t.false(isAttackName(name), name);
    if (name.trim() !== 'pgd20') t.throws(() => resolveAttack(name as AttackName, d), { instanceOf: ConfigError }, name);
  }
  t.false(isAttackName(20));
  // A dashed name keeps its spelling: the results and the table name it as given.
  t.is(resolveAttack('pgd-20', d).name, 'pgd-20');
  t.like(resolveAttack('pgd-20', d), { kind: 'pgd', steps: 20 });
  t.like(resolveAttack('cw-20', d), { kind: 'cw', steps: 20 });
});

test('a consumer compiles real names and gets a compile error for a typo', (t) => {
  const ok = project.check(
    [
      "import { evaluate, train, isPresetName, isAttackName, type AttackName, type PresetName } from 'st-native';",
      "const p: PresetName = 'cifar10-wrn34_10-st-awp';",
      "const names: AttackName[] = ['clean', 'run', 'fgsm', 'fgsm-l2', 'pgd20', 'pgd-20', 'pgd100x5', 'pgd20-l2', 'cw', 'cw20', 'aa', 'aa-rand-l2', 'apgd-t', 'square'];",
      'void train({ preset: p });',
      "void evaluate({ runDir: 'runs/x', attacks: names });",
      'declare const fromCli: string;',
      'if (isPresetName(fromCli)) void train({ preset: fromCli });',
      "if (isAttackName(fromCli)) void evaluate({ file: 'm.safetensors', attacks: [fromCli] });",
      '',
    ].join('\n'),
  );
  t.is(ok.status, 0, ok.output);

  const typos: [string, RegExp][] = [
    ["void train({ preset: 'mnist-fast' });", /main\.ts\(2,\d+\): error TS2322: Type '"mnist-fast"' is not assignable to type/],
    ["void evaluate({ runDir: 'r', attacks: ['bim'] });", /main\.ts\(2,\d+\): error TS2769[\s\S]*Type '"bim"' is not assignable to type 'AttackInput'/],
    ["void evaluate({ runDir: 'r', attacks: ['apgdce'] });", /Type '"apgdce"' is not assignable to type 'AttackInput'/],
    ["declare const s: string;\nvoid train({ preset: s });", /main\.ts\(3,\d+\): error TS2322: Type 'string' is not assignable to type/],
  ];
  for (const [line, error] of typos) {
    const r = project.check(`import { evaluate, train } from 'st-native';\n${line}\n`);
    t.not(r.status, 0, line);
    t.regex(r.output, error, line);
  }
});
