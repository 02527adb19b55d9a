// Messages per second through one real Postfix (Debian's, scripts/install-postfix.sh), submitted
// on a listener with `outbound-pools milter` in smtpd_milters against a listener of the same
// Postfix without it, in the same run, rounds alternating (target: with ≥ 0.9× without).
// A third listener has a milter that decides nothing (bench/lib/null-milter.mjs): what the milter
// protocol itself costs in Postfix, apart from the decision.
// Two figures per round: submission (the SMTP transactions of all messages accepted: where
// the milter sits) and end to end (until the loopback sink has received every message).
// The milter runs as its own process, as in production (static DNS zone, the score from a
// header: no rspamd, no Redis). Needs root (Postfix's master) and a build (npm run build).
// Usage: node bench/postfix.mjs [--quick] [--tcp]   (normally via bench/run.mjs)
import { spawnSync } from 'node:child_process';

// The Postfix and sink helpers of the tests are TypeScript: run under tsx.
if (!process.env.OUTBOUND_POOLS_BENCH_TSX) {
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, OUTBOUND_POOLS_BENCH_TSX: '1' },
  });
  process.exit(status ?? 1);
}

const { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
const { default: nodemailer } = await import('nodemailer');
const { findExecutable, freeTcpPort, spawnWatched } = await import('../test/servers/processes.ts');
const { startPostfix } = await import('../test/servers/postfix.ts');
const { startSmtpSink } = await import('../test/servers/smtp-sink.ts');

const quick = process.argv.includes('--quick');
const MESSAGES = quick ? 150 : 600;
const ROUNDS = quick ? 2 : 4;
const CONNECTIONS = 8;
const ROOT = new URL('../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

if (findExecutable('postfix') === null || process.getuid?.() !== 0 || !existsSync(CLI)) {
  console.log('not measured: needs Postfix (bash scripts/install-postfix.sh), root (Postfix’s master), and a build (npm run build)');
  process.exit(0);
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-bench-postfix-'));
writeFileSync(join(dir, 'policy.json'), JSON.stringify({ acceptedDomains: ['contoso.com'], spam: { threshold: 6 } }));
const sink = await startSmtpSink();
// Unix sockets, as a milter on the same host is usually run (`--tcp` for loopback TCP instead).
const tcp = process.argv.includes('--tcp');
const milterAddress = tcp ? `inet:127.0.0.1:${await freeTcpPort()}` : `unix:${join(dir, 'milter.sock')}`;
const nullAddress = tcp ? `inet:127.0.0.1:${await freeTcpPort()}` : `unix:${join(dir, 'null-milter.sock')}`;
const milter = spawnWatched(process.execPath, [
  CLI,
  'milter',
  '--listen',
  milterAddress,
  '--policy',
  join(dir, 'policy.json'),
  '--zone',
  join(ROOT, 'examples', 'zone.json'),
  '--spam-score-header',
  'X-Spam-Score',
]);
const nullMilter = spawnWatched(process.execPath, [join(ROOT, 'bench', 'lib', 'null-milter.mjs'), nullAddress]);
const POOLS = {
  normal: { transport: 'pool_normal', bind: '127.0.0.10', helo: 'out.contoso.test' },
  'high-risk': { transport: 'pool_high_risk', bind: '127.0.0.20', helo: 'hr.contoso.test' },
  relay: { transport: 'pool_relay', bind: '127.0.0.30', helo: 'rly.contoso.test' },
};
let postfix;
try {
  for (const [daemon, what] of [
    [milter, 'milter'],
    [nullMilter, 'null milter'],
  ]) {
    while (!new RegExp(`${what}: listening on`).test(daemon.output())) {
      if (daemon.exited() !== null) throw new Error(`the ${what} did not start: ${daemon.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  // Postfix's smtpd runs as the postfix user: it must reach the sockets in this (root's) temp dir.
  if (!tcp) {
    chmodSync(dir, 0o755);
    for (const address of [milterAddress, nullAddress]) chmodSync(address.slice('unix:'.length), 0o666);
  }
  postfix = await startPostfix({
    relayPort: sink.port,
    pools: POOLS,
    poolHeader: 'X-Outbound-Pool-Route',
    milter: milterAddress,
    secondMilter: nullAddress,
    filterNexthop: `[127.0.0.1]:${sink.port}`,
  });

  /** Submits MESSAGES messages over CONNECTIONS pooled connections; resolves the two durations. */
  const run = async (port, label) => {
    const transport = nodemailer.createTransport({ pool: true, maxConnections: CONNECTIONS, maxMessages: Infinity, host: '127.0.0.1', port, secure: false, ignoreTLS: true });
    const before = sink.deliveries.length;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: MESSAGES }, (_, index) =>
        transport.sendMail({
          envelope: { from: 'megan@contoso.com', to: ['lee@fabrikam.example'] },
          raw: `X-Spam-Score: 0.5\r\nFrom: megan@contoso.com\r\nTo: lee@fabrikam.example\r\nSubject: bench ${label} ${index}\r\nMessage-ID: <${label}-${index}@bench.contoso.com>\r\n\r\nHello.\r\n`,
        }),
      ),
    );
    const submitted = performance.now() - started;
    transport.close();
    await sink.waitFor(before + MESSAGES, 120_000);
    return { submitted, delivered: performance.now() - started, deliveries: sink.deliveries.slice(before) };
  };

  const sides = [
    { name: 'without a milter', port: postfix.mxPort, submitted: [], delivered: [] },
    { name: 'with a null milter', port: postfix.secondPort, submitted: [], delivered: [] },
    { name: 'with outbound-pools milter', port: postfix.submissionPort, submitted: [], delivered: [] },
  ];
  // Warm up every path (Postfix spawns its smtpd and smtp processes, the milters' JIT).
  for (const side of sides) await run(side.port, `warm-${side.port}`);
  let pooled = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of sides) {
      const result = await run(side.port, `${side.port}-${round}`);
      side.submitted.push((MESSAGES / result.submitted) * 1000);
      side.delivered.push((MESSAGES / result.delivered) * 1000);
      if (side.port === postfix.submissionPort) pooled += result.deliveries.filter((delivery) => delivery.clientAddress === POOLS.normal.bind).length;
    }
  }
  const load = (await import('node:os')).loadavg()[0];
  console.log(`${ROUNDS} rounds of ${MESSAGES} messages over ${CONNECTIONS} SMTP connections per listener, listeners alternating; load average ${load.toFixed(1)} on ${(await import('node:os')).cpus().length} CPUs; median messages/s:`);
  const [plain, nullSide, ours] = sides;
  for (const [name, key] of [['submission (SMTP accepted)', 'submitted'], ['end to end (received by the sink)', 'delivered']]) {
    const base = median(plain[key]);
    const ratio = median(ours[key]) / base;
    console.log(
      `  ${name.padEnd(34)} without ${fmt(base).padStart(5)} | null milter ${fmt(median(nullSide[key])).padStart(5)} (${(median(nullSide[key]) / base).toFixed(2)}×)` +
        ` | outbound-pools ${fmt(median(ours[key])).padStart(5)} (${ratio.toFixed(2)}×, ${(median(ours[key]) / median(nullSide[key])).toFixed(2)}× the null milter)${ratio >= 0.9 ? '' : '  target ≥ 0.9×: MISSED'}`,
    );
  }
  console.log(`  messages through outbound-pools delivered from the normal pool's address: ${pooled} of ${MESSAGES * ROUNDS}`);
} finally {
  for (const daemon of [milter, nullMilter]) {
    daemon.child.kill('SIGTERM');
    await daemon.exit;
  }
  await postfix?.stop();
  await sink.stop();
  rmSync(dir, { recursive: true, force: true });
}
