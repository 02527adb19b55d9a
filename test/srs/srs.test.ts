// SPEC §5 vectors and the behaviours around them. Every clock is injected.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Srs, SrsError, isSrs, parseSrs, type SrsErrorCode, type SrsOptions } from '../../src/srs/index.js';

const SECRET = 'tops3cr3t';
const NOW = 1577836860_000; // 2020-01-01 00:01:00 UTC → stamp 2W
const WRAP_NOW = 1592956800_000; // day 5 of the 1024-day cycle → stamp AF
const DAY = 86_400_000;

const srs = new Srs({ secret: SECRET });

function throwsCode(fn: () => unknown, code: SrsErrorCode): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof SrsError, `expected SrsError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

describe('SPEC §5 vectors (secret tops3cr3t, clock 1577836860)', () => {
  const vectors: { name: string; options?: Partial<SrsOptions>; op: 'forward' | 'reverse'; input: string; via?: string; output: string }[] = [
    { name: 'SRS0 forward', op: 'forward', input: 'test@otherdomain.com', via: 'example.com', output: 'SRS0=vmyz=2W=otherdomain.com=test@example.com' },
    {
      name: 'SRS0 → SRS1 keeps the SRS0 separator (==)',
      op: 'forward',
      input: 'SRS0=vmyz=2W=otherdomain.com=test@example.com',
      via: 'second.example',
      output: 'SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@second.example',
    },
    { name: 'reverse of a lowercased address', op: 'reverse', input: 'srs0=xjo9=2v=otherdomain.com=test@example.com', output: 'test@otherdomain.com' },
    {
      name: 'SRS1 → SRS1 re-signs and keeps host and rest',
      op: 'forward',
      input: 'SRS1=X=thirddomain.com==opaque+string@otherdomain.com',
      via: 'example.com',
      output: 'SRS1=JIBX=thirddomain.com==opaque+string@example.com',
    },
    {
      name: 'separator +',
      options: { separator: '+' },
      op: 'forward',
      input: 'User+tag=x@Other.Example',
      via: 'example.com',
      output: 'SRS0+Dv85=2W=Other.Example=User+tag=x@example.com',
    },
    {
      name: 'hash length 8',
      options: { hashLength: 8 },
      op: 'forward',
      input: 'test@otherdomain.com',
      via: 'example.com',
      output: 'SRS0=vmyz7Bwa=2W=otherdomain.com=test@example.com',
    },
    { name: 'UTF-8, lowercased with ASCII rules only', op: 'forward', input: 'Üser@Bücher.DE', via: 'example.com', output: 'SRS0=LWpK=2W=Bücher.DE=Üser@example.com' },
  ];
  for (const vector of vectors) {
    it(`${vector.name}: ${vector.input} → ${vector.output}`, () => {
      const rewriter = vector.options ? new Srs({ secret: SECRET, ...vector.options }) : srs;
      const actual =
        vector.op === 'forward' ? rewriter.forward(vector.input, vector.via!, { now: NOW }) : rewriter.reverse(vector.input, { now: NOW });
      assert.equal(actual, vector.output);
    });
  }

  it('at clock 1592956800 (AF) stamps 77 and 7Q are valid and 7P is expired (22 days, across the wrap)', () => {
    const signedDaysBefore = (days: number) => srs.forward('test@otherdomain.com', 'example.com', { now: WRAP_NOW - days * DAY });
    const sixDays = signedDaysBefore(6);
    const twentyOne = signedDaysBefore(21);
    const twentyTwo = signedDaysBefore(22);
    assert.match(sixDays, /=77=/);
    assert.match(twentyOne, /=7Q=/);
    assert.match(twentyTwo, /=7P=/);
    assert.equal(srs.reverse(sixDays, { now: WRAP_NOW }), 'test@otherdomain.com');
    assert.equal(srs.reverse(twentyOne, { now: WRAP_NOW }), 'test@otherdomain.com');
    throwsCode(() => srs.reverse(twentyTwo, { now: WRAP_NOW }), 'expired');
  });
});

describe('further vectors from Mail::SRS, postsrsd and pysrs', () => {
  it('reverses mixed-case and all-uppercase addresses, returning the case given (postsrsd tests)', () => {
    assert.equal(srs.reverse('SRS0=XjO9=2V=otherdomain.com=test@example.com', { now: NOW }), 'test@otherdomain.com');
    assert.equal(srs.reverse('SRS0=XJO9=2V=OTHERDOMAIN.COM=TEST@EXAMPLE.COM', { now: NOW }), 'TEST@OTHERDOMAIN.COM');
  });

  it('reverses SRS1 to the SRS0 address at the first forwarder', () => {
    const srs1 = 'SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@second.example';
    assert.equal(srs.reverse(srs1, { now: NOW }), 'SRS0=vmyz=2W=otherdomain.com=test@example.com');
    assert.equal(srs.reverse('SRS1=JIBX=thirddomain.com==opaque+string@example.com', { now: NOW }), 'SRS0=opaque+string@thirddomain.com');
  });

  it('a third hop re-signs SRS1 without growing it (Mail::SRS vector 7)', () => {
    const srs1 = 'SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@second.example';
    assert.equal(srs.forward(srs1, 'third.example', { now: NOW }), 'SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@third.example');
  });

  it('wraps any SRS0-tagged sender as SRS1 without interpreting it (vector 9)', () => {
    assert.equal(srs.forward('SRS0=opaque+string@otherdomain.com', 'example.com', { now: NOW }), 'SRS1=chaI=otherdomain.com==opaque+string@example.com');
  });

  it('separator + carries into SRS1 as =+ (vector 13)', () => {
    const plus = new Srs({ secret: SECRET, separator: '+' });
    const srs0 = plus.forward('User+tag=x@Other.Example', 'example.com', { now: NOW });
    assert.equal(plus.forward(srs0, 'second.example', { now: NOW }), 'SRS1+vVnR=example.com=+Dv85=2W=Other.Example=User+tag=x@second.example');
  });

  it('base64url emits - and _ like postsrsd ≥ 2.2.6, and both alphabets reverse either form', () => {
    const url = new Srs({ secret: SECRET, alphabet: 'base64url' });
    assert.equal(url.forward('hash234@somedomain.com', 'example.com', { now: NOW }), 'SRS0=-3_5=2W=somedomain.com=hash234@example.com');
    assert.equal(srs.forward('hash234@somedomain.com', 'example.com', { now: NOW }), 'SRS0=+3/5=2W=somedomain.com=hash234@example.com');
    for (const rewriter of [srs, url]) {
      for (const address of ['SRS0=+3/5=2W=somedomain.com=hash234@example.com', 'SRS0=-3_5=2W=somedomain.com=hash234@example.com']) {
        assert.equal(rewriter.reverse(address, { now: NOW }), 'hash234@somedomain.com');
      }
    }
  });

  it('rotation: the first secret signs, every secret verifies (vector 17)', () => {
    const rotated = new Srs({ secrets: ['newsecret', SECRET] });
    assert.equal(rotated.forward('test@otherdomain.com', 'example.com', { now: NOW }), 'SRS0=m7Et=2W=otherdomain.com=test@example.com');
    assert.equal(rotated.reverse('SRS0=vmyz=2W=otherdomain.com=test@example.com', { now: NOW }), 'test@otherdomain.com');
    throwsCode(() => new Srs({ secret: 'newsecret' }).reverse('SRS0=vmyz=2W=otherdomain.com=test@example.com', { now: NOW }), 'bad-hash');
  });

  it('a sender already in the forwarding domain is left alone, ignoring case, unless alwaysRewrite', () => {
    assert.equal(srs.forward('u@Example.COM', 'example.com', { now: NOW }), 'u@Example.COM');
    const always = new Srs({ secret: SECRET, alwaysRewrite: true });
    assert.match(always.forward('u@Example.COM', 'example.com', { now: NOW }), /^SRS0=[^=]{4}=2W=Example\.COM=u@example\.com$/);
  });

  it('a forwarding address may be given instead of a domain (Mail::SRS takes the part after @)', () => {
    assert.equal(srs.forward('test@otherdomain.com', 'postmaster@example.com', { now: NOW }), 'SRS0=vmyz=2W=otherdomain.com=test@example.com');
  });

  it('a quoted local part is hashed unquoted and the whole SRS local part quoted (pysrs vector 21)', () => {
    const forwarded = srs.forward('"foo bar"@otherdomain.com', 'example.com', { now: NOW });
    assert.equal(forwarded, '"SRS0=Xiy7=2W=otherdomain.com=foo bar"@example.com');
    assert.equal(srs.reverse(forwarded, { now: NOW }), '"foo bar"@otherdomain.com');
  });

  it('accepts a longer correct hash prefix and refuses one shorter than hashMin', () => {
    assert.equal(srs.reverse('SRS0=vmyz7Bwa=2W=otherdomain.com=test@example.com', { now: NOW }), 'test@otherdomain.com');
    throwsCode(() => srs.reverse('SRS0=vmy=2W=otherdomain.com=test@example.com', { now: NOW }), 'bad-hash');
    const lenient = new Srs({ secret: SECRET, hashMin: 3 });
    assert.equal(lenient.reverse('SRS0=vmy=2W=otherdomain.com=test@example.com', { now: NOW }), 'test@otherdomain.com');
    throwsCode(() => srs.reverse('SRS0=vmyz7Bwb=2W=otherdomain.com=test@example.com', { now: NOW }), 'bad-hash');
  });
});

describe('rejections, each with its code', () => {
  const cases: [string, string, SrsErrorCode][] = [
    ['a forged hash', 'SRS0=FAKE=2V=otherdomain.com=test@example.com', 'bad-hash'],
    ['a correctly signed stamp from long ago (reference: "Time stamp out of date")', 'SRS0=te87=T7=otherdomain.com=test@example.com', 'expired'],
    ['a correctly signed stamp from the future', 'SRS0=VcIb=7N=otherdomain.com=test@example.com', 'future'],
    ['no hash', 'SRS0=@x', 'malformed'],
    ['no timestamp', 'SRS0=XjO9@x', 'malformed'],
    ['no host', 'SRS0=XjO9=2V@x', 'malformed'],
    ['no user', 'SRS0=XjO9=2V=otherdomain.com@x', 'malformed'],
    ['a three-character stamp', 'SRS0=XjO9=2VV=otherdomain.com=test@x', 'malformed'],
    ['a stamp outside base32', 'SRS0=XjO9=21=otherdomain.com=test@x', 'malformed'],
    ['hashless legacy SRS1', 'SRS1=host.com==user@x', 'malformed'],
    ['SRS1 without its SRS0 part', 'SRS1=abcd=example.com@x', 'malformed'],
    ['a plain address', 'test@otherdomain.com', 'not-srs'],
    ['SRS0 without a separator', 'SRS0vmyz=2W=otherdomain.com=test@example.com', 'not-srs'],
    ['no @', 'SRS0=vmyz=2W=otherdomain.com=test', 'no-domain'],
    ['a CR LF injection', 'SRS0=vmyz=2W=otherdomain.com=test@example.com\r\nRCPT TO:<x@y>', 'invalid-address'],
    ['a lone surrogate (it would hash as U+FFFD)', 'SRS0=vmyz=2W=otherdomain.com=te\ud800st@example.com', 'invalid-address'],
    // What no genuine forward produces, refused before the hash is even checked.
    ['a host that is not a domain name (space)', 'SRS0=vmyz=2W=other domain.com=test@example.com', 'malformed'],
    ['a host with an empty label', 'SRS0=vmyz=2W=otherdomain..com=test@example.com', 'malformed'],
    ['a host label ending with -', 'SRS0=vmyz=2W=other-.com=test@example.com', 'malformed'],
    ['a host with a label over 63 octets', `SRS0=vmyz=2W=${'a'.repeat(64)}.com=test@example.com`, 'malformed'],
    ['an original local part over 64 octets', `SRS0=vmyz=2W=otherdomain.com=${'a'.repeat(65)}@example.com`, 'malformed'],
    ['an original local part that is itself SRS', 'SRS0=vmyz=2W=otherdomain.com=SRS0=x=2W=a.b=c@example.com', 'malformed'],
    ['an SRS1 part without its separator', 'SRS1=JO9m=example.co=m==vmyz=2W=otherdomain.com=test@second.example', 'malformed'],
    ['an SRS1 host that is not a domain name', 'SRS1=JO9m=exa mple.com==vmyz=2W=otherdomain.com=test@second.example', 'malformed'],
  ];
  for (const [name, address, code] of cases) {
    it(`reverse refuses ${name} with ${code}`, () => throwsCode(() => srs.reverse(address, { now: NOW }), code));
  }

  it('an expired stamp with a valid hash is "expired", a future one "future"', () => {
    const old = srs.forward('test@otherdomain.com', 'example.com', { now: NOW - 22 * DAY });
    const tomorrow = srs.forward('test@otherdomain.com', 'example.com', { now: NOW + DAY });
    throwsCode(() => srs.reverse(old, { now: NOW }), 'expired');
    throwsCode(() => srs.reverse(tomorrow, { now: NOW }), 'future');
  });

  it('forward refuses what is not an address', () => {
    throwsCode(() => srs.forward('no-at-sign', 'example.com'), 'no-domain');
    throwsCode(() => srs.forward('user@', 'example.com'), 'no-domain');
    throwsCode(() => srs.forward('@example.org', 'example.com'), 'invalid-address');
    throwsCode(() => srs.forward('', 'example.com'), 'invalid-address');
    throwsCode(() => srs.forward(42 as unknown as string, 'example.com'), 'invalid-address');
    throwsCode(() => srs.forward('a\u0000b@example.org', 'example.com'), 'invalid-address');
    throwsCode(() => srs.forward(`${'a'.repeat(2000)}@example.org`, 'example.com'), 'invalid-address');
    throwsCode(() => srs.forward('a@example.org', ''), 'invalid-address');
    throwsCode(() => srs.forward('a@example.org', 'exa mple.com'), 'invalid-domain');
    throwsCode(() => srs.forward('a@example.org', 'example.com', { now: Number.NaN }), 'invalid-option');
    throwsCode(() => srs.forward('a@example.org', 'example.com', { now: new Date('nope') }), 'invalid-option');
  });

  it('the error message names the address and the reason for a mail admin', () => {
    try {
      srs.reverse('SRS0=FAKE=2V=otherdomain.com=test@example.com', { now: NOW });
      assert.fail('expected a bad-hash error');
    } catch (error) {
      assert.ok(error instanceof SrsError);
      assert.equal(error.name, 'SrsError');
      assert.match(error.message, /SRS0=FAKE=2V=otherdomain\.com=test@example\.com/);
      assert.match(error.message, /no configured secret/);
    }
  });
});

describe('reverse hands on only what a forward could have signed (issue 11)', () => {
  it('accepts address literals and U-labels as hosts, as forward does', () => {
    for (const sender of ['user@[192.0.2.1]', 'user@[IPv6:2001:db8::1]', 'user@bücher.example', 'user@a_b.example', 'user@x']) {
      const forwarded = srs.forward(sender, 'example.com', { now: NOW });
      assert.equal(srs.reverse(forwarded, { now: NOW }), sender);
    }
  });

  it('forward refuses a sender whose domain is not a domain name (reverse would refuse the result)', () => {
    for (const sender of ['user@exa mple.org', 'user@a..b', 'user@-a.example', 'user@a-.example', 'user@a=b.example', 'user@example.org.', 'user@[1.2=3]']) {
      throwsCode(() => srs.forward(sender, 'example.com', { now: NOW }), 'invalid-domain');
    }
  });

  it('forward refuses an SRS1 sender whose host is not a domain name or whose part lacks its separator', () => {
    throwsCode(() => srs.forward('SRS1=X=third domain.com==opaque@otherdomain.com', 'example.com', { now: NOW }), 'malformed');
    throwsCode(() => srs.forward('SRS1=X=thirddomain.com=opaque@otherdomain.com', 'example.com', { now: NOW }), 'malformed');
  });

  it('the reversed local part does not depend on quoting around the SRS address, which the hash does not cover', () => {
    const quoted = srs.forward('"foo bar"@otherdomain.com', 'example.com', { now: NOW });
    const unquoted = quoted.replace(/^"(.*)"@/, '$1@');
    const escaped = quoted.replace('foo', 'f\\oo');
    for (const address of [quoted, unquoted, escaped]) assert.equal(srs.reverse(address, { now: NOW }), '"foo bar"@otherdomain.com', address);
    const plain = srs.forward('test@otherdomain.com', 'example.com', { now: NOW });
    assert.equal(srs.reverse(`"${plain.replace('@', '"@')}`, { now: NOW }), 'test@otherdomain.com');
  });

  it('a local part Mail::SRS signed with its quotes comes back as that quoted-string', () => {
    // Mail::SRS forwards "foo bar"@otherdomain.com as SRS0=4PFQ=2W=otherdomain.com="foo bar"@example.com.
    assert.equal(srs.reverse('SRS0=4PFQ=2W=otherdomain.com="foo bar"@example.com', { now: NOW }), '"foo bar"@otherdomain.com');
  });

  it('a sloppy but quote-free local part (john..doe) comes back bare, as the peers return it', () => {
    const forwarded = srs.forward('john..doe@otherdomain.com', 'example.com', { now: NOW });
    assert.equal(srs.reverse(forwarded, { now: NOW }), 'john..doe@otherdomain.com');
  });
});

