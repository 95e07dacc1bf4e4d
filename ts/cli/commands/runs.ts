/** `st-native runs list|compare`: the run folders on disk as tables (ts/experiment/runs.ts). */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings';
import path from 'node:path';
import { compareRuns, listRuns, type GroupRow, type RunRow } from '../../experiment/runs.js';
import { formatMetric } from '../../experiment/seeds.js';
import { csvTable, textTable } from '../../experiment/tables.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);

function listTable(rows: RunRow[]) {
  return {
    header: ['run', 'status', 'preset', 'method', 'model', 'dataset', 'epochs', 'clean', 'robust', 'PGD-20', 'AA'],
    numeric: [false, false, false, false, false, false, true, true, true, true, true],
    rows: rows.map((r) => [
      r.name,
      r.status,
      r.preset ?? '-',
      r.method,
      r.model,
      r.dataset,
      r.epochsCompleted === r.epochs ? String(r.epochs) : `${r.epochsCompleted}/${r.epochs}`,
      pct(r.clean),
      r.robust === null ? '-' : `${pct(r.robust)} ${r.robustAttack}`,
      pct(r.pgd20),
      pct(r.aa),
    ]),
  };
}

const plainRow = (r: RunRow) => ({
  runDir: r.runDir,
  name: r.name,
  status: r.status,
  preset: r.preset,
  method: r.method,
  model: r.model,
  dataset: r.dataset,
  epochs: r.epochs,
  epochsCompleted: r.epochsCompleted,
  clean: r.clean,
  robust: r.robust,
  robustAttack: r.robustAttack,
  pgd20: r.pgd20,
  aa: r.aa,
});

export function runsProgram(ctx: CliContext): CommandUnknownOpts {
  const runs = new Command('runs').description('list the runs on disk, or compare runs side by side');
  runs
    .command('list')
    .description('every run under a folder (seeds groups and sweeps included), one line each')
    .argument('[dir]', 'the folder to search', 'runs')
    .option('--sort <key[:asc|desc]>', 'sort by a column (name, status, preset, method, model, dataset, epochs, clean, robust, pgd20, aa) or a config field (method.beta); accuracies sort best first')
    .option('--filter <expr>', 'keep the runs where every comma-separated condition holds: KEY=V, !=, <, <=, >, >=, ~ (contains); accuracies as 0.5 or 50%')
    .option('--json', 'print the rows as JSON')
    .option('--csv', 'print the rows as CSV')
    .addHelpText(
      'after',
      `
clean and robust are the run's own evaluation of its best checkpoint on the
test split (robust names its attack); PGD-20 and AA come from \`st-native eval\`
outputs in the run folder (the newest of each, eval-history/ included).

Examples:
  $ st-native runs list
  $ st-native runs list --sort pgd20 --filter method=st
  $ st-native runs list runs/betas \\
      --filter "method.beta>=2,clean>90%"`,
    )
    .action((dir, options) => {
      const rows = listRuns({ dir, ...(options.sort ? { sort: options.sort } : {}), ...(options.filter ? { filter: options.filter } : {}) });
      ctx.exit(EXIT.ok);
      if (options.json) return ctx.io.out(JSON.stringify(rows.map(plainRow)));
      if (options.csv) {
        const keys = Object.keys(plainRow(rows[0] ?? ({ config: {}, attacks: [] } as unknown as RunRow))) as (keyof ReturnType<typeof plainRow>)[];
        return ctx.io.out(csvTable(keys, rows.map((r) => keys.map((k) => plainRow(r)[k]))).trimEnd());
      }
      if (rows.length === 0) return ctx.io.out(`no runs under ${dir}${options.filter ? ` match ${options.filter}` : ''}`);
      ctx.io.out(textTable(listTable(rows)));
    });
  runs
    .command('compare')
    .description('runs side by side: the config fields that differ and the attack rows they share; seeds groups and sweeps as one column per group (cell) with mean ± 95% CI')
    .argument('<runs...>', 'run folders, or folders of runs (a seeds group, a sweep)')
    .option('--json', 'print the comparison as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ st-native runs compare runs/st runs/trades
  $ st-native runs compare runs/betas`,
    )
    .action((dirs, options) => {
      const c = compareRuns(dirs);
      ctx.exit(EXIT.ok);
      if (options.json) {
        return ctx.io.out(JSON.stringify({ runs: c.runs.map(plainRow), differences: c.differences, sharedAttacks: c.sharedAttacks, otherAttacks: c.otherAttacks, ...(c.groups ? { groups: c.groups, groupDifferences: c.groupDifferences } : {}) }));
      }
      if (c.groups) return ctx.io.out(groupsText(c.groups, c.groupDifferences ?? []));
      const names = c.runs.map((r) => r.name || path.basename(r.runDir));
      const numeric = [false, ...names.map(() => true)];
      const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? '-');
      ctx.io.out(
        textTable({
          header: ['', ...names],
          numeric,
          rows: [
            ['method', ...c.runs.map((r) => r.method)],
            ['epochs', ...c.runs.map((r) => `${r.epochsCompleted}/${r.epochs}`)],
            ['clean (own eval)', ...c.runs.map((r) => pct(r.clean))],
            ['robust (own eval)', ...c.runs.map((r) => (r.robust === null ? '-' : `${pct(r.robust)} ${r.robustAttack}`))],
          ],
        }),
      );
      ctx.io.out('');
      ctx.io.out(c.differences.length === 0 ? 'config: the same' : textTable({ header: ['config differs', ...names], numeric, rows: c.differences.map((d) => [d.key, ...d.values.map(show)]) }));
      ctx.io.out('');
      ctx.io.out(
        c.sharedAttacks.length === 0
          ? 'attacks: none that all of them were evaluated with (st-native eval RUN)'
          : textTable({ header: ['attack', ...names], numeric, rows: c.sharedAttacks.map((a) => [a.name, ...a.accuracies.map(pct)]) }),
      );
      if (c.otherAttacks.length > 0) ctx.io.out(`\nevaluated on some only: ${c.otherAttacks.join(', ')}`);
    });
  return runs;
}

/** Seeds groups and sweep cells side by side: each metric as mean ± 95% CI over the seeds, then the config fields that differ. */
function groupsText(groups: readonly GroupRow[], differences: readonly { key: string; values: unknown[] }[]): string {
  const names = groups.map((g) => g.name);
  const numeric = [false, ...names.map(() => true)];
  const metric = (g: GroupRow, key: string) => {
    const m = g.metrics.find((x) => x.key === key);
    return m ? formatMetric(m) : '-';
  };
  const robustLabel = groups.flatMap((g) => g.metrics).find((m) => m.key === 'robust')?.label ?? 'robust';
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? '-');
  return [
    textTable({
      header: ['', ...names],
      numeric,
      rows: [
        ['clean', ...groups.map((g) => metric(g, 'clean'))],
        [robustLabel, ...groups.map((g) => metric(g, 'robust'))],
        ['seeds (n)', ...groups.map((g) => String(g.n))],
        ['status', ...groups.map((g) => g.status)],
      ],
    }),
    'mean ± 95% CI (Student t, n−1) over each group\'s seeds, from its results.json; each run: st-native runs list <folder>',
    '',
    differences.length === 0 ? 'config: the same' : textTable({ header: ['config differs', ...names], numeric, rows: differences.map((d) => [d.key, ...d.values.map(show)]) }),
  ].join('\n');
}
