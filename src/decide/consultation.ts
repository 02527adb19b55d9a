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

interface Call {
  verdict: Verdict<unknown> | undefined;
  readonly deadlineMs: number;
  readonly cutToTotal: boolean;
  readonly controller: AbortController | undefined;
}

/** One decision's provider calls. Add the calls, then await {@link Consultation.settled}. */
export class Consultation {
  readonly #calls: Call[] = [];
  readonly #totalMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #start = Date.now();
  #pending = 0;
  #timer: NodeJS.Timeout | undefined;
  #finish: (() => void) | undefined;
  #onAbort: (() => void) | undefined;

  constructor(totalMs: number, signal: AbortSignal | undefined) {
    this.#totalMs = totalMs;
    this.#signal = signal;
  }

  /**
   * Starts a provider call; returns its slot for {@link verdict}. `call` gets an AbortSignal
   * (aborted when its time is up) when `wantsSignal`; its answer goes through `check`.
   */
  add(deadlineMs: number, wantsSignal: boolean, call: (signal: AbortSignal | undefined) => unknown, check: (value: unknown) => unknown): number {
    const slot = this.#calls.length;
    const entry: Call = {
      verdict: undefined,
      deadlineMs: Math.min(deadlineMs, this.#totalMs),
      cutToTotal: this.#totalMs < deadlineMs,
      controller: wantsSignal ? new AbortController() : undefined,
    };
    this.#calls.push(entry);
    if (this.#signal?.aborted) {
      entry.verdict = { state: 'failed', error: 'not asked: the caller aborted the decision' };
      return slot;
    }
    this.#pending++;
    let answer: unknown;
    try {
      answer = call(entry.controller?.signal);
    } catch (error) {
      this.#settle(entry, { state: 'failed', error: describeError(error) });
      return slot;
    }
    if (typeof (answer as { then?: unknown } | null)?.then !== 'function') {
      // An in-memory provider answered at once: no promise, no timer.
      let verdict: Verdict<unknown>;
      try {
        verdict = { state: 'provided', value: check(answer) };
      } catch (error) {
        verdict = { state: 'failed', error: describeError(error) };
      }
      this.#settle(entry, verdict);
      return slot;
    }
    (answer as Promise<unknown>).then(
      (value) => {
        if (entry.verdict !== undefined) return; // too late: already cut off
        let verdict: Verdict<unknown>;
        try {
          verdict = { state: 'provided', value: check(value) };
        } catch (error) {
          verdict = { state: 'failed', error: describeError(error) };
        }
        this.#settle(entry, verdict);
      },
      (error: unknown) => {
        if (entry.verdict === undefined) this.#settle(entry, { state: 'failed', error: describeError(error) });
      },
    );
    return slot;
  }

  /** Whether every call has answered already (all synchronously): no need to await {@link settled}. */
  get done(): boolean {
    return this.#pending === 0;
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

  #settle(entry: Call, verdict: Verdict<unknown>): void {
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
    this.#timer = setTimeout(() => this.#cutOff(Date.now() - this.#start), Math.max(0, next - (Date.now() - this.#start)));
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
