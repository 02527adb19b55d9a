// Assertions shared by the test files.
import assert from 'node:assert/strict';
import { OutboundPoolsError } from '../src/errors.js';

/** Asserts an OutboundPoolsError with `code` and a message matching `pattern`; says what came back otherwise. */
export function expectRefused(run: () => unknown, code: string, pattern: RegExp, label: string): void {
  let result: unknown;
  try {
    result = run();
  } catch (error) {
    assert.ok(error instanceof OutboundPoolsError, `${label}: threw ${String(error)} instead of an OutboundPoolsError`);
    assert.equal(error.code, code, `${label}: wrong error code`);
    assert.match(error.message, pattern, `${label}: unexpected message`);
    return;
  }
  const shown = Array.isArray(result) ? `${result.length} fields` : JSON.stringify(result);
  assert.fail(`${label}: expected OutboundPoolsError ${code}, but it returned ${shown}`);
}
