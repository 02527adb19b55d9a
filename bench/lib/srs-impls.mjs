// Every in-process SRS implementation behind one shape, { name, forward, reverse },
// both taking and returning full addresses, so the timed loop does the same work for each.
import { createRequire } from 'node:module';
import { NaiveSrs } from './naive-srs.mjs';

const require = createRequire(import.meta.url);
const SECRET = 'tops3cr3t';
const ALIAS = 'example.com';
// One fixed instant: no Date is allocated per op, and the timestamp is the same for every call.
const NOW = Date.now();

export const OURS = 'outbound-pools (ours)';
export const DELIMITED = "ours, hashInput 'delimited'";

async function ours(name, hashInput) {
  const { Srs } = await import('../../dist/srs/index.js');
  const srs = new Srs({ secret: SECRET, hashInput });
  const opts = { now: NOW };
  return {
    name,
    forward: (address) => srs.forward(address, ALIAS, opts),
    reverse: (address) => srs.reverse(address, opts),
  };
}

function senderRewritingScheme() {
  const { SRS } = require('sender-rewriting-scheme');
  const srs = new SRS({ secret: SECRET });
  return {
    name: 'sender-rewriting-scheme',
    forward: (address) => srs.forward(address, ALIAS),
    reverse: (address) => srs.reverse(address),
  };
}

// srs.js rewrites local parts only (and names its forward method `rewrite`, although the
// README says `forward`), so the adapter splits and joins the address as the others do internally.
function srsJs() {
  const SRS = require('srs.js');
  const srs = new SRS({ secret: SECRET });
  return {
    name: 'srs.js',
    forward: (address) => {
      const at = address.lastIndexOf('@');
      return `${srs.rewrite(address.slice(0, at), address.slice(at + 1))}@${ALIAS}`;
    },
    reverse: (address) => {
      const [local, domain] = srs.reverse(address.slice(0, address.lastIndexOf('@')));
      return `${local}@${domain}`;
    },
  };
}

function naive() {
  const srs = new NaiveSrs(SECRET);
  return {
    name: 'naive createHmac',
    forward: (address) => srs.forward(address, ALIAS, NOW),
    reverse: (address) => srs.reverse(address, NOW),
  };
}

export async function loadImplementations() {
  return [await ours(OURS, 'concatenated'), await ours(DELIMITED, 'delimited'), senderRewritingScheme(), srsJs(), naive()];
}
