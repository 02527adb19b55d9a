// Every fault typed (issue 11): providers whose methods or answers are getters that throw,
// Symbols, Proxies (revoked ones too) or odd thenables give a decision with provider-failed,
// never a raw TypeError; bad per-call options of a decider, a bad message.ingress and junk from
// an SRS rewriter are refused (OutboundPoolsError) or skipped (srs-skipped), never thrown raw or
// copied into the decision. Tables of named cases, then properties over all of them at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createDecider, decidePool } from '../../src/decide/gather.js';
import type { DecideContext, Decision, OutboundMessage } from '../../src/decide/types.js';
import { OutboundPoolsError } from '../../src/errors.js';
import { createPolicy } from '../../src/policy.js';
import { parseEnvelopeAddress } from '../../src/address.js';
import { formatTrace, parseTrace, traceFields } from '../../src/decide/trace.js';
import type { ProviderName, Providers } from '../../src/providers/types.js';
import { Srs } from '../../src/srs/index.js';

const NOW = new Date(Date.UTC(2024, 2, 4, 12));
const policy = createPolicy({
  acceptedDomains: ['contoso.com'],
  deadlines: { dnsMs: 100, spamMs: 100, rateLimiterMs: 100, authenticatorMs: 100, totalMs: 300 },
});
/** A forward from outside: every provider is consulted. */
const FORWARD: OutboundMessage = { mailFrom: 'carol@fabrikam.example', rcptTo: ['bob@example.net'] };

// ---------------------------------------------------------------------------------------------
// Hostile values a provider can answer (or a method can be).

