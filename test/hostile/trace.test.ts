// Trace integrity (issue 11): formatTrace's line reads back, through parseTrace, to exactly the
// decision's fields — whatever the sender's quoted local part, the pool names or the reply hold.
// Before, `"x; action=block; pool=none"@example.org` as a rewritten sender added two fields.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideFromVerdicts, decidePool } from '../../src/decide/gather.js';
import { formatTrace, parseTrace, traceFields, type TraceField } from '../../src/decide/trace.js';
import type { Decision, OutboundMessage } from '../../src/decide/types.js';
import { createPolicy } from '../../src/policy.js';
import { Srs } from '../../src/srs/index.js';

const NOW = new Date(Date.UTC(2024, 2, 4, 12));
const SPF_PASS = { spf: { result: 'pass', domain: 'fabrikam.example' } } as const;

/** A verified forward from `mailFrom`, SRS-rewritten by a rewriter that answers `rewritten`. */
async function forwardRewrittenTo(rewritten: string, mailFrom = 'carol@fabrikam.example'): Promise<Decision> {
  return decidePool(
    { mailFrom, rcptTo: ['bob@example.net'], authentication: SPF_PASS },
    { policy: { acceptedDomains: ['contoso.com'] }, srs: { rewriter: { forward: () => rewritten }, domain: 'contoso.com' }, now: NOW },
  );
}

describe('formatTrace and parseTrace', () => {
  it('writes the common fields bare, as before', async () => {
    const decision = await decidePool({ mailFrom: 'alice@contoso.com', rcptTo: ['bob@example.net'] }, { policy: { acceptedDomains: ['contoso.com'] }, now: NOW });
    assert.equal(formatTrace(decision), 'OutboundIpPoolName=RegularOutboundPool; action=deliver; pool=normal; reasons=accepted-domain');
    assert.deepEqual(parseTrace(formatTrace(decision)), [
      ['OutboundIpPoolName', 'RegularOutboundPool'],
      ['action', 'deliver'],
      ['pool', 'normal'],
      ['reasons', 'accepted-domain'],
    ]);
  });

  it('a quoted local part with "; action=block; pool=none" adds no field: it is one quoted value', async () => {
    const hostile = '"x; action=block; pool=none"@contoso.com';
    const decision = await forwardRewrittenTo(hostile);
    assert.equal(decision.mailFrom, hostile);
    const trace = formatTrace(decision);
    assert.equal(trace, 'OutboundIpPoolName=RegularOutboundPool; action=deliver; pool=normal; reasons=spf-pass,srs-rewritten; mail-from="\\"x; action=block; pool=none\\"@contoso.com"');
    const fields = parseTrace(trace)!;
    assert.deepEqual(fields.map(([name]) => name), ['OutboundIpPoolName', 'action', 'pool', 'reasons', 'mail-from']);
    assert.deepEqual(fields.at(-1), ['mail-from', hostile]);
  });

  it('a rewritten sender with a backslash, quotes and UTF-8 reads back exactly, and the line stays ASCII', async () => {
    for (const rewritten of ['"a\\\\b"@contoso.com', '"a\\"b"@contoso.com', 'Üser=1@contoso.com', '"reply=\\"550\\""@contoso.com']) {
      const decision = await forwardRewrittenTo(rewritten);
      const trace = formatTrace(decision);
      assert.match(trace, /^[\x20-\x7e]+$/, trace);
      assert.deepEqual(parseTrace(trace), traceFields(decision), trace);
    }
  });

  it('an SRS address, with its = signs, stays bare', async () => {
    const decision = await decidePool(
      { mailFrom: 'carol@fabrikam.example', rcptTo: ['bob@example.net'], authentication: SPF_PASS },
      { policy: { acceptedDomains: ['contoso.com'] }, srs: { rewriter: new Srs({ secret: 'tops3cr3t' }), domain: 'contoso.com' }, now: NOW },
    );
    assert.match(formatTrace(decision), /; mail-from=SRS0=[^=]{4}=[A-Z2-7]{2}=fabrikam\.example=carol@contoso\.com$/);
  });

  it('a pool name with ; and = (printable ASCII, allowed by the policy) is quoted and reads back', async () => {
    const policy = createPolicy({ acceptedDomains: ['contoso.com'], pools: { normal: 'Pool;action=block' } });
    const decision = await decidePool({ mailFrom: 'alice@contoso.com', rcptTo: ['bob@example.net'] }, { policy, now: NOW });
    assert.equal(formatTrace(decision), 'OutboundIpPoolName="Pool;action=block"; action=deliver; pool=normal; reasons=accepted-domain');
    assert.deepEqual(parseTrace(formatTrace(decision)), traceFields(decision));
  });

  it('a refusal carries its reply quoted', () => {
    const decision = decideFromVerdicts(
      { mailFrom: 'alice@contoso.com', rcptTo: ['bob@example.net'] },
      { limits: { state: 'provided', value: { restriction: { until: null, reason: 'x' }, breaches: [], counted: false } } },
      { policy: { acceptedDomains: ['contoso.com'] }, now: NOW },
    );
    const fields = parseTrace(formatTrace(decision))!;
    assert.deepEqual(fields.at(-1), ['reply', decision.reply!.line]);
    assert.match(formatTrace(decision), /; reply="5\d\d \d\.\d\.\d+ [^"]+"$/);
  });

  const notTraces: readonly (readonly [string, string])[] = [
    ['an empty line', ''],
    ['a field without =', 'action'],
    ['an empty name', '=deliver'],
    ['a name given twice', 'action=deliver; action=block'],
    ['a separator without its space', 'action=deliver;pool=normal'],
    ['a trailing separator', 'action=deliver; '],
    ['an unterminated quoted value', 'reply="550 x'],
    ['a quoted value with a bad escape', 'reply="\\x"'],
    ['text after a quoted value', 'reply="550"x; action=block'],
    ['a bare value with a space', 'reply=550 x'],
    ['a bare value with a quote', 'mail-from=a"b@c'],
    ['a bare value with non-ASCII', 'mail-from=ü@c.example'],
  ];
  for (const [name, line] of notTraces) {
    it(`parseTrace refuses ${name}: null`, () => {
      assert.equal(parseTrace(line), null);
    });
  }
});

