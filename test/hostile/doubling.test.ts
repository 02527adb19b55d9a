// The rule the doubling series apply: what passes as linear, and what a quadratic parser gives.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { assertLinear, isLinearGrowth } from './doubling.js';

it('linear growth: every step within 3×, or one outlying step in an otherwise linear series', () => {
  assert.equal(isLinearGrowth([2, 2.1, 1.9, 2.2, 2]), true);
  assert.equal(isLinearGrowth([2.14, 2.29, 3.35, 1.59, 1.72]), true, 'a one-time jump (large-object space)');
  assert.equal(isLinearGrowth([4, 4, 4, 4, 4]), false, 'quadratic');
  assert.equal(isLinearGrowth([2, 2, 2, 4, 4]), false, 'quadratic past a size');
  assert.equal(isLinearGrowth([2, 2, 5, 2, 2]), false, 'a step over 4.5×');
  assert.equal(isLinearGrowth([2.9, 2.9, 3.5, 2.9, 2.9]), false, 'over 2.5× on average');
});

it('assertLinear passes a linear scan and fails a quadratic one, whatever the retries', async () => {
  /** Sums the character codes: n steps. */
  const scan = (text: string): number => {
    let sum = 0;
    for (let i = 0; i < text.length; i++) sum += text.charCodeAt(i);
    return sum;
  };
  /** Compares every pair of characters: n² steps. */
  const pairs = (text: string): number => {
    let same = 0;
    for (let i = 0; i < text.length; i++) for (let j = 0; j < text.length; j++) if (text.charCodeAt(i) === text.charCodeAt(j)) same++;
    return same;
  };
  const make = (size: number): string => Buffer.from('ab'.repeat(size / 2), 'latin1').toString('latin1');
  await assertLinear(make, scan, { start: 2048 }); // up to 64 Ki characters (see doubling.ts)
  // Three doublings: a quadratic run at the largest size takes 4³ = 64 × the smallest's, not 4⁵.
  await assert.rejects(assertLinear(make, pairs, { start: 64, doublings: 3 }), /not linear/);
});