function revokedProxy(target: object = {}): object {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

/** A Proxy on which every operation throws. */
function explodingProxy<T extends object>(target: T): T {
  const boom = (): never => {
    throw new TypeError('trap');
  };
  return new Proxy(target, { get: boom, has: boom, ownKeys: boom, getPrototypeOf: boom, getOwnPropertyDescriptor: boom, apply: boom });
}

/** An object with every field of every verdict behind a getter that throws. */
function throwingGetters(): object {
  const fields = ['score', 'isSpam', 'categories', 'restriction', 'breaches', 'counted', 'ingress', 'spf', 'dkim', 'arc', 'dmarc', 'length', '0'];
  const value = {};
  for (const field of fields) {
    Object.defineProperty(value, field, {
      enumerable: true,
      get(): never {
        throw new TypeError(`${field} getter`);
      },
    });
  }
  return value;
}

/** Answers that are not verdicts, each one hostile in its own way. */
const ANSWERS: Readonly<Record<string, () => unknown>> = {
  'a Symbol': () => Symbol('answer'),
  'a revoked Proxy': revokedProxy,
  'a Proxy whose every trap throws': () => explodingProxy({}),
  'an object whose getters throw': () => throwingGetters(),
  'a thenable whose then is a getter that throws': () => ({
    get then(): never {
      throw new TypeError('then getter');
    },
  }),
  'a thenable whose then throws after calling back': () => ({
    then(resolve: (value: unknown) => void) {
      resolve(Symbol('answer'));
      throw new TypeError('after');
    },
  }),
  'a thenable that rejects with a Symbol': () => ({ then: (_: unknown, reject: (error: unknown) => void) => reject(Symbol('no')) }),
  'a thenable that rejects with a revoked Proxy': () => ({ then: (_: unknown, reject: (error: unknown) => void) => reject(revokedProxy()) }),
  // A function that is a thenable: not a verdict, and not followed (a Promise would follow it).
  'a thenable that resolves with a callable thenable': () => ({ then: (resolve: (value: unknown) => void) => resolve(Object.assign(() => undefined, { then: (r: (v: unknown) => void) => r({}) })) }),
  'a thenable that resolves with an object whose getters throw': () => ({ then: (resolve: (value: unknown) => void) => resolve(throwingGetters()) }),
  'a thenable whose then is a Proxy that throws': () => ({ then: explodingProxy(() => undefined) }),
  'a thenable that calls back twice, garbage first': () => ({
    then(resolve: (value: unknown) => void, reject: (error: unknown) => void) {
      resolve(Symbol('first'));
      reject(new Error('second'));
    },
  }),
  'a rejected promise of a Proxy error': () => Promise.reject(explodingProxy(new Error('x'))),
};

/** Throwing, the hostile way. */
const THROWN: Readonly<Record<string, () => unknown>> = {
  'a Symbol': () => Symbol('thrown'),
  'a revoked Proxy': revokedProxy,
  'a Proxy error whose every trap throws': () => explodingProxy(new Error('x')),
  'a null-prototype object': () => Object.create(null),
};

type Kind = ProviderName;
const KINDS: readonly Kind[] = ['dns', 'rateLimiter', 'spam', 'authenticator'];

/** A provider of `kind` whose every method answers `answer()`. */
function answering(kind: Kind, answer: () => unknown): unknown {
  switch (kind) {
    case 'dns':
      return () => answer();
    case 'rateLimiter':
      return { consume: () => answer(), restriction: () => answer() };
    case 'spam':
      return { classify: () => answer() };
    case 'authenticator':
      return { authenticate: () => answer() };
  }
}

/** A provider of `kind` whose methods are reached through `method`, a hostile way of being a method. */
function withMethods(kind: Kind, method: (name: string) => PropertyDescriptor): unknown {
  const names = { dns: ['lookupSync'], rateLimiter: ['consume', 'restriction', 'consumeSync'], spam: ['classify'], authenticator: ['authenticate'] }[kind];
  const target: object = kind === 'dns' ? () => Promise.resolve([]) : {};
  for (const name of names) Object.defineProperty(target, name, { configurable: true, enumerable: true, ...method(name) });
  return target;
}

/** Hostile ways for a provider's methods to be, each giving a fault when the method is used. */
const METHODS: Readonly<Record<string, (kind: Kind) => unknown>> = {
  'methods that are getters that throw': (kind) =>
    withMethods(kind, () => ({
      get(): never {
        throw new TypeError('method getter');
      },
    })),
  'methods whose getters work once, then throw': (kind) =>
    withMethods(kind, (name) => {
      let reads = 0;
      return {
        get() {
          if (reads++ > 0) throw new TypeError(`${name} read twice`);
          return () => Promise.resolve(undefined);
        },
      };
    }),
  'methods that are Proxies whose every trap throws': (kind) => withMethods(kind, () => ({ value: explodingProxy(() => undefined) })),
  'a revoked Proxy as the provider': (kind) => revokedProxy(kind === 'dns' ? () => undefined : {}),
  'a Proxy provider whose every trap throws': (kind) => explodingProxy((kind === 'dns' ? () => undefined : {}) as object),
};

function faultyProviders(kind: Kind, provider: unknown): Providers {
  return { [kind]: provider } as Providers;
}

/** The reason a failed provider leaves: provider-failed, or dns-error for DNS (rule 5). */
function failureCode(kind: Kind): string {
  return kind === 'dns' ? 'dns-error(dns)' : `provider-failed(${kind})`;
}

function codes(decision: Decision): string[] {
  return decision.reasons.map((reason) => (reason.provider === undefined ? reason.code : `${reason.code}(${reason.provider})`));
}

/** decidePool's decision; fails on a rejection (with what it was) or a hang. */
async function decide(message: OutboundMessage, context: DecideContext, what: string): Promise<Decision> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: decidePool did not settle`)), 3_000);
  });
  try {
    return await Promise.race([decidePool(message, context), hang]);
  } catch (error) {
    assert.fail(`${what}: decidePool rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : typeof error}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that `run` rejects (never throws) with OutboundPoolsError `code`. */
async function rejectsTyped(run: () => Promise<unknown>, code: string, pattern: RegExp, what: string): Promise<void> {
  let promise: Promise<unknown>;
  try {
    promise = run();
  } catch (error) {
    assert.fail(`${what}: threw synchronously (${error instanceof Error ? `${error.name}: ${error.message}` : typeof error}) instead of rejecting`);
  }
  await promise.then(
    () => assert.fail(`${what}: resolved instead of rejecting`),
    (error: unknown) => {
      assert.ok(error instanceof OutboundPoolsError, `${what}: rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : typeof error}, not an OutboundPoolsError`);
      assert.equal(error.code, code, `${what}: code`);
      assert.match(error.message, pattern, `${what}: message`);
    },
  );
}