describe("hashInput 'delimited'", () => {
  const delimited = new Srs({ secret: SECRET, hashInput: 'delimited' });

  it('keeps the address format: only the hash differs from the compatible one', () => {
    const compatible = srs.forward('test@otherdomain.com', 'example.com', { now: NOW });
    const signed = delimited.forward('test@otherdomain.com', 'example.com', { now: NOW });
    assert.match(signed, /^SRS0=[A-Za-z0-9+/]{4}=2W=otherdomain\.com=test@example\.com$/);
    assert.notEqual(signed, compatible);
    assert.equal(delimited.reverse(signed, { now: NOW }), 'test@otherdomain.com');
  });

  it('round-trips SRS1 and the bounces fallback too', () => {
    const srs1 = delimited.forward('SRS0=vmyz=2W=otherdomain.com=test@example.com', 'second.example', { now: NOW });
    assert.equal(delimited.reverse(srs1, { now: NOW }), 'SRS0=vmyz=2W=otherdomain.com=test@example.com');
    assert.notEqual(srs1, 'SRS1=JO9m=example.com==vmyz=2W=otherdomain.com=test@second.example');
    const bounces = new Srs({ secret: SECRET, hashInput: 'delimited', longLocalPart: 'bounces' });
    const fallback = bounces.forward(`${'a'.repeat(60)}@otherdomain.com`, 'example.com', { now: NOW });
    assert.equal(bounces.reverse(fallback, { now: NOW }), 'bounces@example.com');
  });

  it('refuses an SRS1 whose host/rest boundary was moved, which the compatible hash accepts', () => {
    const hop = (options: SrsOptions) => new Srs(options).forward('SRS0=abcd=2W=x.example=u@a-b.example', 'second.example', { now: NOW });
    const shift = (address: string) => address.replace('=a-b.example==abcd', '=a=-b.example=abcd');
    const compatible = new Srs({ secret: SECRET });
    assert.equal(compatible.reverse(shift(hop({ secret: SECRET })), { now: NOW }), 'SRS0-b.example=abcd=2W=x.example=u@a');
    throwsCode(() => delimited.reverse(shift(hop({ secret: SECRET, hashInput: 'delimited' })), { now: NOW }), 'bad-hash');
  });
});

