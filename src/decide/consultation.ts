// Asking the providers: every call starts at once, each has its own deadline (cut to the
// decision's total), and nothing here rejects: a call that throws, rejects, hangs or answers
// garbage becomes a failed verdict. The deadlines of every decision waiting on a provider are
// watched by one timer for the whole process (see "One timer" below) and an AbortController is
// made only for a provider that takes a signal: at tens of thousands of decisions a second,
// a Node timer per decision and an abort signal per call cost more than the rules themselves,
// while a provider doing real I/O can afford its own signal.

import { quoteText, show } from '../errors.js';
import type { Verdict } from './types.js';
import { GarbageError } from './verdicts.js';
import { plainRecord } from '../records.js';

/** The most characters of an error's `code` that a reason quotes (Node's are a few words: `ECONNREFUSED`). */
const MAX_CODE_LENGTH = 64;

/**
 * A provider's error in words; safe on anything a provider can throw (getters that throw
 * included). It goes into a `provider-failed` or `dns-error` reason, which MTAs log and the CLI
 * prints a line each: the code and message are quoted (quoteText), bounded and with their
 * control characters escaped, so that an error's `\r\n550 …` forges no line.
 */
function describeError(error: unknown): string {
  try {
    if (error instanceof GarbageError) return `returned garbage: ${quoteText(error.message)}`;
    if (error instanceof Error) {
      const code = (error as { code?: unknown }).code;
      const prefix = typeof code === 'string' ? `${quoteText(code, MAX_CODE_LENGTH)}: ` : typeof code === 'number' ? `${code}: ` : '';
      return `${prefix}${typeof error.message === 'string' ? quoteText(error.message) : show(error.message)}`;
    }
    return `threw ${show(error)}`;
  } catch {
    return 'threw an error that cannot be described';
  }
}

/** A provider call that answered with a promise: handed to a {@link Consultation} to wait for. */
export interface Pending {
  readonly answer: PromiseLike<unknown>;
  readonly check: (value: unknown) => unknown;
  readonly controller: AbortController | undefined;
}

// The records of a decision that waits for a provider are made with `new`, not as object
// literals: they live until the provider answers (see records.ts on allocation-site pretenuring).

class PendingAnswer implements Pending {
  constructor(
    readonly answer: PromiseLike<unknown>,
    readonly check: (value: unknown) => unknown,
    readonly controller: AbortController | undefined,
  ) {}
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
  return isThenable ? new PendingAnswer(answer as PromiseLike<unknown>, check, controller) : checked(answer, check);
}

/** Whether {@link ask} has to wait for the answer. */
export function isPending(answer: Verdict<unknown> | Pending): answer is Pending {
  return (answer as Partial<Pending>).answer !== undefined;
}

/** A provided verdict, made by `new` (see records.ts: it waits with the decision for the other providers). */
const Provided = plainRecord<[value: unknown], { readonly state: 'provided'; readonly value: unknown }>(function (value) {
  this.state = 'provided';
  this.value = value;
});

function checked(value: unknown, check: (value: unknown) => unknown): Verdict<unknown> {
  try {
    return new Provided(check(value));
  } catch (error) {
    return { state: 'failed', error: describeError(error) };
  }
}

/**
 * A call a {@link Consultation} waits for (a class: see {@link PendingAnswer}); the calls of a
 * consultation are a list linked by `next` rather than an array literal, for the same reason.
 */
export class Call {
  verdict: Verdict<unknown> | undefined = undefined;
  next: Call | undefined = undefined;
  /**
   * Whether its deadline (or the caller's abort) failed it before it answered, or it rejected
   * with a `late` answer still to come (see Consultation #failed): its answer may still come.
   */
  cutOff = false;
  /** The answer that came after the cut-off (the first one only), checked as any answer is. */
  late: Verdict<unknown> | undefined = undefined;
  /** Told of the late answer when it comes ({@link whenLate}). */
  onLate: ((verdict: Verdict<unknown>) => void) | undefined = undefined;
  constructor(
    readonly deadlineMs: number,
    readonly cutToTotal: boolean,
    readonly controller: AbortController | undefined,
  ) {}
}

// One timer: the consultations waiting on a provider are kept in a min-heap by their earliest
// open deadline, and one Node timer is set for the heap's top. Waiting costs a decision an insert
// and a removal (O(log n) for n waiting), not a timer of its own; the timer is set from
// setImmediate, after the event-loop turn's I/O callbacks and promise jobs, so that a decision
// whose providers answer within the turn (in-memory providers written as async functions) never
// touches it. When nobody waits it stays set but unref'd (an idle process can exit), and the next
// decision to wait refs it again rather than setting a timer of its own: with one decision at a
// time (an MTA that authenticates each message before the next), a Node timer set and cleared
// per decision cost it 3–5 µs (bench/providers.mjs part 3, CPU profile), a ref and an unref cost
// a fraction of that. A timer left set for a deadline nobody waits for any more fires once, finds
// nothing due, and is set again for whoever waits then (at most one firing per deadline). When
// it fires it takes from the top only the consultations whose time is up — a flood of decisions
// waiting on a provider that hangs costs each its own cut-off, not a walk over all of them.