describe('hostile provider answers give provider-failed, never a raw error', () => {
  for (const kind of KINDS) {
    for (const [name, answer] of Object.entries(ANSWERS)) {
      it(`${kind} answering ${name} fails open with ${failureCode(kind)}`, async () => {
        const decision = await decide(FORWARD, { policy, providers: faultyProviders(kind, answering(kind, answer)), now: NOW }, `${kind}: ${name}`);
        assert.ok(codes(decision).includes(failureCode(kind)), `${kind}: ${name}: reasons ${codes(decision).join(', ')}`);
      });
    }
    for (const [name, thrown] of Object.entries(THROWN)) {
      it(`${kind} throwing ${name} fails open with ${failureCode(kind)}`, async () => {
        const provider = answering(kind, () => {
          throw thrown();
        });
        const decision = await decide(FORWARD, { policy, providers: faultyProviders(kind, provider), now: NOW }, `${kind}: throws ${name}`);
        assert.ok(codes(decision).includes(failureCode(kind)), `${kind}: throws ${name}: reasons ${codes(decision).join(', ')}`);
      });
    }
    for (const [name, make] of Object.entries(METHODS)) {
      it(`${kind} with ${name} fails open with ${failureCode(kind)}, through decidePool and createDecider`, async () => {
        const context = { policy, providers: faultyProviders(kind, make(kind)) };
        const decision = await decide(FORWARD, { ...context, now: NOW }, `${kind}: ${name}`);
        assert.ok(codes(decision).includes(failureCode(kind)), `${kind}: ${name}: reasons ${codes(decision).join(', ')}`);
        let decider: ReturnType<typeof createDecider>;
        try {
          decider = createDecider({ policy, providers: faultyProviders(kind, make(kind)) });
        } catch (error) {
          assert.fail(`createDecider refused ${kind} with ${name}: ${String(error)}`);
        }
        const again = await decider(FORWARD, { now: NOW });
        assert.ok(codes(again).includes(failureCode(kind)), `createDecider, ${kind}: ${name}: reasons ${codes(again).join(', ')}`);
      });
    }
  }

  it('with onProviderFailure defer, a limiter with a throwing method getter defers (the policy decides, not the crash)', async () => {
    const providers = faultyProviders('rateLimiter', METHODS['methods that are getters that throw']!('rateLimiter'));
    const decision = await decide(FORWARD, { policy: { onProviderFailure: { rateLimiter: 'defer' } }, providers, now: NOW }, 'defer');
    assert.equal(decision.action, 'defer');
    assert.deepEqual(codes(decision), ['provider-failed(rateLimiter)']);
  });

  it('a providers object that cannot be read is refused with invalid-context, not thrown raw', async () => {
    for (const providers of [revokedProxy(), explodingProxy({})]) {
      await rejectsTyped(() => decidePool(FORWARD, { policy, providers: providers as Providers }), 'invalid-context', /providers cannot be read/, 'decidePool');
      assert.throws(() => createDecider({ policy, providers: providers as Providers }), (error) => error instanceof OutboundPoolsError && error.code === 'invalid-context');
    }
  });

  it('a message or context whose fields are getters that throw is refused with OutboundPoolsError', async () => {
    const message = Object.defineProperty({ rcptTo: ['bob@example.net'] } as unknown as OutboundMessage, 'mailFrom', {
      enumerable: true,
      get(): never {
        throw new TypeError('mailFrom getter');
      },
    });
    await rejectsTyped(() => decidePool(message, { policy }), 'invalid-message', /The message cannot be read \(mailFrom getter\)/, 'message getter');
    await rejectsTyped(() => decidePool(revokedProxy() as OutboundMessage, { policy }), 'invalid-message', /message/, 'revoked message');
    const rcptTo = new Proxy(['bob@example.net'], { get: (target, key) => (key === '0' ? assert.fail('never read') : Reflect.get(target, key)) });
    await rejectsTyped(() => decidePool({ mailFrom: 'a@fabrikam.example', rcptTo }, { policy }), 'invalid-message', /rcptTo\[0\] cannot be read/, 'rcptTo element');
    const context = Object.defineProperty({}, 'policy', {
      enumerable: true,
      get(): never {
        throw new TypeError('policy getter');
      },
    }) as DecideContext;
    await rejectsTyped(() => decidePool(FORWARD, context), 'invalid-context', /The context cannot be read \(policy getter\)/, 'context getter');
    await rejectsTyped(() => decidePool(FORWARD, { policy, srs: revokedProxy() as NonNullable<DecideContext['srs']> }), 'invalid-context', /srs cannot be read/, 'srs proxy');
  });
});

