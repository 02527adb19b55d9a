// Plain records made by `new` rather than by object literals, for the objects a decision keeps
// while it waits for a provider (the envelope, its addresses, the limiter's request, the
// verdicts gathered so far).
//
// Why: V8 tracks each object literal (its "allocation site") and, when one garbage collection
// finds nearly everything a literal made since the last one still alive, decides that it makes
// long-lived objects and from then on makes them in the old generation ("allocation-site
// pretenuring"). A decider with hundreds of decisions waiting on Redis or DNS meets that
// condition sooner or later (two collections a few milliseconds apart, every decision made in
// between still waiting), and the decision is never taken back: from then on every envelope is
// made old, and keeps what it refers to alive through the young generation's collections until a
// full one. bench/redis.mjs measured 12–19 µs of this process's CPU per decision instead of
// 8–9 µs. Objects made by `new` have no allocation site, so V8 never makes that decision for them.

/** T with its fields writable: what a record's constructor fills in. */
export type Fill<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A constructor of plain records from a function that fills in `this`: the records have
 * Object.prototype as their prototype and own enumerable fields, exactly as the object literal
 * with the same fields (deepStrictEqual cannot tell them apart), but are made by `new`. `fill`
 * must be a `function` expression (an arrow cannot be called with `new`); it takes a fixed list of
 * arguments (no rest parameter: that would make an array a call).
 */
export function plainRecord<A extends unknown[], T>(fill: (this: Fill<T>, ...args: A) => void): new (...args: A) => T {
  (fill as { prototype: object }).prototype = Object.prototype;
  return fill as unknown as new (...args: A) => T;
}
