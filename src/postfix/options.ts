// The numeric options of the Postfix daemons (the milter session and server, the socketmap
// server), validated once when a server or session is made, as every option of the library is:
// a wrong one is an OutboundPoolsError `invalid-context` naming the option, the range and the value.

import { OutboundPoolsError, show } from '../errors.js';

/**
 * `value` when it is a whole number from `min` to `max`; `fallback` when it is undefined.
 * `owner` names what takes the option (`startMilterServer`, `MilterSession`, …).
 * @throws {OutboundPoolsError} `invalid-context` for anything else (a fraction, NaN, a string, out of range).
 */
export function wholeNumberOption(owner: string, name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new OutboundPoolsError('invalid-context', `${owner}: ${name} must be a whole number ${range}, got ${typeof value === 'number' ? value : show(value)}.`);
  }
  return value;
}