describe("createDecider's per-call options reject like decidePool, never throw", () => {
  const decider = createDecider({ policy });
  const cases: readonly (readonly [string, unknown, RegExp])[] = [
    ['null', null, /must be an object \{ now\?, signal\? \}, got null/],
    ['a string', 'now', /must be an object \{ now\?, signal\? \}, got "now"/],
    ['a number', 5, /must be an object/],
    ['an array', [], /must be an object \{ now\?, signal\? \}, got an array/],
    ['{ now: 5 }', { now: 5 }, /now must be a valid Date, got number/],
    ['{ now: an invalid Date }', { now: new Date(Number.NaN) }, /now must be a valid Date/],
    ['{ signal: {} }', { signal: {} }, /signal must be an AbortSignal/],
    ['{ policy: … } (not a per-call option)', { policy: {} }, /Unknown decider option "policy"; known: now, signal/],
    ['a revoked Proxy', revokedProxy(), /cannot be read/],
    [
      'an object whose now is a getter that throws',
      Object.defineProperty({}, 'now', {
        enumerable: true,
        get(): never {
          throw new TypeError('now getter');
        },
      }),
      /cannot be read \(now getter\)/,
    ],
  ];
  for (const [name, options, pattern] of cases) {
    it(`${name} rejects with invalid-context`, async () => {
      await rejectsTyped(() => decider(FORWARD, options as never), 'invalid-context', pattern, name);
    });
  }

  it('valid options still decide: a Date and an AbortSignal, or an empty object', async () => {
    assert.equal((await decider(FORWARD, { now: NOW, signal: new AbortController().signal })).pool, 'relay');
    assert.equal((await decider(FORWARD, {})).pool, 'relay');
  });
});

describe('message.ingress is checked', () => {
  const refused: readonly (readonly [string, unknown, string, RegExp])[] = [
    ['null', null, 'invalid-message', /ingress must be an object \{ ip\?, helo\?, mailFrom\? \}, got null/],
    ['a string', '203.0.113.7', 'invalid-message', /ingress must be an object/],
    ['an array', ['203.0.113.7'], 'invalid-message', /ingress must be an object .*got an array/],
    ['an unknown field', { ip: '203.0.113.7', client: 'x' }, 'invalid-message', /Unknown ingress field "client"; known: ip, helo, mailFrom/],
    ['an ip that is not an address', { ip: 'mx.example.org' }, 'invalid-message', /ingress\.ip must be an IPv4 or IPv6 address, got "mx\.example\.org"/],
    ['an ip that is a number', { ip: 3405803783 }, 'invalid-message', /ingress\.ip must be an IPv4 or IPv6 address, got number/],
    ['an ip with a zone or port', { ip: '203.0.113.7:25' }, 'invalid-message', /ingress\.ip/],
    ['an empty helo', { helo: '' }, 'invalid-message', /ingress\.helo must be 1 to 255 characters/],
    ['a helo with CR LF', { helo: 'mx.example.org\r\nMAIL FROM:<x@y>' }, 'invalid-message', /ingress\.helo .*without control characters/],
    ['a helo with a NUL', { helo: 'mx\u0000example' }, 'invalid-message', /ingress\.helo/],
    ['a helo over 255 characters', { helo: `${'a'.repeat(252)}.org` }, 'invalid-message', /ingress\.helo/],
    ['a mailFrom that is a number', { mailFrom: 7 }, 'invalid-message', /ingress\.mailFrom must be a string/],
    ['a mailFrom over 512 characters', { mailFrom: `${'a'.repeat(600)}@example.org` }, 'invalid-message', /^ingress\.mailFrom must be at most 512 characters without control characters/],
    ['a mailFrom with CR LF', { mailFrom: 'a@example.org\r\nRCPT TO:<b@example.org>' }, 'invalid-message', /^ingress\.mailFrom must be at most 512 characters without control characters/],
    [
      'a field behind a getter that throws',
      Object.defineProperty({}, 'ip', {
        enumerable: true,
        get(): never {
          throw new TypeError('ip getter');
        },
      }),
      'invalid-message',
      /ingress cannot be read \(ip getter\)/,
    ],
  ];
  for (const [name, ingress, code, pattern] of refused) {
    it(`refuses ${name} with ${code}`, async () => {
      await rejectsTyped(() => decidePool({ ...FORWARD, ingress: ingress as NonNullable<OutboundMessage['ingress']> }, { policy }), code, pattern, name);
    });
  }

  it('accepts an IPv4 or IPv6 address, a name or address-literal HELO, an address or the null sender, and hands the authenticator a copy', async () => {
    const seen: unknown[] = [];
    const authenticator = { authenticate: (message: { ingress?: unknown }) => (seen.push(message.ingress), {}) };
    for (const [ingress, handed] of [
      [{ ip: '203.0.113.7', helo: 'mx.fabrikam.example', mailFrom: 'carol@fabrikam.example' }],
      [{ ip: '2001:db8::7', helo: '[2001:db8::7]', mailFrom: '' }],
      // As the MAIL FROM command writes the path: the authenticator gets it without brackets.
      [{ mailFrom: '<>' }, { mailFrom: '' }],
      [{ ip: '203.0.113.7', mailFrom: '<carol@fabrikam.example>' }, { ip: '203.0.113.7', mailFrom: 'carol@fabrikam.example' }],
      [{}],
    ] as const) {
      const decision = await decide({ ...FORWARD, ingress }, { policy, providers: { authenticator }, now: NOW }, JSON.stringify(ingress));
      assert.equal(decision.pool, 'relay');
      assert.deepEqual(seen.at(-1), handed ?? ingress);
      assert.notEqual(seen.at(-1), ingress, 'the authenticator got the caller’s object, not the checked copy');
    }
  });
});

