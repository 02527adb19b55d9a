// The Redis limiter's calls in flight: at most `maxInFlight` sent to Redis at once, the rest
// waiting here in arrival order; one sweep timer, not one timer a call.
//
// Why: a timeout per call that starts when the call is made counts the time the call waits
// behind others in the client's queue. With 1,024 decisions in flight that wait, not Redis, is
// what times out, and the decision fails open uncounted although Redis is answering. Here the
// timeout starts when a command is sent, with at most `maxInFlight` ahead of it: it measures
// Redis, not our backlog. A sent command with no answer after `timeoutMs`, while Redis has
// answered nothing else either for as long (or after 4 × `timeoutMs` in any case), fails (the
// policy's fail mode applies; its error's `lateReply` is what Redis answers if it runs the
// command after all) and frees its place for the next waiting call: a Redis that answers
// is slow, not down, and what it counts late was decided with it. A call waiting here has no
// timeout of its own: the decision's deadline (`deadlines.rateLimiterMs`) bounds it. (Failing
// every waiting call at the first timeout was tried: on a machine where Redis was starved of CPU
// for half a second, that turned 128 late answers into thousands of failed decisions.) A Redis
// that is gone is found by the limiter before calls get here (the connection's state).

/**
 * One call: how to start it, and how to settle it (dropped once settled: see `#settle`). A class,
 * not an object literal: it lives until Redis answers (see records.ts on allocation-site
 * pretenuring).
 */
class Call {
  sentAt = 0;
  done = false;
  /** The command's own promise once sent: what Redis answers, also after the call timed out. */
  answer: Promise<unknown> | undefined = undefined;
  constructor(
    public start: () => Promise<unknown>,
    public resolve: (value: unknown) => void,
    public reject: (reason: unknown) => void,
    readonly what: string,
  ) {}
}

/** A sent call fails after this many timeouts even while Redis answers other calls. */
const STUCK_FACTOR = 4;

/** What a settled call holds instead of its closures. */
const SETTLED = (): never => {
  throw new Error('a settled Redis call was started again');
};
const IGNORE = (): void => {};

/** The error of a call that Redis did not answer in time; `code` as Node's own timeouts. */
export function timeoutError(ms: number, what: string): Error {
  return Object.assign(new Error(`Redis did not answer ${what} within ${ms} ms`), { code: 'ETIMEDOUT' });
}

/**
 * The error of a sent call that timed out: Redis may still run it, and `lateReply` is its raw
 * reply when it does (a promise that never settles if the reply never comes, rejects if Redis
 * refuses the command). Internal: the limiter turns it into a consume's public `late`
 * (RateLimiter.consume) or acts on it itself; other callers ignore it.
 */
export function lateTimeoutError(ms: number, what: string, lateReply: Promise<unknown>): Error & { readonly lateReply: Promise<unknown> } {
  return Object.assign(timeoutError(ms, what), { lateReply });
}

/** Runs calls with at most `maxInFlight` sent at once; a sent call unanswered after `timeoutMs` fails. */
export class InFlight {
  readonly #maxInFlight: number;
  readonly #timeoutMs: number;
  /** Calls not sent yet, oldest from `#waitingHead` on. */
  #waiting: Call[] = [];
  #waitingHead = 0;
  /** Calls sent, in the order they were sent (so in the order their time runs out). */
  #sent: Call[] = [];
  #sentHead = 0;
  #active = 0;
  #sweep: NodeJS.Timeout | null = null;

  constructor(maxInFlight: number, timeoutMs: number) {
    this.#maxInFlight = maxInFlight;
    this.#timeoutMs = timeoutMs;
  }

  /** Calls sent and not answered yet. */
  get active(): number {
    return this.#active;
  }

  /** Calls waiting to be sent. */
  get waiting(): number {
    return this.#waiting.length - this.#waitingHead;
  }

