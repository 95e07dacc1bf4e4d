/** Text formatting of accuracies: the precision an image count supports. */
import test from 'ava';
import { intervalOf, pctOf, percentDecimals } from '../ts/tui/format.js';

test('an accuracy is printed with the decimals its image count supports', (t) => {
  // One image is 100/n percent: whole percents up to 100 images, tenths up to 1,000, then hundredths.
  t.deepEqual([1, 20, 64, 100, 101, 1000, 1001, 10_000, 50_000].map(percentDecimals), [0, 0, 0, 0, 1, 1, 2, 2, 2]);
  t.is(pctOf(52 / 100, 100), '52%');
  t.is(pctOf(523 / 1000, 1000), '52.3%');
  t.is(pctOf(5231 / 10_000, 10_000), '52.31%');
  t.is(intervalOf([0.4231, 0.6169], 100), '42–62%');
  t.is(intervalOf([0.4931, 0.5549], 1000), '49.3–55.5%');
});
