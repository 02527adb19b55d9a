// The designated forwarders of the pool milter (authResultsFrom, --auth-results-from): client
// addresses, CIDR ranges and SASL logins whose messages' Authentication-Results are read.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutboundPoolsError } from '../../src/errors.js';
import { parseForwarders } from '../../src/postfix/forwarders.js';

describe('parseForwarders', () => {
  const forwarders = parseForwarders([
    '192.0.2.25', '198.51.100.0/24', '2001:db8:1::/48', '::1', 'Forwarder@Contoso.com', '12345',
    '::FFFF:203.0.113.9', '2001:0DB8:0:0::25', 'fe80::7%eth0',
  ]);

  for (const [address, login, expected, why] of [
    ['192.0.2.25', undefined, true, 'a listed single IPv4 address'],
    ['192.0.2.26', undefined, false, 'the address next to it'],
    ['198.51.100.200', undefined, true, 'an address in a listed IPv4 range'],
    ['198.51.101.1', undefined, false, 'an address just outside the range'],
    ['::ffff:198.51.100.7', undefined, true, 'the IPv4-mapped IPv6 form of an address in an IPv4 range'],
    ['2001:db8:1:ffff::9', undefined, true, 'an address in a listed IPv6 range'],
    ['2001:db8:2::9', undefined, false, 'an IPv6 address outside it'],
    ['0:0:0:0:0:0:0:1', undefined, true, 'another spelling of a listed IPv6 address'],
    ['::ffff:192.0.2.25', undefined, true, 'the IPv4-mapped IPv6 form of a listed single IPv4 address'],
    ['::ffff:c000:219', undefined, true, 'the same, in hexadecimal'],
    ['::ffff:c000:21a', undefined, false, 'the mapped form of the address next to it'],
    ['::192.0.2.25', undefined, false, 'the IPv4-compatible form, which is another address'],
    ['203.0.113.9', undefined, true, 'the IPv4 address of a single address listed in the IPv4-mapped form'],
    ['::ffff:cb00:7109', undefined, true, 'the same address in the mapped form, in hexadecimal'],
    ['2001:db8::25', undefined, true, 'a listed single IPv6 address listed in another spelling'],
    ['2001:db8::26', undefined, false, 'the IPv6 address next to it'],
    ['fe80::7', undefined, true, 'a listed link-local address, whose zone is not part of the address'],
    ['fe80::7%eth1', undefined, true, 'the same address with another zone'],
    ['203.0.113.66', 'forwarder@contoso.com', true, 'a listed login, other case'],
    ['203.0.113.66', 'FORWARDER@CONTOSO.COM', true, 'a listed login, upper case'],
    ['203.0.113.66', '12345', true, 'a numeric login'],
    ['203.0.113.66', 'mallory@contoso.com', false, 'another login from an unlisted address'],
    ['203.0.113.66', '', false, 'no login (an empty {auth_authen}) from an unlisted address'],
    [undefined, undefined, false, 'no address and no login'],
    ['/run/postfix/socket', undefined, false, 'something that is not an IP address'],
    ['forwarder@contoso.com', undefined, false, 'a listed login given as the address'],
    ['192.0.2.25', 'mallory@contoso.com', true, 'a listed address whatever the login'],
  ] as const) {
    it(`${expected ? 'includes' : 'excludes'} ${why}`, () => {
      assert.equal(forwarders.includes(address, login), expected);
    });
  }

  it('a login that differs from a listed one by the Kelvin sign (U+212A, which toLowerCase folds onto k) is not that login', () => {
    const kiosk = parseForwarders(['Mailbox-Kiosk']);
    assert.equal(kiosk.includes('203.0.113.66', 'MAILBOX-KIOSK'), true);
    assert.equal(kiosk.includes('203.0.113.66', 'mailbox-\u212Aiosk'), false);
    assert.equal(parseForwarders(['mailbox-\u212Aiosk']).includes('203.0.113.66', 'mailbox-kiosk'), false);
  });

  it('refuses an empty list, a non-string, blanks, and what looks like an address or range but does not parse', () => {
    for (const [entries, why] of [
      [[], /authResultsFrom must be a non-empty array/],
      ['192.0.2.25', /authResultsFrom must be a non-empty array/],
      [[42], /authResultsFrom: number is not a client address, a CIDR range or a SASL login/],
      [[''], /authResultsFrom: "" is not a client address/],
      [[' forwarder'], /authResultsFrom: " forwarder" is not a client address/],
      [['for\nwarder'], /is not a client address/],
      [['192.0.2.300'], /authResultsFrom: "192\.0\.2\.300" looks like an IP address or CIDR range but is not one/],
      [['192.0.2.0/33'], /authResultsFrom: "192\.0\.2\.0\/33" needs a prefix length from 0 to 32 after the "\/"/],
      [['2001:db8::/129'], /needs a prefix length from 0 to 128/],
      [['192.0.2.0/'], /needs a prefix length/],
      [['192.0.2.0/24/8'], /looks like an IP address or CIDR range but is not one/],
      [['2001:db8:::1'], /looks like an IP address or CIDR range but is not one/],
      [['10/8'], /looks like an IP address or CIDR range but is not one/],
      // An IPv4 range in the IPv4-mapped form but wider than ::ffff:0:0/96 would cover every IPv4 client.
      [['::ffff:192.0.2.0/24'], /wider than the IPv4-mapped block \(\/96\): write the IPv4 range/],
    ] as const) {
      assert.throws(
        () => parseForwarders(entries as unknown as string[]),
        (error: unknown) => error instanceof OutboundPoolsError && error.code === 'invalid-context' && why.test(error.message),
        JSON.stringify(entries),
      );
    }
    assert.throws(() => parseForwarders(['192.0.2.300'], '--auth-results-from'), /^OutboundPoolsError: --auth-results-from: "192\.0\.2\.300"/);
  });
});
