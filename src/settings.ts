// Checking option objects once, at the edge: one helper for the policy and every factory, so
// that an unknown key is an error everywhere and says where it was.

import { show } from './errors.js';

/** Whether `value` is a plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `value` as an object with only `known` keys (`{}` when undefined); otherwise throws what
 * `fail` makes of the message. `path` names the object in messages (`policy.spam`, `cache`).
 */
export function settingsObject(value: unknown, path: string, known: readonly string[], fail: (message: string) => Error): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw fail(`${path} must be an object, got ${show(value)}.`);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw fail(`Unknown setting ${path}.${key}; known: ${known.join(', ')}.`);
  }
  return value;
}
