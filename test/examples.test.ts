// The bundled examples agree with each other: the CLI's default policy set and the plain policy
// the MTA examples and tests use (Haraka, Postfix, the relay MTA) must not drift apart.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPolicy } from '../src/policy.js';
import { createPolicySet } from '../src/policy-set.js';

const read = (name: string): unknown => JSON.parse(readFileSync(new URL(`../examples/${name}`, import.meta.url), 'utf8'));

it("examples/policy-set.json's default is examples/policy.json, and the set is valid", () => {
  const set = read('policy-set.json') as { default: unknown; scoped: unknown[] };
  assert.deepEqual(set.default, read('policy.json'));
  const policies = createPolicySet(set as never);
  assert.deepEqual({ ...policies.default }, { ...createPolicy(read('policy.json') as never) });
  assert.ok(policies.scoped.length >= 1, 'the demo shows a scoped policy');
});
