// The realistic workload of SPEC §6, generated from a seed so that every run and every case
// decides exactly the same messages:
//
// - 1,000 sender domains, 10 % of them with an A record and no MX (the resolver asks MX, gets
//   NODATA, then asks A), the others with an MX; the first 100 are the organisation's accepted
//   domains, the other 900 are outside (their mail is forwarded: SRS on when verified).
// - 10,000 senders spread over those domains, plus NDRs (null sender, a submitter each).
// - Every message: 1–3 recipients, some internal, and a header block of 2–4 KB as an MTA sees
//   it at the border after a forward: 1–3 Received, ARC-Seal, ARC-Message-Signature and
//   ARC-Authentication-Results (on 60 % of the domains' mail), Authentication-Results, DKIM-Signature (folded base64),
//   From/To/Subject/Date, MIME-Version, Content-Type (a DSN's multipart/report for NDRs), list
//   headers — and a fresh Message-ID for every message, so that the rate limiter remembers a
//   new id each time, as it would in production.
//
// The header blocks are made once per domain, split around the Message-ID; a message's block is
// `before + freshId + after` (a string concatenation: the decision then reads a string it has
// never seen, as it would read an MTA's). Verdicts the in-memory providers answer (spam score,
// SPF) are drawn once per sender.
import { prng } from './addresses.mjs';

const WORDS = ['north', 'wind', 'fabrikam', 'tailspin', 'contoso', 'litware', 'adventure', 'works', 'proseware', 'wingtip', 'alpine', 'blue', 'yonder', 'margie', 'travel', 'coho', 'vineyard', 'lucerne', 'trey', 'research'];
const TLDS = ['com', 'net', 'org', 'example', 'co.uk', 'de', 'fr', 'io'];
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Options of the default workload; every figure of SPEC §6. */
export const REALISTIC = Object.freeze({ seed: 20261206, domains: 1_000, acceptedDomains: 100, senders: 10_000, aOnlyShare: 0.1, ndrShare: 0.03, spamShare: 0.05, unverifiedShare: 0.3 });

/**
 * @param {Partial<typeof REALISTIC>} [options]
 * @returns the zone for createStaticResolver, the accepted domains, the senders, the verdicts
 * the in-memory providers answer, and `message(n)`: the n-th message, with and without headers.
 */
