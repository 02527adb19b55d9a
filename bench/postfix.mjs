// Messages per second through one real Postfix (Debian's, scripts/install-postfix.sh), submitted
// on a listener with `outbound-pools milter` in smtpd_milters against a listener of the same
// Postfix without it, in the same run, the listeners taking turns (target: with ≥ 0.9× without).
// A third listener has a milter that decides nothing (bench/lib/null-milter.mjs): what the milter
// protocol itself costs in Postfix, apart from the decision.
// Two figures per round: submission (the SMTP transactions of all messages accepted: where
// the milter sits) and end to end (until the loopback sink has received every message). And the
// CPU time per message of each listener's run: Postfix's processes (master and every daemon),
// the milter process, and this process (the SMTP client and the sink), from /proc.
// The milter runs as its own process, as in production (static DNS zone, the score from a
// header: no rspamd, no Redis). Needs root (Postfix's master) and a build (npm run build).
// Usage: node bench/postfix.mjs [--quick] [--tcp] [--rounds N] [--messages N] [--connections N]
//   (normally via bench/run.mjs). Defaults: 5 rounds of 600 messages over 8 connections.
import { spawnSync } from 'node:child_process';

// The Postfix and sink helpers of the tests are TypeScript: run under tsx.
if (!process.env.OUTBOUND_POOLS_BENCH_TSX) {
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, OUTBOUND_POOLS_BENCH_TSX: '1' },
  });
  process.exit(status ?? 1);
}

const { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');
const { default: nodemailer } = await import('nodemailer');
const { findExecutable, freeTcpPort, spawnWatched } = await import('../test/servers/processes.ts');
const { startPostfix } = await import('../test/servers/postfix.ts');
const { startSmtpSink } = await import('../test/servers/smtp-sink.ts');

const quick = process.argv.includes('--quick');
const option = (name, fallback) => {
  const at = process.argv.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} needs a positive integer`);
  return value;
};
const MESSAGES = option('--messages', quick ? 150 : 600);
const ROUNDS = option('--rounds', quick ? 2 : 5);
const CONNECTIONS = option('--connections', 8);
const ROOT = new URL('../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

if (findExecutable('postfix') === null || process.getuid?.() !== 0 || !existsSync(CLI)) {
  console.log('not measured: needs Postfix (bash scripts/install-postfix.sh), root (Postfix’s master), and a build (npm run build)');
  process.exit(0);
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const range = (values, digits = 0) => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;

// CPU time from /proc, in ms: utime + stime (fields 14 and 15), plus cutime + cstime (16, 17:
// children that exited and were waited for, e.g. Postfix daemons that reached max_use).
const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux
function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): field n is fields[n - 3].
    return { name: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), ppid: Number(fields[1]), own: (Number(fields[11]) + Number(fields[12])) * TICK_MS, children: (Number(fields[13]) + Number(fields[14])) * TICK_MS };
  } catch {
    return undefined;
  }
}
/** CPU ms of a process and all its descendants, live or waited for; `byName` gets it per command name. */
function treeCpu(root, byName) {
  const parents = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = stat(entry);
    if (info !== undefined) parents.set(Number(entry), info);
  }
  let total = 0;
  const inTree = (pid) => {
    for (let at = pid, depth = 0; at > 1 && depth < 10; at = parents.get(at)?.ppid ?? 0, depth++) if (at === root) return true;
    return false;
  };
  for (const [pid, info] of parents) {
    if (!inTree(pid)) continue;
    total += info.own + info.children;
    byName?.set(info.name, (byName.get(info.name) ?? 0) + info.own + info.children);
  }
  return total;
}

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

  const masterPid = Number(readFileSync(join(postfix.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
  const newSide = (name, port, daemon) => ({ name, port, daemon, submitted: [], delivered: [], cpu: { postfix: [], milter: [], bench: [] }, ratio: { submitted: [], delivered: [] }, byName: new Map() });
  // --detail: Postfix's CPU per message by daemon (smtpd, cleanup, qmgr, smtp …), the mean over the rounds;
  // a daemon that exits (max_use) moves its time to master's, which can leave another name negative.
  const detail = process.argv.includes('--detail');
  const sides = [
    newSide('without a milter', postfix.mxPort, null),
    newSide('null milter', postfix.secondPort, nullMilter),
    newSide('outbound-pools milter', postfix.submissionPort, milter),
  ];
  // Warm up every path (Postfix spawns its smtpd and smtp processes, the milters' JIT).
  for (const side of sides) await run(side.port, `warm-${side.port}`);
  let pooled = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts with another listener, so none is always first (or last) after a pause.
    const order = sides.map((_, index) => sides[(index + round) % sides.length]);
    for (const side of order) {
      const namesBefore = new Map();
      const before = { postfix: treeCpu(masterPid, detail ? namesBefore : undefined), milter: side.daemon === null ? 0 : treeCpu(side.daemon.child.pid), bench: process.cpuUsage() };
      const result = await run(side.port, `${side.port}-${round}`);
      const bench = process.cpuUsage(before.bench);
      const namesAfter = new Map();
      side.cpu.postfix.push((treeCpu(masterPid, detail ? namesAfter : undefined) - before.postfix) / MESSAGES);
      for (const [name, ms] of namesAfter) side.byName.set(name, (side.byName.get(name) ?? 0) + (ms - (namesBefore.get(name) ?? 0)) / MESSAGES / ROUNDS);
      side.cpu.milter.push(side.daemon === null ? 0 : (treeCpu(side.daemon.child.pid) - before.milter) / MESSAGES);
      side.cpu.bench.push((bench.user + bench.system) / 1000 / MESSAGES);
      side.submitted.push((MESSAGES / result.submitted) * 1000);
      side.delivered.push((MESSAGES / result.delivered) * 1000);
      if (side.port === postfix.submissionPort) pooled += result.deliveries.filter((delivery) => delivery.clientAddress === POOLS.normal.bind).length;
    }
    // Per-round ratios against the run without a milter of the same round.
    for (const side of sides) for (const key of ['submitted', 'delivered']) side.ratio[key].push(side[key][round] / sides[0][key][round]);
  }
  const os = await import('node:os');
  console.log(
    `${ROUNDS} rounds of ${MESSAGES} messages over ${CONNECTIONS} SMTP connections per listener, milters on ${tcp ? 'loopback TCP' : 'Unix sockets'}, listeners taking turns;` +
      ` load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs; median (range) messages/s, and median of the per-round ratios to "without":`,
  );
  const [plain, , ours] = sides;
  for (const [name, key] of [['submission (SMTP accepted)', 'submitted'], ['end to end (received by the sink)', 'delivered']]) {
    console.log(`  ${name}:`);
    for (const side of sides) {
      const ratio = side === plain ? '' : `  ${median(side.ratio[key]).toFixed(2)}× (${range(side.ratio[key], 2)})`;
      const verdict = side === ours ? (median(side.ratio[key]) >= 0.9 ? '  target ≥ 0.9×: met' : '  target ≥ 0.9×: MISSED') : '';
      console.log(`    ${side.name.padEnd(22)} ${fmt(median(side[key])).padStart(5)} (${range(side[key])})${ratio}${verdict}`);
    }
  }
  console.log('  CPU time per message, median ms (Postfix’s processes + the milter process + client and sink):');
  for (const side of sides) {
    const total = side.cpu.postfix.map((value, index) => value + side.cpu.milter[index] + side.cpu.bench[index]);
    console.log(
      `    ${side.name.padEnd(22)} Postfix ${median(side.cpu.postfix).toFixed(2)} + milter ${median(side.cpu.milter).toFixed(2)} + client/sink ${median(side.cpu.bench).toFixed(2)} = ${median(total).toFixed(2)}` +
        (side === plain ? '' : ` (${(median(total) / median(sides[0].cpu.postfix.map((value, index) => value + sides[0].cpu.bench[index]))).toFixed(2)}× the CPU)`),
    );
  }
  if (detail) {
    for (const side of sides) {
      const parts = [...side.byName].filter(([, ms]) => Math.abs(ms) >= 0.01).sort((a, b) => b[1] - a[1]);
      console.log(`    ${side.name.padEnd(22)} Postfix by daemon, mean ms: ${parts.map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ')}`);
    }
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