/** The waiting consultations, a binary min-heap on `deadlineAt`; each knows its `heapIndex`. */
const heap: Consultation[] = [];
let timer: NodeJS.Timeout | undefined;
/** When (performance.now()) the timer fires; Infinity when it is not set. */
let timerAt = Infinity;
let settingTimer = false;

function swap(i: number, j: number): void {
  const a = heap[i]!;
  const b = heap[j]!;
  heap[i] = b;
  heap[j] = a;
  b.heapIndex = i;
  a.heapIndex = j;
}

function siftUp(index: number): void {
  for (let i = index; i > 0; ) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.deadlineAt <= heap[i]!.deadlineAt) return;
    swap(i, parent);
    i = parent;
  }
}

function siftDown(index: number): void {
  for (let i = index; ; ) {
    const left = 2 * i + 1;
    if (left >= heap.length) return;
    const right = left + 1;
    const child = right < heap.length && heap[right]!.deadlineAt < heap[left]!.deadlineAt ? right : left;
    if (heap[i]!.deadlineAt <= heap[child]!.deadlineAt) return;
    swap(i, child);
    i = child;
  }
}

function heapPush(consultation: Consultation): void {
  consultation.heapIndex = heap.length;
  heap.push(consultation);
  siftUp(consultation.heapIndex);
}

function heapRemove(consultation: Consultation): void {
  const index = consultation.heapIndex;
  if (index < 0) return;
  const last = heap.pop()!;
  consultation.heapIndex = -1;
  if (last === consultation) return;
  heap[index] = last;
  last.heapIndex = index;
  siftDown(index);
  siftUp(last.heapIndex);
}

function setTimer(at: number): void {
  clearTimeout(timer);
  timerAt = at;
  timer = setTimeout(onTimer, Math.max(0, at - performance.now()));
}

/** From setImmediate: the timer for whoever still waits after the turn. */
function setTimerAfterTurn(): void {
  settingTimer = false;
  if (timer === undefined && heap.length > 0) setTimer(heap[0]!.deadlineAt);
}

function onTimer(): void {
  timer = undefined;
  timerAt = Infinity;
  // performance.now(), not Date.now(): deadlines are durations, and a wall clock stepped back
  // (NTP, an administrator) would otherwise hold a call open until the clock caught up.
  const now = performance.now();
  // Timers may fire a millisecond early by the wall clock: allow for it (as #cutOff does).
  const due: Consultation[] = [];
  while (heap.length > 0 && heap[0]!.deadlineAt <= now + 1) {
    due.push(heap[0]!);
    heapRemove(heap[0]!);
  }
  // Cuts off what is due; a consultation with calls still open waits again, for its next
  // deadline (taken up by a later firing, never by this one).
  for (const consultation of due) consultation.cutOffAt(now);
  if (heap.length > 0) setTimer(heap[0]!.deadlineAt);
}

function startWaiting(consultation: Consultation): void {
  consultation.deadlineAt = consultation.nextDeadline();
  heapPush(consultation);
  if (timer !== undefined) {
    if (consultation.deadlineAt < timerAt) setTimer(consultation.deadlineAt);
    else timer.ref();
  } else if (!settingTimer) {
    settingTimer = true;
    setImmediate(setTimerAfterTurn);
  }
}

function stopWaiting(consultation: Consultation): void {
  heapRemove(consultation);
  if (heap.length === 0) timer?.unref();
}

/**
 * Calls `onLate` with the answer of a call cut off by its deadline, once, when it comes (at once
 * if it came already); never when the call was not cut off, nor when its answer never comes.
 */
export function whenLate(call: Call, onLate: (verdict: Verdict<unknown>) => void): void {
  if (!call.cutOff) return;
  if (call.late !== undefined) onLate(call.late);
  else call.onLate = onLate;
}

/**
 * The provider calls of one decision that answered with a promise: {@link watch} each, then
 * await {@link settled}. Deadlines count from `startMs`, `performance.now()` read before the
 * first provider was called, so a provider's synchronous work counts against them too.
 */
export class Consultation {
  /** The calls watched, newest first. */
  #calls: Call | undefined = undefined;
  readonly #totalMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #start: number;
  #pending = 0;
  #finish: (() => void) | undefined;
  #onAbort: (() => void) | undefined;
  /** @internal Its place in the shared deadline heap; -1 when not waiting there. */
  heapIndex = -1;
  /** @internal The deadline (performance.now()) it waits in the heap for. */
  deadlineAt = Infinity;

  constructor(totalMs: number, signal: AbortSignal | undefined, startMs: number) {
    this.#totalMs = totalMs;
    this.#signal = signal;
    this.#start = startMs;
  }

