// The progress indicator of `decide` on stderr: on a terminal one line redrawn in place at most
// ten times a second, with the rate and the time left; elsewhere (--progress into a file or a
// pipe) a line a second. Never on stdout, which carries the decisions.

import type { CliIo } from './io.js';

/** Least time between two redraws on a terminal: at most ten a second. */
export const REDRAW_MS = 100;
/** Least time between two lines when stderr is not a terminal. */
const LINE_MS = 1000;

/** 1234567 → "1,234,567". */
function grouped(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Seconds as m:ss or h:mm:ss. */
export function duration(seconds: number): string {
  const total = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Messages decided so far, out of `total` when it is known (null: standard input). */
export class Progress {
  readonly #io: CliIo;
  readonly #total: number | null;
  readonly #tty: boolean;
  readonly #clock: () => number;
  readonly #start: number;
  #lastDraw = -Infinity;
  #shown = false;
  /** Redraws (terminal) or lines (otherwise) written: what the rate limit bounds. */
  draws = 0;

  constructor(io: CliIo, total: number | null, tty: boolean) {
    this.#io = io;
    this.#total = total;
    this.#tty = tty;
    this.#clock = io.now ?? (() => performance.now());
    this.#start = this.#clock();
  }

  /** The text of the indicator after `done` messages, at `now`. */
  text(done: number, now: number): string {
    const elapsed = (now - this.#start) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const total = this.#total;
    const parts = [total === null ? `${grouped(done)}` : `${grouped(done)}/${grouped(total)}${total > 0 ? ` (${Math.floor((100 * done) / total)}%)` : ''}`];
    parts.push(rate > 0 ? `${grouped(rate)}/s` : '–/s');
    if (total !== null) parts.push(`ETA ${rate > 0 ? duration(Math.max(0, total - done) / rate) : '–'}`);
    return parts.join(', ');
  }

  /** Called after each message; draws when the last draw is old enough, or when the run is done. */
  update(done: number): void {
    const now = this.#clock();
    const last = this.#total !== null && done >= this.#total;
    if (!last && now - this.#lastDraw < (this.#tty ? REDRAW_MS : LINE_MS)) return;
    this.#lastDraw = now;
    this.draws++;
    if (this.#tty) {
      this.#io.stderr(`\r\x1b[Kdeciding: ${this.text(done, now)}`);
      this.#shown = true;
    } else {
      this.#io.stderr(`progress: ${this.text(done, now)}\n`);
    }
  }

  /** Clears the terminal line before something else is written there. */
  clear(): void {
    if (this.#tty && this.#shown) this.#io.stderr('\r\x1b[K');
    // Drawn again at the next update due, not at once: clearing must not defeat the rate limit.
    this.#shown = false;
  }
}