describe('the 64-octet local part limit', () => {
  const longLocal = 'a'.repeat(40);
  const longSender = `${longLocal}@a-rather-long-domain.example`;

  it('refuses by default rather than emit a local part over 64 octets', () => {
    throwsCode(() => srs.forward(longSender, 'example.com', { now: NOW }), 'local-part-too-long');
  });

  it('counts octets, not characters: 20 three-octet characters make 60 octets', () => {
    const cjk = '漢'.repeat(20);
    throwsCode(() => srs.forward(`${cjk}@b.example`, 'example.com', { now: NOW }), 'local-part-too-long');
  });

  it("'bounces' gives the Microsoft 365 form, which reverses to the bounces mailbox", () => {
    const bounces = new Srs({ secret: SECRET, longLocalPart: 'bounces' });
    const address = bounces.forward(longSender, 'example.com', { now: NOW });
    assert.match(address, /^bounces\+SRS=[A-Za-z0-9+/]{4}=2W@example\.com$/);
    assert.ok(bounces.isSrs(address));
    assert.equal(bounces.reverse(address, { now: NOW }), 'bounces@example.com');
    assert.equal(bounces.reverse(address.toUpperCase(), { now: NOW }), 'bounces@EXAMPLE.COM');
    throwsCode(() => bounces.reverse(address, { now: NOW + 22 * DAY }), 'expired');
    throwsCode(() => bounces.reverse(address.replace('@example.com', '@elsewhere.example'), { now: NOW }), 'bad-hash');
    const parsed = bounces.parse(address);
    assert.equal(parsed.type, 'bounces');
  });

  it('a rewritten local part of exactly 64 octets is emitted', () => {
    // SRS0=HHHH=2W= is 13 characters, the host 4 ("b.eu") plus "=": 18; 46 more make 64.
    const local = 'x'.repeat(46);
    const forwarded = srs.forward(`${local}@b.eu`, 'example.com', { now: NOW });
    assert.equal(forwarded.split('@')[0]!.length, 64);
    throwsCode(() => srs.forward(`${local}y@b.eu`, 'example.com', { now: NOW }), 'local-part-too-long');
  });
});

