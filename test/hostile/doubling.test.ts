// The rule the doubling series apply: what passes as linear, and what a quadratic parser gives.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { isLinearGrowth } from './doubling.js';

it('linear growth: every step within 3×, or one outlying step in an otherwise linear series', () => {
  assert.equal(isLinearGrowth([2, 2.1, 1.9, 2.2, 2]), true);
  assert.equal(isLinearGrowth([2.14, 2.29, 3.35, 1.59, 1.72]), true, 'a one-time jump (large-object space)');
  assert.equal(isLinearGrowth([4, 4, 4, 4, 4]), false, 'quadratic');
  assert.equal(isLinearGrowth([2, 2, 2, 4, 4]), false, 'quadratic past a size');
  assert.equal(isLinearGrowth([2, 2, 5, 2, 2]), false, 'a step over 4.5×');
  assert.equal(isLinearGrowth([2.9, 2.9, 3.5, 2.9, 2.9]), false, 'over 2.5× on average');
});
