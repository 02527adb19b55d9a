// The obvious SRS0 implementation (same format and hash as Mail::SRS: HMAC-SHA1
// over the lowercased timestamp, host and user, base64, first 4 characters).
// It is the baseline for "what does the straightforward approach cost".
import { createHmac } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const DAY_MS = 86_400_000;
const TICK_SLOTS = 1024; // two base32 characters

export class NaiveSrs {
  constructor(secret, maxAgeDays = 21) {
    this.secret = secret;
    this.maxAgeDays = maxAgeDays;
  }

  hash(timestamp, host, user) {
    return createHmac('sha1', this.secret)
      .update((timestamp + host + user).toLowerCase())
      .digest('base64')
      .slice(0, 4);
  }

  forward(address, alias, now) {
    const at = address.lastIndexOf('@');
    const user = address.slice(0, at);
    const host = address.slice(at + 1);
    const day = Math.floor(now / DAY_MS);
    const timestamp = BASE32[(day >> 5) & 31] + BASE32[day & 31];
    return `SRS0=${this.hash(timestamp, host, user)}=${timestamp}=${host}=${user}@${alias}`;
  }

  reverse(address, now) {
    const local = address.slice(0, address.lastIndexOf('@'));
    if (!/^SRS0[-+=]/i.test(local)) throw new Error(`not an SRS0 address: ${address}`);
    const [hash, timestamp, host, ...rest] = local.slice(5).split('=');
    const user = rest.join('=');
    if (hash !== this.hash(timestamp, host, user)) throw new Error(`bad hash: ${address}`);
    const then = BASE32.indexOf(timestamp[0].toUpperCase()) * 32 + BASE32.indexOf(timestamp[1].toUpperCase());
    let today = Math.floor(now / DAY_MS) % TICK_SLOTS;
    while (today < then) today += TICK_SLOTS;
    if (today > then + this.maxAgeDays) throw new Error(`expired: ${address}`);
    return `${user}@${host}`;
  }
}
