// Asking the providers: every call starts at once, each has its own deadline (cut to the
// decision's total), and one timer watches them all. A call that throws, rejects, hangs or
// answers garbage becomes a failed verdict; nothing here rejects. One timer per decision rather
// than one per call, and an AbortController only for a provider that takes a signal: at
// hundreds of thousands of decisions a second, Node's timers and abort signals cost more than
// the rules themselves, while a provider doing real I/O can afford its own signal.

import { show } from '../errors.js';
import type { Verdict } from './types.js';
import { GarbageError } from './verdicts.js';

/** A provider's error in words; safe on anything a provider can throw (getters that throw included). */
function describeError(error: unknown): string {
  try {
    if (error instanceof GarbageError) return `returned garbage: ${error.message}`;
    if (error instanceof Error) {
      const code = (error as { code?: unknown }).code;
      const prefix = typeof code === 'string' || typeof code === 'number' ? `${code}: ` : '';
      return `${prefix}${typeof error.message === 'string' ? error.message : show(error.message)}`;
    }
    return `threw ${show(error)}`;
  } catch {
    return 'threw an error that cannot be described';
  }
}

/** Microtask turns a provider may take before the deadline timer is set. */
const FREE_TURNS = 8;

/** A provider call that answered with a promise: handed to a {@link Consultation} to wait for. */
export interface Pending {
  readonly answer: PromiseLike<unknown>;
  readonly check: (value: unknown) => unknown;
  readonly controller: AbortController | undefined;
}

const NOT_ASKED_ABORTED: Verdict<never> = Object.freeze({ state: 'failed', error: 'not asked: the caller aborted the decision' });

/**
 * Calls a provider. An answer given at once (an in-memory provider) is checked and returned as
 * its verdict, with no promise and no timer; so is a synchronous throw. A promise comes back as
 * {@link Pending}, for a {@link Consultation} to wait for under its deadline. `call` gets an
 * AbortSignal (aborted when its time is up) when `wantsSignal`.
 */
export function ask(
  call: (signal: AbortSignal | undefined) => unknown,
  check: (value: unknown) => unknown,
  wantsSignal: boolean,
  callerSignal: AbortSignal | undefined,
): Verdict<unknown> | Pending {
  if (callerSignal?.aborted) return NOT_ASKED_ABORTED;
  const controller = wantsSignal ? new AbortController() : undefined;
  let answer: unknown;
  let isThenable: boolean;
  try {
    answer = call(controller?.signal);
    isThenable = typeof (answer as { then?: unknown } | null)?.then === 'function';
  } catch (error) {
    return { state: 'failed', error: describeError(error) };
  }
  return isThenable ? { answer: answer as PromiseLike<unknown>, check, controller } : checked(answer, check);
}

/** Whether {@link ask} has to wait for the answer. */
export function isPending(answer: Verdict<unknown> | Pending): answer is Pending {
  return (answer as Partial<Pending>).answer !== undefined;
}

function checked(value: unknown, check: (value: unknown) => unknown): Verdict<unknown> {
  try {
    return { state: 'provided', value: check(value) };
  } catch (error) {
    return { state: 'failed', error: describeError(error) };
  }
}

interface Call {
  verdict: Verdict<unknown> | undefined;
  readonly deadlineMs: number;
  readonly cutToTotal: boolean;
  readonly controller: AbortController | undefined;
}

/**
 * The provider calls of one decision that answered with a promise: {@link watch} each, then
 * await {@link settled}. Deadlines count from `startMs`, `performance.now()` read before the
 * first provider was called, so a provider's synchronous work counts against them too.
 */
export class Consultation {
  readonly #calls: Call[] = [];
  readonly #totalMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #start: number;
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;
  #finish: (() => void) | undefined;
  #onAbort: (() => void) | undefined;

  constructor(totalMs: number, signal: AbortSignal | undefined, startMs: number) {
    this.#totalMs = totalMs;
    this.#signal = signal;
    this.#start = startMs;
  }

  /** Waits for a pending call under `deadlineMs` (cut to the total); returns its slot for {@link verdict}. */
  watch(pending: Pending, deadlineMs: number): number {
    const slot = this.#calls.length;
    const entry: Call = {
      verdict: undefined,
      deadlineMs: Math.min(deadlineMs, this.#totalMs),
      cutToTotal: this.#totalMs < deadlineMs,
      controller: pending.controller,
    };
    this.#calls.push(entry);
    this.#pending++;
    try {
      pending.answer.then(
        (value) => this.#settle(entry, checked(value, pending.check)),
        (error: unknown) => this.#settle(entry, { state: 'failed', error: describeError(error) }),
      );
    } catch (error) {
      // A thenable whose then() throws (after calling back, the answer it gave stands).
      this.#settle(entry, { state: 'failed', error: describeError(error) });
    }
    return slot;
  }

  /** The verdict in `slot`, once {@link settled} has resolved. */
  verdict<T>(slot: number): Verdict<T> {
    return this.#calls[slot]!.verdict as Verdict<T>;
  }

  /** Resolves when every call has answered or been cut off. Never rejects. */
  async settled(): Promise<void> {
    // In-memory providers answer within a few microtask turns: give them those before paying
    // for a timer, which is then set for what is left of the earliest deadline.
    for (let turn = 0; turn < FREE_TURNS && this.#pending > 0; turn++) await undefined;
    if (this.#pending === 0) return;
    return new Promise((resolve) => {
      this.#finish = resolve;
      // The caller may have aborted while the providers were being called.
      if (this.#signal?.aborted) {
        this.#cutOff(Infinity, 'cut off: the caller aborted the decision');
        return;
      }
      this.#arm();
      if (this.#signal !== undefined) {
        this.#onAbort = () => this.#cutOff(Infinity, 'cut off: the caller aborted the decision');
        this.#signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    });
  }

  /** Records a call's verdict, once: a later report (too late, or a thenable calling back twice) is ignored. */
  #settle(entry: Call, verdict: Verdict<unknown>): void {
    if (entry.verdict !== undefined) return;
    entry.verdict = verdict;
    this.#pending--;
    if (this.#pending === 0 && this.#finish !== undefined) this.#done();
  }

  #done(): void {
    clearTimeout(this.#timer);
    if (this.#onAbort !== undefined) this.#signal!.removeEventListener('abort', this.#onAbort);
    this.#finish!();
  }

  /** Sets the timer for the earliest deadline still open. */
  #arm(): void {
    let next = Infinity;
    for (const call of this.#calls) if (call.verdict === undefined && call.deadlineMs < next) next = call.deadlineMs;
    clearTimeout(this.#timer);
    // performance.now(), not Date.now(): deadlines are durations, and a wall clock stepped back
    // (NTP, an administrator) would otherwise hold a call open until the clock caught up.
    this.#timer = setTimeout(() => this.#cutOff(performance.now() - this.#start), Math.max(0, next - (performance.now() - this.#start)));
  }

  /** Fails every open call whose deadline has passed at `elapsedMs`. */
  #cutOff(elapsedMs: number, why?: string): void {
    for (const call of this.#calls) {
      // Timers may fire a millisecond early by the wall clock: allow for it.
      if (call.verdict !== undefined || call.deadlineMs > elapsedMs + 1) continue;
      call.controller?.abort();
      const error = why ?? (call.cutToTotal ? `no answer within the decision deadline of ${call.deadlineMs} ms` : `no answer within ${call.deadlineMs} ms`);
      this.#settle(call, { state: 'failed', error });
    }
    if (this.#pending > 0) this.#arm();
  }
}
