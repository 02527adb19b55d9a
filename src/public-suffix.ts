// The Public Suffix List, through tldts: registrable domains for DMARC-style alignment and the
// public-suffix check on accepted domains.
//
// tldts is loaded on first use, with require(): importing its CommonJS build through the ESM
// loader costs about 40 ms more (the loader analyses its exports), a third of what
// `import 'outbound-pools'` would otherwise take; require() of the same build takes ~16 ms, paid
// by the first decision that needs it rather than by every import of the package.

import { createRequire } from 'node:module';

type Tldts = typeof import('tldts');

let tldts: Tldts | undefined;

function load(): Tldts {
  tldts ??= createRequire(import.meta.url)('tldts') as Tldts;
  return tldts;
}

/** The registrable domain (`mail.example.co.uk` → `example.co.uk`), private suffixes included. */
export function registrableDomain(domain: string): string {
  // Private suffixes count (github.io, …): two users of one hosting suffix are not aligned.
  return load().getDomain(domain, { allowPrivateDomains: true }) ?? domain;
}

/** What the Public Suffix List says of a name that is a public suffix itself; null when it is not one. */
export function publicSuffixKind(domain: string): 'icann' | 'private' | null {
  const parsed = load().parse(domain, { allowPrivateDomains: true });
  if (parsed.domain !== null || parsed.publicSuffix !== domain) return null;
  if (parsed.isIcann === true) return 'icann';
  return parsed.isPrivate === true ? 'private' : null;
}