describe('property: any decision’s trace reads back to exactly its fields', () => {
  // Strings of every kind (full Unicode, lone surrogates, controls, the trace's own syntax).
  const nasty = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.string({ unit: fc.constantFrom(';', ' ', '=', '"', '\\', ',', '(', ')', 'a', '\r', '\n', '\u2028', 'é', '\ud800'), maxLength: 30 }),
  );
  const quote = (text: string): string => `"${text.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f\ud800-\udfff]/g, '')}"`;
  const quotedLocal = nasty.map(quote);
  // Some over RFC 5321's 64 octets, which the rewriter's answer must not exceed.
  const longQuotedLocal = fc.string({ unit: fc.constantFrom('a', ' ', 'é', '€', '"', '\\', ';'), minLength: 20, maxLength: 60, size: 'max' }).map(quote);

  it('for SRS-rewritten senders with hostile quoted local parts (through decidePool)', async () => {
    const numRuns = 1000;
    let applied = 0;
    let overLong = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof({ weight: 4, arbitrary: quotedLocal }, { weight: 1, arbitrary: longQuotedLocal }), async (local) => {
        const rewritten = `${local}@contoso.com`;
        // decidePool does not throw on what the rewriter answers: an address it cannot use (a
        // local part over 64 octets) is reported in decision.srs, and the sender is kept.
        const decision = await forwardRewrittenTo(rewritten);
        const fits = Buffer.byteLength(local, 'utf8') <= 64;
        assert.ok(decision.srs, 'a verified forward is always given to the rewriter');
        assert.equal(decision.srs.applied, fits, `${JSON.stringify(decision.srs)} for ${JSON.stringify(local)}`);
        const trace = formatTrace(decision);
        assert.match(trace, /^[\x20-\x7e]+$/);
        const fields = parseTrace(trace);
        assert.deepEqual(fields, traceFields(decision), trace);
        if (decision.srs.applied) {
          applied++;
          assert.equal(decision.mailFrom, rewritten);
          assert.deepEqual(fields!.at(-1), ['mail-from', rewritten] satisfies TraceField);
        } else {
          overLong++;
          assert.match(decision.srs.why, /the local part is over 64 octets/);
          assert.equal(decision.mailFrom, 'carol@fabrikam.example');
        }
      }),
      { numRuns },
    );
    assert.ok(applied > numRuns / 2, `only ${applied} of ${numRuns} runs were rewritten`);
    assert.ok(overLong > 0, 'no run had a local part over 64 octets');
  });

  it('for any values in the fields formatTrace writes (pool names, sender, reply text)', () => {
    fc.assert(
      fc.property(nasty, nasty, nasty, fc.boolean(), (poolName, mailFrom, replyText, refused) => {
        const base = { policyName: 'Default', reasons: [{ code: 'spf-pass', rule: 8, message: '' }, { code: 'provider-failed', rule: 6, message: '', provider: 'spam' }], verdicts: {} as never, ndr: { isNdr: false, basis: null } };
        const decision = (
          refused
            ? { ...base, action: 'block', pool: null, poolName: null, mailFrom, srs: null, reply: { code: 550, enhancedCode: '5.7.1', text: replyText, line: `550 5.7.1 ${replyText}` } }
            : { ...base, action: 'deliver', pool: 'normal', poolName, mailFrom, srs: { applied: true, original: 'a@b.example', rewritten: mailFrom }, reply: null }
        ) as Decision;
        const trace = formatTrace(decision);
        assert.match(trace, /^[\x20-\x7e]*$/, 'printable ASCII on one line');
        assert.deepEqual(parseTrace(trace), traceFields(decision), trace);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('the trace of a message from the bundled form reads back (sanity of traceFields)', () => {
  it('names every field once, in the documented order', async () => {
    const message: OutboundMessage = { mailFrom: 'alice@contoso.com', rcptTo: ['bob@example.net'] };
    const decision = await decidePool(message, { policy: { acceptedDomains: ['contoso.com'] }, now: NOW });
    assert.deepEqual(traceFields(decision).map(([name]) => name), ['OutboundIpPoolName', 'action', 'pool', 'reasons']);
  });
});