  /** Waits for a pending call under `deadlineMs` (cut to the total); returns the call, whose verdict {@link verdict} reads. */
  watch(pending: Pending, deadlineMs: number): Call {
    const entry = new Call(Math.min(deadlineMs, this.#totalMs), this.#totalMs < deadlineMs, pending.controller);
    entry.next = this.#calls;
    this.#calls = entry;
    this.#pending++;
    try {
      pending.answer.then(
        (value) => this.#settle(entry, checked(value, pending.check)),
        (error: unknown) => this.#failed(entry, error, pending.check),
      );
    } catch (error) {
      // A thenable whose then() throws (after calling back, the answer it gave stands).
      this.#settle(entry, { state: 'failed', error: describeError(error) });
    }
    return entry;
  }

  /** The verdict of a call {@link watch} returned, once {@link settled} has resolved. */
  verdict<T>(call: Call): Verdict<T> {
    return call.verdict as Verdict<T>;
  }

  /** Resolves when every call has answered or been cut off. Never rejects. */
  settled(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#finish = resolve;
      // The caller may have aborted while the providers were being called.
      if (this.#signal?.aborted) {
        this.#cutOff(Infinity, 'cut off: the caller aborted the decision');
        return;
      }
      startWaiting(this);
      if (this.#signal !== undefined) {
        this.#onAbort = () => this.#cutOff(Infinity, 'cut off: the caller aborted the decision');
        this.#signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    });
  }

  /** When (performance.now()) the earliest deadline of a call still open falls; Infinity when none is open. */
  nextDeadline(): number {
    let next = Infinity;
    for (let call = this.#calls; call !== undefined; call = call.next) if (call.verdict === undefined && call.deadlineMs < next) next = call.deadlineMs;
    return this.#start + next;
  }

  /**
   * For the shared timer, which has taken it off the heap: cuts off the calls whose deadline has
   * passed at `now` (performance.now()); with calls still open, it waits again for the next one.
   */
  cutOffAt(now: number): void {
    this.#cutOff(now - this.#start);
    if (this.#pending > 0 && this.heapIndex < 0) startWaiting(this);
  }

  /**
   * Records a call's verdict, once: a later report (too late, or a thenable calling back twice)
   * is ignored — except the first answer of a call cut off, kept as its late answer (whenLate).
   */
  #settle(entry: Call, verdict: Verdict<unknown>): void {
    if (entry.verdict !== undefined) {
      if (entry.cutOff && entry.late === undefined) {
        entry.late = verdict;
        const onLate = entry.onLate;
        entry.onLate = undefined;
        onLate?.(verdict);
      }
      return;
    }
    entry.verdict = verdict;
    this.#pending--;
    if (this.#pending === 0 && this.#finish !== undefined) this.#done();
  }

  /**
   * A call that rejected. An error with a `late` thenable (RateLimiter.consume: a limiter that
   * timed out on a command its server may still run) is a call cut off whose answer may still
   * come: `late`'s value is its late answer (whenLate), as for a call its deadline cut off — also
   * when the deadline had cut it off already.
   */
  #failed(entry: Call, error: unknown, check: (value: unknown) => unknown): void {
    let late: unknown;
    try {
      late = (error as { late?: unknown } | null)?.late;
      if (typeof (late as { then?: unknown } | null)?.then !== 'function') late = undefined;
    } catch {
      late = undefined;
    }
    if (late === undefined) {
      this.#settle(entry, { state: 'failed', error: describeError(error) });
      return;
    }
    if (entry.verdict === undefined) {
      entry.cutOff = true;
      this.#settle(entry, { state: 'failed', error: describeError(error) });
    } else if (!entry.cutOff) return;
    try {
      (late as PromiseLike<unknown>).then(
        (value) => this.#settle(entry, checked(value, check)),
        (lateError: unknown) => this.#settle(entry, { state: 'failed', error: describeError(lateError) }),
      );
    } catch (thenError) {
      this.#settle(entry, { state: 'failed', error: describeError(thenError) });
    }
  }

  #done(): void {
    stopWaiting(this);
    if (this.#onAbort !== undefined) this.#signal!.removeEventListener('abort', this.#onAbort);
    this.#finish!();
  }

  /** Fails every open call whose deadline has passed at `elapsedMs`. */
  #cutOff(elapsedMs: number, why?: string): void {
    for (let call = this.#calls; call !== undefined; call = call.next) {
      // Timers may fire a millisecond early by the wall clock: allow for it.
      if (call.verdict !== undefined || call.deadlineMs > elapsedMs + 1) continue;
      call.controller?.abort();
      call.cutOff = true;
      const error = why ?? (call.cutToTotal ? `no answer within the decision deadline of ${call.deadlineMs} ms` : `no answer within ${call.deadlineMs} ms`);
      this.#settle(call, { state: 'failed', error });
    }
  }
}