describe('options are checked once, in the constructor', () => {
  const bad: [string, unknown][] = [
    ['no secret', {}],
    ['both secret and secrets', { secret: 'a', secrets: ['b'] }],
    ['an empty secret', { secret: '' }],
    ['an empty secrets list', { secrets: [] }],
    ['an empty secret in the list', { secrets: ['a', ''] }],
    ['a numeric secret', { secret: 42 }],
    ['separator *', { secret: 'a', separator: '*' }],
    ['hashLength 0', { secret: 'a', hashLength: 0 }],
    ['hashLength 28', { secret: 'a', hashLength: 28 }],
    ['hashLength 4.5', { secret: 'a', hashLength: 4.5 }],
    ['hashMin above hashLength', { secret: 'a', hashLength: 4, hashMin: 5 }],
    ['negative maxAge', { secret: 'a', maxAge: -1 }],
    ['maxAge beyond the stamp cycle', { secret: 'a', maxAge: 1024 }],
    ['an unknown alphabet', { secret: 'a', alphabet: 'hex' }],
    ['an unknown hashInput', { secret: 'a', hashInput: 'guarded' }],
    ['an unknown longLocalPart', { secret: 'a', longLocalPart: 'truncate' }],
    ['a bounces mailbox with =', { secret: 'a', bouncesLocalPart: 'a=b' }],
    ['a non-boolean alwaysRewrite', { secret: 'a', alwaysRewrite: 'yes' }],
    ['an unknown option (a typo)', { secret: 'a', hashlength: 6 }],
    ['no options object', undefined],
  ];
  for (const [name, options] of bad) {
    it(`refuses ${name}`, () => throwsCode(() => new Srs(options as SrsOptions), 'invalid-option'));
  }

  it('exposes the settings it runs with, frozen and without the secrets', () => {
    const rewriter = new Srs({ secrets: ['a', 'b'], separator: '-', hashLength: 6 });
    assert.deepEqual(rewriter.settings, {
      separator: '-',
      hashLength: 6,
      hashMin: 6,
      maxAge: 21,
      alphabet: 'base64',
      hashInput: 'concatenated',
      alwaysRewrite: false,
      longLocalPart: 'refuse',
      bouncesLocalPart: 'bounces',
      secretCount: 2,
    });
    assert.ok(Object.isFrozen(rewriter.settings));
  });
});