export function generateWorkload(options = {}) {
  const o = { ...REALISTIC, ...options };
  const rand = prng(o.seed);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  const base64 = (n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += B64[Math.floor(rand() * 64)];
    return s;
  };
  const hex = (n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
    return s;
  };
  // The halves are built by concatenation, which V8 keeps as a tree of pieces: stored flat, so that
  // a message costs one copy of its own block (its fresh concatenation, flattened when first
  // read, as any string built by concatenation is), not a walk through the generator's pieces.
  const flat = (text) => Buffer.from(text, 'latin1').toString('latin1');
  /** Folds a tag value as signers do: 76 characters a line, continuation lines start with a tab. */
  const fold = (value) => value.replace(/.{1,72}/g, (line, offset) => (offset === 0 ? line : `\r\n\t${line}`));

  const domains = [];
  const zone = {};
  for (let i = 0; i < o.domains; i++) {
    const domain = `${pick(WORDS)}${pick(WORDS)}${i}.${pick(TLDS)}`;
    domains.push(domain);
    // Every tenth domain (from the 4th on) has only an A record: MX NODATA, then A.
    if (i % Math.round(1 / o.aOnlyShare) === 3) zone[domain] = { A: [`198.51.${(i >> 8) & 255}.${i & 255}`] };
    else zone[domain] = { MX: [{ exchange: `mx${i % 3}.${domain}`, priority: 10 }] };
  }
  const accepted = domains.slice(0, o.acceptedDomains);
  const acceptedSet = new Set(accepted);

  // A header block per domain, split around the Message-ID.
  const border = 'mx1.border.contoso-mail.example';
  const templates = domains.map((domain, i) => {
    const ip = `203.0.${(i >> 8) & 255}.${i & 255}`;
    const date = `Sun, 6 Dec 2026 ${String(int(0, 23)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')} +0000`;
    const target = int(2048, 4000);
    // ARC only on part of the mail: the hops that forwarded it sealed it.
    const arc = rand() < 0.6;
    const lines = [];
    const hops = int(1, 3);
    for (let h = 0; h < hops; h++) {
      lines.push(`Received: from mail-${hex(4)}.${domain} (mail-${hex(4)}.${domain} [${ip}])\r\n\tby ${h === 0 ? border : `relay${h}.${domain}`} (Postfix) with ESMTPS id ${hex(10).toUpperCase()}\r\n\tfor <user${i}@${accepted[i % accepted.length]}>; ${date}`);
    }
    const spf = `spf=pass (sender IP is ${ip}) smtp.mailfrom=${domain}`;
    const dkim = `dkim=pass header.d=${domain} header.s=selector${i % 3} header.b=${base64(8)}`;
    if (arc) lines.push(`ARC-Seal: i=1; a=rsa-sha256; t=${1796000000 + i}; cv=none; d=${domain}; s=arc-2026;\r\n\tb=${fold(base64(344))}`);
    if (arc) lines.push(`ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=arc-2026;\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh=${base64(43)}=;\r\n\tb=${fold(base64(344))}`);
    if (arc) lines.push(`ARC-Authentication-Results: i=1; mx.${domain};\r\n\t${spf};\r\n\t${dkim};\r\n\tdmarc=pass (p=reject) header.from=${domain}`);
    lines.push(`Authentication-Results: ${border};\r\n\t${spf};\r\n\t${dkim};\r\n\tdmarc=pass (p=reject sp=reject) header.from=${domain};\r\n\tarc=pass (i=1) smtp.remote-ip=${ip}`);
    lines.push(`DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=selector${i % 3};\r\n\tt=${1796000000 + i}; h=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh=${base64(43)}=;\r\n\tb=${fold(base64(344))}`);
    lines.push(`From: "${pick(WORDS)} ${pick(WORDS)}" <news@${domain}>`);
    lines.push(`To: <user${i}@${accepted[i % accepted.length]}>`);
    lines.push(`Subject: Your ${pick(WORDS)} ${pick(WORDS)} update, week ${int(1, 52)}`);
    lines.push(`Date: ${date}`);
    const before = `${lines.join('\r\n')}\r\nMessage-ID: `;
    const tail = [
      'MIME-Version: 1.0',
      `Content-Type: multipart/alternative;\r\n\tboundary="b1_${hex(32)}"`,
      `List-Unsubscribe: <https://${domain}/unsubscribe/${hex(40)}>, <mailto:unsubscribe@${domain}?subject=${hex(16)}>`,
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      `X-Mailer: ${pick(WORDS)}-mailer 4.${int(0, 9)}.${int(0, 99)}`,
    ];
    let after = `\r\n${tail.join('\r\n')}\r\n`;
    // Pad to the drawn size with the kind of trace headers gateways add.
    for (let k = 0; before.length + after.length + 40 < target; k++) {
      after += `X-Gateway-Trace-${k}: ${fold(base64(Math.min(200, target - before.length - after.length)))}\r\n`;
    }
    return { before: flat(before), after: flat(`${after}\r\n`) };
  });
  // An NDR's header block: a DSN (RFC 3464), multipart/report; report-type=delivery-status.
  const dsnParts = {
    before: `Received: from localhost by ${border} (Postfix) id ${hex(10).toUpperCase()}; Sun, 6 Dec 2026 09:00:00 +0000\r\nFrom: MAILER-DAEMON@${border}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: `,
    after: `\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${hex(24)}"\r\n${'X-Postfix-Queue-Trace: '.concat(fold(base64(1800)))}\r\n\r\n`,
  };
  const dsn = { before: flat(dsnParts.before), after: flat(dsnParts.after) };

  const senders = [];
  for (let s = 0; s < o.senders; s++) {
    const d = Math.floor(rand() * o.domains);
    const domain = domains[d];
    const spam = rand() < o.spamShare;
    const unverified = !acceptedSet.has(domain) && rand() < o.unverifiedShare;
    senders.push({
      address: `${pick(WORDS)}.${pick(WORDS)}${s}@${domain}`,
      domain: d,
      verdicts: {
        spam: { score: spam ? 9.1 : 0.5 + rand() * 3 },
        authentication: { spf: { result: unverified ? 'fail' : 'pass', domain } },
      },
    });
  }
  const verdictsBySender = new Map(senders.map((s) => [s.address, s.verdicts]));
  const ndrVerdicts = { spam: { score: 0.1 }, authentication: {} };

  // The n-th message: sender, recipients and NDR-ness drawn from a second seeded stream,
  // precomputed for a cycle of `cycle` messages; only the Message-ID differs between cycles.
  const cycle = 65_536;
  const plan = [];
  const pickPlan = prng(o.seed ^ 0x5bd1e995);
  for (let n = 0; n < cycle; n++) {
    const ndr = pickPlan() < o.ndrShare;
    const sender = senders[Math.floor(pickPlan() * senders.length)];
    const count = 1 + Math.floor(pickPlan() * 3);
    const rcptTo = [];
    for (let r = 0; r < count; r++) {
      rcptTo.push(pickPlan() < 0.3 ? `user${Math.floor(pickPlan() * 500)}@${accepted[Math.floor(pickPlan() * accepted.length)]}` : `rcpt${Math.floor(pickPlan() * 100_000)}@${domains[Math.floor(pickPlan() * o.domains)]}`);
    }
    const envelope = ndr ? { mailFrom: '', rcptTo, submitter: `bounces-${Math.floor(pickPlan() * 1_000)}` } : { mailFrom: sender.address, rcptTo };
    plan.push({ envelope, template: ndr ? dsn : templates[sender.domain], verdicts: ndr ? ndrVerdicts : sender.verdicts, idDomain: ndr ? border : domains[sender.domain] });
  }

  return {
    zone,
    accepted,
    senders,
    /** Verdicts of the in-memory providers, by envelope sender ('' for NDRs). */
    verdictsOf: (mailFrom) => verdictsBySender.get(mailFrom) ?? ndrVerdicts,
    /** The n-th message without headers (the same object every cycle). */
    envelope: (n) => plan[n % cycle].envelope,
    /** The precomputed verdicts of the n-th message, for the synchronous core. */
    verdicts: (n) => plan[n % cycle].verdicts,
    /** The n-th message with its header block and a Message-ID no other message has. */
    message(n) {
      const p = plan[n % cycle];
      // Decimal, not base 36: Number#toString(36) costs more than the rest of the message's
      // making, and that time would be counted against the realistic case.
      return { ...p.envelope, headers: `${p.template.before}<${n}.${(n * 2654435761) >>> 0}@${p.idDomain}>${p.template.after}` };
    },
    /** Size of the header blocks in bytes: min, mean, max over the templates. */
    headerSizes() {
      const sizes = templates.map((t) => t.before.length + t.after.length + 30);
      return { min: Math.min(...sizes), mean: sizes.reduce((a, b) => a + b, 0) / sizes.length, max: Math.max(...sizes) };
    },
  };
}