describe("an SRS rewriter's output that is not an address is skipped, never copied into mailFrom", () => {
  const verified = { spf: { result: 'pass', domain: 'fabrikam.example' } } as const;
  const outputs: readonly (readonly [string, unknown])[] = [
    ['a number', 42],
    ['null', null],
    ['a Symbol', Symbol('srs')],
    ['an object', { toString: () => 'SRS0=x@contoso.com' }],
    ['an empty string', ''],
    ['text that is no address', 'not an address'],
    ['an address followed by CR LF and a command', 'SRS0=abcd=2W=fabrikam.example=carol@contoso.com\r\nRCPT TO:<x@evil.example>'],
    ['an address with a NUL', 'SRS0=ab\u0000cd@contoso.com'],
    ['an address literal', 'srs@[192.0.2.1]'],
    ['an address with a local part over 64 octets', `${'s'.repeat(65)}@contoso.com`],
  ];
  for (const [name, output] of outputs) {
    it(`a rewriter returning ${name} leaves the sender unchanged with srs-skipped`, async () => {
      const srs = { rewriter: { forward: () => output as string }, domain: 'contoso.com' };
      const decision = await decide({ ...FORWARD, authentication: verified }, { policy, srs, now: NOW }, name);
      assert.deepEqual(codes(decision), ['spf-pass', 'srs-skipped']);
      assert.equal(decision.mailFrom, 'carol@fabrikam.example');
      assert.equal(decision.srs?.applied, false);
      assert.match(decision.reasons[1]!.message, /Envelope sender not rewritten: the SRS rewriter returned/);
    });
  }
  for (const [name, thrown] of Object.entries(THROWN)) {
    it(`a rewriter throwing ${name} leaves the sender unchanged with srs-skipped`, async () => {
      const srs = {
        rewriter: {
          forward: (): string => {
            throw thrown();
          },
        },
        domain: 'contoso.com',
      };
      const decision = await decide({ ...FORWARD, authentication: verified }, { policy, srs, now: NOW }, name);
      assert.deepEqual(codes(decision), ['spf-pass', 'srs-skipped']);
      assert.equal(decision.mailFrom, 'carol@fabrikam.example');
    });
  }
  it('the real rewriter still rewrites (control)', async () => {
    const srs = { rewriter: new Srs({ secret: 'tops3cr3t' }), domain: 'contoso.com' };
    const decision = await decide({ ...FORWARD, authentication: verified }, { policy, srs, now: NOW }, 'control');
    assert.deepEqual(codes(decision), ['spf-pass', 'srs-rewritten']);
    assert.match(decision.mailFrom, /^SRS0=[^=]{4}=[A-Z2-7]{2}=fabrikam\.example=carol@contoso\.com$/);
  });
});