  run<T>(what: string, start: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call = new Call(start, resolve as (value: unknown) => void, reject, what);
      if (this.#active < this.#maxInFlight) this.#send(call);
      else this.#waiting.push(call);
    });
  }

  #send(call: Call): void {
    this.#active++;
    call.sentAt = performance.now();
    this.#sent.push(call);
    // Not unref'd: a call in flight settles, at the latest when its time runs out; the sweep
    // stops as soon as nothing is in flight.
    this.#sweep ??= setInterval(() => this.#check(), Math.max(5, Math.min(100, this.#timeoutMs / 5)));
    let answer: Promise<unknown>;
    try {
      answer = call.start();
    } catch (error) {
      this.#settle(call, error, true);
      return;
    }
    call.answer = answer;
    answer.then(
      (value) => {
        this.#lastAnswerAt = performance.now();
        this.#settle(call, value, false);
      },
      (error: unknown) => {
        this.#lastAnswerAt = performance.now();
        this.#settle(call, error, true);
      },
    );
  }

  #settle(call: Call, value: unknown, failed: boolean): void {
    if (call.done) return;
    call.done = true;
    this.#active--;
    if (failed) call.reject(value);
    else call.resolve(value);
    // A settled call lets go of what it closed over (the command, its batch's keys and records,
    // the caller's promise), and leaves #sent as soon as the calls sent before it have settled:
    // kept until the next sweep (up to 100 ms), every call answered meanwhile outlived a
    // scavenge and went to the old generation — at 50,000 decisions/s, half of this process's
    // CPU time in scavenges and mark-compacts (bench/redis.mjs, --trace-gc).
    call.start = SETTLED;
    call.resolve = call.reject = IGNORE;
    call.answer = undefined;
    while (this.#sentHead < this.#sent.length && this.#sent[this.#sentHead]!.done) this.#sent[this.#sentHead++] = undefined as unknown as Call;
    while (this.#active < this.#maxInFlight && this.#waitingHead < this.#waiting.length) {
      const next = this.#waiting[this.#waitingHead]!;
      this.#waiting[this.#waitingHead++] = undefined as unknown as Call;
      this.#send(next);
    }
    if (this.#waitingHead > 1024 && this.#waitingHead * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#waitingHead);
      this.#waitingHead = 0;
    }
  }

  /**
   * Whether `call`, sent and unanswered, has run out of time at `now`: `timeoutMs` since it was
   * sent AND since Redis last answered anything — a Redis still answering is working through its
   * queue, not down (on a starved machine it can take longer than `timeoutMs` to reach a command,
   * and failing then would fail open decisions Redis counts a moment later) — or, whatever else
   * answers, STUCK_FACTOR × `timeoutMs` since it was sent (one hung Cluster master among
   * answering ones).
   */
  #expired(call: Call, now: number): boolean {
    const age = now - call.sentAt;
    if (age >= this.#timeoutMs * STUCK_FACTOR) return true;
    return age >= this.#timeoutMs && now - this.#lastAnswerAt >= this.#timeoutMs;
  }

  /**
   * The sweep: when the oldest sent call has run out of time, fails every call that has — but
   * only after the event loop's next poll for I/O (setImmediate runs after it), so that an answer
   * that arrived while this process was not running (a busy machine's scheduler, a long garbage
   * collection) is read first: timers run before I/O in a loop turn, and a process paused longer
   * than the timeout would otherwise fail calls whose answers are already in its socket. Stops
   * when idle.
   */
  #check(): void {
    const head = this.#oldestSent();
    if (head !== undefined && this.#expired(head, performance.now()) && !this.#confirming) {
      this.#confirming = true;
      setImmediate(() => {
        this.#confirming = false;
        this.#expire();
      });
    }
    this.#stopIfIdle();
  }

  /** When Redis last answered a command (resolved or rejected it). */
  #lastAnswerAt = 0;
  #confirming = false;

  /** The oldest sent call not settled yet (settled ones in front are dropped). */
  #oldestSent(): Call | undefined {
    while (this.#sentHead < this.#sent.length) {
      const call = this.#sent[this.#sentHead]!;
      if (!call.done) return call;
      this.#sent[this.#sentHead++] = undefined as unknown as Call;
    }
    return undefined;
  }

  /** Fails the sent calls past their time. */
  #expire(): void {
    const now = performance.now();
    // Sent in order: once one has time left, so have those after it (unless the stuck rule,
    // which the next sweeps apply).
    for (let call = this.#oldestSent(); call !== undefined && this.#expired(call, now); call = this.#oldestSent()) {
      // #settle takes it (and the settled calls behind it) off the front of #sent.
      // Sent, so Redis may still run it: the error carries its reply to come (`lateReply`).
      this.#settle(call, call.answer === undefined ? timeoutError(this.#timeoutMs, call.what) : lateTimeoutError(this.#timeoutMs, call.what, call.answer), true);
    }
    this.#stopIfIdle();
  }

  #stopIfIdle(): void {
    if (this.#sentHead > 1024 && this.#sentHead * 2 > this.#sent.length) {
      this.#sent = this.#sent.slice(this.#sentHead);
      this.#sentHead = 0;
    }
    if (this.#active === 0 && this.waiting === 0 && this.#sweep !== null) {
      clearInterval(this.#sweep);
      this.#sweep = null;
      this.#sent = [];
      this.#sentHead = 0;
    }
  }
}
