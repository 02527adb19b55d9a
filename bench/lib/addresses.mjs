// Deterministic, realistic-looking envelope senders, so every implementation
// (and every run) rewrites exactly the same work.

// mulberry32: a tiny seeded PRNG; Math.random cannot be seeded.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['anna', 'john', 'maria', 'wei', 'olivier', 'fatima', 'lars', 'priya', 'kenji', 'sofia', 'mohammed', 'chloe'];
const LAST = ['smith', 'garcia', 'nguyen', 'mueller', 'kowalski', 'okafor', 'rossi', 'tanaka', 'johansson', 'vanderberg'];
const ROLES = ['info', 'billing', 'no-reply', 'noreply', 'support', 'newsletter', 'postmaster', 'sales'];
const TAGS = ['lists', 'shop', 'github', 'work', 'x', 'bank2024'];
const DOMAINS = [
  'gmail.com', 'outlook.com', 'yahoo.co.uk', 'proton.me', 'icloud.com', 'gmx.de', 'web.de',
  'mail.acme-industries.com', 'lists.debian.org', 'uni-heidelberg.de', 'bounce.em.shopmailer.net',
  'corp.internal-example.org', 'Gmail.com', 'EXAMPLE.ORG',
];

/** @returns {string[]} `count` addresses; the same seed always yields the same list. */
export function generateAddresses(count, seed = 20240611) {
  const rand = prng(seed);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const hex = (n) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const capital = (s) => s[0].toUpperCase() + s.slice(1);

  const localParts = [
    () => `${pick(FIRST)}.${pick(LAST)}`,
    () => `${pick(FIRST)}${pick(LAST)}${Math.floor(rand() * 100)}`,
    () => `${pick(FIRST)[0]}.${pick(LAST)}`,
    () => `${pick(FIRST)}_${pick(LAST)}`,
    () => `${pick(FIRST)}+${pick(TAGS)}`,
    () => `${pick(FIRST)}.${pick(LAST)}+${pick(TAGS)}`,
    () => pick(ROLES),
    // VERP-style bounce addresses: long, and may carry '=' (which SRS must keep intact).
    () => `bounces+${Math.floor(rand() * 1e6)}-${hex(12)}`,
    () => `msprvs1=${hex(10)}=bounces-${Math.floor(rand() * 1e4)}`,
  ];

  const addresses = [];
  while (addresses.length < count) {
    let local = pick(localParts)();
    const r = rand();
    if (r < 0.15) local = local.split('.').map(capital).join('.');
    else if (r < 0.2) local = local.toUpperCase();
    const host = pick(DOMAINS);
    // SRS0 turns `local` into `SRS0=HHHH=TT=host=local`; RFC 5321 caps a local part at 64
    // octets and our module refuses to exceed it (the others do not), so only senders that
    // can be rewritten as plain SRS0 are kept: every implementation then does the same work.
    if (local.length + host.length + 14 <= 64) addresses.push(`${local}@${host}`);
  }
  return addresses;
}
