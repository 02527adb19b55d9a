// Measures what reading the header block costs a decision: decisions per CPU-second through a
// decider with a realistic 2–4 KB header block and with the same envelopes and no header, in
// interleaved rounds (median and range of the ratio), for this checkout ("now") and a baseline
// ("old": another checkout of src/, or this one again when none is given). Not a test and not
// the official bench (bench/ has that): a quick check of a change to src/headers.ts.
//   node --import tsx test/hostile/header-speed.ts [rounds] [baseline directory]
import { randomBytes } from 'node:crypto';
import * as now from '../../src/index.js';
import type { OutboundMessage } from '../../src/index.js';

// A baseline to compare with, in the same process: a checkout of src/ from another commit, e.g.
//   mkdir /tmp/old && git archive <commit> src | tar -x -C /tmp/old && ln -s "$PWD/node_modules" /tmp/old/
//   node --import tsx test/hostile/header-speed.ts 9 /tmp/old
const baselineDir = process.argv[3];
const old = (baselineDir === undefined ? now : await import(`${baselineDir}/src/index.ts`)) as typeof now;

const rounds = Number(process.argv[2] ?? 7);
const PER_ROUND = 20_000;

function headerBlock(i: number, domain: string): string {
  const id = randomBytes(12).toString('hex');
  const b64 = (n: number) => randomBytes(n).toString('base64');
  const hops = 4 + (i % 3);
  const received: string[] = [];
  for (let hop = 0; hop < hops; hop++) {
    received.push(
      `Received: from mx${hop}.${domain} (mx${hop}.${domain} [198.51.100.${hop + 10}])\r\n\tby relay${hop}.contoso.com (Postfix) with ESMTPS id ${id.slice(0, 10).toUpperCase()}\r\n\tfor <bob@example.net>; Mon, 4 Mar 2024 12:0${hop}:00 +0000 (UTC)`,
    );
  }
  return [
    ...received,
    `ARC-Seal: i=1; a=rsa-sha256; t=1709553600; cv=none; d=contoso.com; s=arc-2024;\r\n\tb=${b64(96)}\r\n\t${b64(96)}`,
    `ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=contoso.com; s=arc-2024;\r\n\th=from:to:subject:date:message-id; bh=${b64(32)};\r\n\tb=${b64(96)}\r\n\t${b64(96)}`,
    `ARC-Authentication-Results: i=1; mx.contoso.com; spf=pass smtp.mailfrom=${domain}; dkim=pass header.d=${domain}`,
    `Authentication-Results: mx.contoso.com; spf=pass (sender SPF authorized) smtp.mailfrom=${domain};\r\n\tdkim=pass (signature was verified) header.d=${domain}; dmarc=pass header.from=${domain}`,
    `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=sel2024;\r\n\th=from:to:subject:date:message-id:content-type; bh=${b64(32)};\r\n\tb=${b64(128)}\r\n\t${b64(128)}`,
    `From: "Sender ${i}" <user${i}@${domain}>`,
    'To: Bob <bob@example.net>',
    `Subject: Report number ${i} for the quarter`,
    'Date: Mon, 4 Mar 2024 12:00:00 +0000',
    `Message-ID: <${id}@${domain}>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="b1_5f3a"',
    '',
    '',
  ].join('\r\n');
}

const messages: OutboundMessage[] = [];
const bare: OutboundMessage[] = [];
for (let i = 0; i < 2_000; i++) {
  const domain = `domain${i % 1_000}.example`;
  const mailFrom = `user${i}@${domain}`;
  const rcptTo = ['bob@example.net'];
  messages.push({ mailFrom, rcptTo, headers: headerBlock(i, domain) });
  bare.push({ mailFrom, rcptTo });
}
const sizes = messages.map((m) => (m.headers as string).length).sort((a, b) => a - b);
const deciders = { old: old.createDecider({ policy: old.createPolicy({ acceptedDomains: ['contoso.com'] }) }), now: now.createDecider({ policy: now.createPolicy({ acceptedDomains: ['contoso.com'] }) }) };
let decide = deciders.now;

async function run(list: readonly OutboundMessage[]): Promise<number> {
  const start = process.cpuUsage();
  for (let n = 0; n < PER_ROUND; n++) await decide(list[n % list.length]!);
  const used = process.cpuUsage(start);
  return PER_ROUND / ((used.user + used.system) / 1e6);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const results: Record<string, { with: number[]; without: number[]; ratio: number[] }> = { old: { with: [], without: [], ratio: [] }, now: { with: [], without: [], ratio: [] } };
for (const which of ['old', 'now'] as const) { decide = deciders[which]; await run(messages); await run(bare); }
for (let r = 0; r < rounds; r++) {
  for (const which of (r % 2 === 0 ? ['old', 'now'] : ['now', 'old']) as ('old' | 'now')[]) {
    decide = deciders[which];
    const a = await run(messages);
    const b = await run(bare);
    results[which]!.with.push(a); results[which]!.without.push(b); results[which]!.ratio.push(a / b);
  }
}
console.log(`node ${process.version}; header blocks ${sizes[0]}–${sizes.at(-1)} bytes; ${rounds} interleaved rounds of ${PER_ROUND} decisions each, CPU time`);
for (const which of ['old', 'now'] as const) {
  const x = results[which]!;
  console.log(`${which}: with headers median ${fmt(median(x.with))}/CPU-s (${fmt(Math.min(...x.with))}–${fmt(Math.max(...x.with))}); without ${fmt(median(x.without))} (${fmt(Math.min(...x.without))}–${fmt(Math.max(...x.without))}); ratio median ${median(x.ratio).toFixed(3)} (${Math.min(...x.ratio).toFixed(3)}–${Math.max(...x.ratio).toFixed(3)})`);
}
const speedup = results.now!.with.map((v, i) => v / results.old!.with[i]!);
console.log(`with headers, now/old per round: median ${median(speedup).toFixed(2)}× (${Math.min(...speedup).toFixed(2)}–${Math.max(...speedup).toFixed(2)})`);