describe('isSrs and parseSrs', () => {
  it('recognise SRS0 and SRS1 in any case and with any separator, and nothing else', () => {
    for (const address of ['SRS0=a=2W=h=u@x', 'srs0+a=2W=h=u@x', 'SRS1-a=h==u@x', '"SRS0=a=2W=h=u u"@x']) assert.ok(isSrs(address), address);
    for (const address of ['user@x', 'SRS2=a@x', 'SRS0a@x', 'SRS0=x', '', 42, null]) assert.ok(!isSrs(address), String(address));
  });

  it('parseSrs returns the fields without needing the secret', () => {
    assert.deepEqual(parseSrs('SRS0=vmyz=2W=otherdomain.com=us=er@example.com'), {
      type: 'SRS0',
      separator: '=',
      hash: 'vmyz',
      timestamp: '2W',
      host: 'otherdomain.com',
      local: 'us=er',
      domain: 'example.com',
    });
    assert.deepEqual(parseSrs('SRS1+JO9m=example.com=-vmyz=2W=otherdomain.com=test@second.example'), {
      type: 'SRS1',
      separator: '+',
      hash: 'JO9m',
      srs0Host: 'example.com',
      srs0Local: 'SRS0-vmyz=2W=otherdomain.com=test',
      domain: 'second.example',
    });
  });
});

describe('octet counting for the 64-octet limit', () => {
  it('counts 1-, 2-, 3- and 4-octet characters as UTF-8 does', () => {
    // "SRS0=HHHH=2W=b.eu=" is 18 octets; fill the remaining 46 exactly with each width.
    for (const [unit, octets] of [['x', 1], ['é', 2], ['漢', 3], ['😀', 4]] as const) {
      const fits = unit.repeat(Math.floor(46 / octets)) + 'x'.repeat(46 % octets);
      const forwarded = srs.forward(`${fits}@b.eu`, 'example.com', { now: NOW });
      assert.equal(Buffer.byteLength(forwarded.split('@')[0]!), 64, unit);
      throwsCode(() => srs.forward(`${fits}x@b.eu`, 'example.com', { now: NOW }), 'local-part-too-long');
    }
  });
});