describe('properties: hostile providers, options and SRS output at once', () => {
  // fast-check looks into generated values (Proxies would trap it): it generates the names of
  // hostile things, and the property builds them.
  type Hostile = readonly ['answer' | 'throw' | 'method', string];
  const hostile = fc.oneof(
    fc.constantFrom(...Object.keys(ANSWERS)).map((name): Hostile => ['answer', name]),
    fc.constantFrom(...Object.keys(THROWN)).map((name): Hostile => ['throw', name]),
    fc.constantFrom(...Object.keys(METHODS)).map((name): Hostile => ['method', name]),
  );
  function build(kind: Kind, [how, name]: Hostile): unknown {
    if (how === 'answer') return answering(kind, ANSWERS[name]!);
    if (how === 'method') return METHODS[name]!(kind);
    return answering(kind, () => {
      throw THROWN[name]!();
    });
  }
  // Which providers are hostile (at least one), and how.
  const providers = fc.record({ dns: hostile, rateLimiter: hostile, spam: hostile, authenticator: hostile }).chain((all) =>
    fc.subarray([...KINDS], { minLength: 1 }).map((kinds) => kinds.map((kind) => [kind, all[kind]] as const)),
  );
  // Local parts that try to break out of the trace or the envelope.
  const local = fc.constantFrom('carol', '"x; action=block; pool=none"', '"a\\"b; reasons=accepted-domain"', '"a b"', 'Üser', '"\\\\"', 'x=y', '"x;y"');
  const srsOutput = fc.oneof(fc.constant<'real'>('real'), fc.constantFrom<unknown>(42, null, '', 'x\r\ny@contoso.com', 'nope', 'SRS0=ok=2W=a.example=b@contoso.com'));

  it('decidePool always decides; every hostile provider consulted leaves its failure reason; the trace reads back exactly', async () => {
    await fc.assert(
      fc.asyncProperty(providers, local, srsOutput, async (chosen, localPart, output) => {
        const hostile = Object.fromEntries(chosen.map(([kind, how]) => [kind, build(kind, how)])) as Providers;
        const srs = output === 'real' ? { rewriter: new Srs({ secret: 's3cr3t' }), domain: 'contoso.com' } : { rewriter: { forward: () => output as string }, domain: 'contoso.com' };
        const message = { mailFrom: `${localPart}@fabrikam.example`, rcptTo: ['bob@example.net'] };
        const decision = await decide(message, { policy, providers: hostile, srs, now: NOW }, 'property');
        for (const kind of Object.keys(hostile) as Kind[]) {
          assert.ok(codes(decision).includes(failureCode(kind)), `${kind} failed silently: ${codes(decision).join(', ')}`);
        }
        assert.equal(decision.action, 'deliver');
        // The envelope sender is the sender or a valid address from the rewriter, never junk.
        if (decision.srs?.applied) parseEnvelopeAddress(decision.mailFrom, 'mailFrom', false);
        else assert.equal(decision.mailFrom, parseEnvelopeAddress(message.mailFrom, 'mailFrom', false).address);
        const trace = formatTrace(decision);
        assert.match(trace, /^[\x20-\x7e]+$/, 'the trace is printable ASCII, one line');
        assert.deepEqual(parseTrace(trace), traceFields(decision), trace);
      }),
      { numRuns: 300 },
    );
  });

  it("a decider's per-call options are a decision or an OutboundPoolsError rejection, never a throw", async () => {
    const decider = createDecider({ policy });
    const REVOKED = Symbol('a revoked Proxy');
    const option = fc.oneof(fc.anything(), fc.constant(NOW), fc.constant(new AbortController().signal), fc.constant(REVOKED));
    const options = fc.oneof(option, fc.record({ now: option, signal: option }, { requiredKeys: [] }), fc.dictionary(fc.string(), option));
    const build = (value: unknown): unknown => {
      if (value === REVOKED) return revokedProxy();
      if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value;
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, build(inner)]));
    };
    await fc.assert(
      fc.asyncProperty(options, async (generated) => {
        const given = build(generated);
        let promise: Promise<Decision>;
        try {
          promise = decider(FORWARD, given as never);
        } catch (error) {
          assert.fail(`threw synchronously: ${String(error)}`);
        }
        await promise.then(
          (decision) => assert.equal(decision.pool, 'relay'),
          (error: unknown) => assert.ok(error instanceof OutboundPoolsError && error.code === 'invalid-context', `rejected with ${String(error)}`),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('message.ingress: a decision or an OutboundPoolsError, never another error', async () => {
    const part = fc.oneof(fc.anything(), fc.constantFrom('203.0.113.7', '2001:db8::1', 'mx.example.org', '', 'a@b.example', '<>', 'x\r\ny'));
    const ingress = fc.oneof(fc.anything(), fc.record({ ip: part, helo: part, mailFrom: part }, { requiredKeys: [] }));
    await fc.assert(
      fc.asyncProperty(ingress, async (given) => {
        await decidePool({ ...FORWARD, ingress: given as NonNullable<OutboundMessage['ingress']> }, { policy, now: NOW }).then(
          (decision) => assert.equal(decision.pool, 'relay'),
          (error: unknown) => assert.ok(error instanceof OutboundPoolsError, `rejected with ${String(error)}`),
        );
      }),
      { numRuns: 500 },
    );
  });
});
