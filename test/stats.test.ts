/** Mean, SD and the Student-t interval against closed forms and the printed t table. */
import test from 'ava';
import fc from 'fast-check';
import { mean, sampleSd, studentTCdf, studentTQuantile, summarize } from '../ts/experiment/stats.js';

const close = (actual: number, expected: number, tol: number) => Math.abs(actual - expected) <= tol;

test('t quantiles match the printed table (two-sided 95%: p = 0.975)', (t) => {
  // Values from the standard t table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3 decimals.
  const table: [number, number, number][] = [
    [0.975, 1, 12.706],
    [0.975, 2, 4.303],
    [0.975, 3, 3.182],
    [0.975, 4, 2.776],
    [0.975, 9, 2.262],
    [0.975, 30, 2.042],
    [0.975, 100, 1.984],
    [0.995, 10, 3.169],
    [0.95, 5, 2.015],
  ];
  for (const [p, dof, expected] of table) {
    const q = studentTQuantile(p, dof);
    t.true(close(q, expected, 5e-4), `t(${p}, ${dof}) = ${q}, table ${expected}`);
  }
});

test('t quantiles match the closed forms for 1 and 2 degrees of freedom, and the normal for many', (t) => {
  for (const p of [0.6, 0.9, 0.975, 0.999]) {
    // 1 dof is Cauchy: tan(π(p − ½)); 2 dof: (2p − 1) / sqrt(2p(1 − p)).
    t.true(close(studentTQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-9 * Math.max(1, Math.tan(Math.PI * (p - 0.5)))), `1 dof, p ${p}`);
    t.true(close(studentTQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-9), `2 dof, p ${p}`);
  }
  t.true(close(studentTQuantile(0.975, 1e7), 1.959963984540054, 1e-6));
  t.is(studentTQuantile(0.5, 7), 0);
  t.true(close(studentTQuantile(0.025, 4), -studentTQuantile(0.975, 4), 1e-12));
});

test('the quantile inverts the CDF', (t) => {
  // fast-check throws a counterexample; the assertion is that it finds none.
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 0.999, noNaN: true }), fc.integer({ min: 1, max: 500 }), (p, dof) => {
        return close(studentTCdf(studentTQuantile(p, dof), dof), p, 1e-10);
      }),
    ),
  );
});

test('mean, sample SD and the 95% interval of 1..5', (t) => {
  const xs = [1, 2, 3, 4, 5];
  t.is(mean(xs), 3);
  t.true(close(sampleSd(xs), Math.sqrt(2.5), 1e-12));
  const s = summarize(xs);
  t.is(s.n, 5);
  // t(0.975, 4) = 2.7764451051977987 (scipy.stats.t.ppf).
  const half = (2.7764451051977987 * Math.sqrt(2.5)) / Math.sqrt(5);
  t.true(close(s.ci95!, half, 1e-9));
  t.true(close(s.low!, 3 - half, 1e-9));
  t.true(close(s.high!, 3 + half, 1e-9));
});

test('one value has a mean but no spread; bad input is refused', (t) => {
  t.deepEqual(summarize([0.7]), { n: 1, mean: 0.7, sd: null, ci95: null, low: null, high: null });
  t.true(Number.isNaN(sampleSd([1])));
  t.throws(() => summarize([]), { message: /at least one value/ });
  t.throws(() => summarize([1, Number.NaN]), { message: /finite/ });
  t.throws(() => studentTQuantile(1, 3), { message: /probability/ });
  t.throws(() => studentTQuantile(0.9, 0), { message: /degrees of freedom/ });
});

test('identical values give a zero-width interval', (t) => {
  const s = summarize([0.5, 0.5, 0.5]);
  t.is(s.sd, 0);
  t.is(s.ci95, 0);
});
