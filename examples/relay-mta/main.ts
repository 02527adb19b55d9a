// Runs the relay MTA against a loopback sink and sends it the bundled example messages
// (examples/messages), printing which source address, and so which pool, each one left from.
//
//   npx tsx examples/relay-mta/main.ts
//
// Needs 127.0.0.10, .20 and .30 on the loopback interface (Linux routes all of 127/8 there).

import { readFileSync, readdirSync } from 'node:fs';
import { createTransport } from 'nodemailer';
import { authenticationFromHeaders, createStaticResolver, Srs, type PolicyInput, type StaticZone } from '../../src/index.js';
import { startRelayMta } from './relay-mta.js';
import { startSmtpSink } from '../../test/servers/smtp-sink.js';

const EXAMPLES = new URL('../', import.meta.url);
const readJson = (path: string): unknown => JSON.parse(readFileSync(new URL(path, EXAMPLES), 'utf8'));

const sink = await startSmtpSink();
const mta = await startRelayMta({
  policy: readJson('policy.json') as PolicyInput,
  providers: {
    dns: createStaticResolver(readJson('zone.json') as StaticZone),
    // Stand-in for a spam filter: the GTUBE test string marks spam, as in rspamd and SpamAssassin.
    spam: {
      async classify(message) {
        return { isSpam: message.raw !== undefined && Buffer.from(message.raw).includes('GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL') };
      },
    },
    // SPF and DKIM as the gateway in front of us (mx1.contoso.com) recorded them at ingress.
    authenticator: {
      async authenticate(message) {
        return message.raw === undefined ? {} : authenticationFromHeaders(message.raw, { authservIds: ['mx1.contoso.com'] }).verdict;
      },
    },
  },
  srs: { rewriter: new Srs({ secret: 'relay-mta-demo-secret' }), domain: 'contoso.com' },
  relayHost: sink.host,
  relayPort: sink.port,
  poolAddresses: { normal: '127.0.0.10', 'high-risk': '127.0.0.20', relay: '127.0.0.30' },
});

const client = createTransport({ host: '127.0.0.1', port: mta.port, secure: false, ignoreTLS: true });
try {
  for (const file of readdirSync(new URL('messages/', EXAMPLES)).filter((name) => name.endsWith('.eml')).sort()) {
    // The .json beside each message holds its envelope (and verdicts for the offline demo, unused
    // here: the providers above find them in the message).
    const { mailFrom, rcptTo } = readJson(`messages/${file.replace(/\.eml$/, '.json')}`) as { mailFrom: string; rcptTo: string[] };
    const before = sink.deliveries.length;
    try {
      await client.sendMail({ envelope: { from: mailFrom, to: rcptTo }, raw: readFileSync(new URL(`messages/${file}`, EXAMPLES)) });
      const delivery = sink.deliveries[before]!;
      console.log(`${file}\n  relayed from ${delivery.clientAddress} as <${delivery.mailFrom}>\n  ${/^X-Outbound-Pool: (.*)$/m.exec(delivery.message)?.[1]}`);
    } catch (error) {
      console.log(`${file}\n  refused: ${(error as { response?: string }).response ?? String(error)}`);
    }
  }
} finally {
  client.close();
  await Promise.all([mta.stop(), sink.stop()]);
}
