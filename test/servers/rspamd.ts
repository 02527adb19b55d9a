// A real rspamd (Debian package `rspamd`, /usr/bin/rspamd) for the provider tests: one normal
// worker (and optionally a controller) on free loopback ports, with a configuration of its own in
// a temporary directory, so that neither the machine's /etc/rspamd/local.d nor a running system
// rspamd (ports 11332–11334) is touched.
//
// The configuration reuses the packaged rules and modules ($CONFDIR/common.conf, options.inc,
// worker-normal.inc) but not the packaged top-level rspamd.conf: that one also binds a proxy and
// a controller on fixed ports (localhost:11332, :11334), which would collide with a system
// rspamd or a second test run. Everything else is overridden through LOCAL_CONFDIR = the
// temporary directory:
// - DNS goes to a closed loopback port: no query leaves the machine, and lookups fail at once.
// - Modules that only add DNS failures to the score (rbl, asn, spf, dmarc, hfilter) are off, and
//   fuzzy_check (UDP to rspamd.com) is not loaded: the scores below are deterministic.
// - The public-suffix list is a handful of test TLDs: compiling the real one (~9,600 suffixes)
//   takes about 15 s on every start, since the compiled cache lives in the temporary DBDIR.
// - No Redis: ratelimit, greylist, bayes, neural and the like disable themselves (and log so).
// - rspamd.local.lua adds test rules that force outcomes (see TEST_RULES).

import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freeTcpPort, killWatched, spawnWatched } from './processes.js';

const LOOPBACK = '127.0.0.1';
const PACKAGED_CONFDIR = '/etc/rspamd';

/** The rspamd binary on PATH (or /usr/bin, /usr/sbin), or null. */
export function findRspamd(): string | null {
  return findExecutable('rspamd');
}

/** Why rspamd cannot run, naming the Debian package, or null when it can. */
export function rspamdMissing(): Error | null {
  if (findRspamd() === null) return new Error('rspamd not found: apt-get install rspamd (or run scripts/install-servers.sh)');
  if (!existsSync(join(PACKAGED_CONFDIR, 'common.conf'))) {
    return new Error(`rspamd's packaged configuration is missing (${PACKAGED_CONFDIR}/common.conf): apt-get install --reinstall rspamd`);
  }
  return null;
}

/**
 * The test rules, in rspamd.local.lua:
 * - `TEST_SPAMMY` (score 20): the message has an `X-Test-Spam` header. 20 is over the packaged
 *   `reject` threshold (15), so the action is `reject`.
 * - `TEST_SCORE` (score 1 × the header's value): `X-Test-Score: 8` adds 8 — `add header` (≥ 6),
 *   `X-Test-Score: 5` — `greylist` (≥ 4; there is no Redis, so nothing is actually greylisted).
 * - `TEST_RATELIMIT` (a prefilter): `X-Test-Ratelimit` makes it set the pre-result
 *   `soft reject` with the message the ratelimit module uses, `Ratelimit "user" exceeded`, as
 *   rspamd's ratelimit module does when a bucket is full. A pre-result ends the scan.
 * - `TEST_PHISH` (score 7): `X-Test-Phish`, for mapping a symbol to a category.
 * - `TEST_ENVELOPE` (score 0, always): its options echo what rspamd received besides the
 *   message — `from=`, one `rcpt=` per recipient, `ip=`, `helo=`, `user=`, `qid=` — for tests
 *   that check the request.
 */
export const TEST_RULES = String.raw`
rspamd_config.TEST_SPAMMY = {
  callback = function(task) return task:get_header('X-Test-Spam') ~= nil end,
  score = 20.0,
  description = 'test: forced spam',
}

rspamd_config.TEST_SCORE = {
  callback = function(task)
    local value = tonumber(task:get_header('X-Test-Score') or '')
    if value then return true, value end
    return false
  end,
  score = 1.0,
  description = 'test: the score of X-Test-Score',
}

rspamd_config.TEST_PHISH = {
  callback = function(task) return task:get_header('X-Test-Phish') ~= nil end,
  score = 7.0,
  description = 'test: forced phishing symbol',
}

rspamd_config:register_symbol({
  name = 'TEST_RATELIMIT',
  type = 'prefilter',
  priority = 10,
  callback = function(task)
    if task:get_header('X-Test-Ratelimit') then
      task:set_pre_result('soft reject', 'Ratelimit "user" exceeded', 'ratelimit')
    end
  end,
})

rspamd_config:register_symbol({
  name = 'TEST_ENVELOPE',
  score = 0.0,
  description = 'test: echoes the envelope rspamd received',
  callback = function(task)
    local opts = {}
    local from = task:get_from('smtp')
    if from and from[1] then table.insert(opts, 'from=' .. (from[1].addr or '')) end
    for _, rcpt in ipairs(task:get_recipients('smtp') or {}) do
      table.insert(opts, 'rcpt=' .. (rcpt.addr or ''))
    end
    local ip = task:get_ip()
    if ip and ip:is_valid() then table.insert(opts, 'ip=' .. ip:to_string()) end
    local helo = task:get_helo()
    if helo then table.insert(opts, 'helo=' .. helo) end
    local user = task:get_user()
    if user then table.insert(opts, 'user=' .. user) end
    local qid = task:get_queue_id()
    if qid then table.insert(opts, 'qid=' .. qid) end
    return true, 1.0, opts
  end,
})
`;

/**
 * Settings a request can select with `Settings-ID` (local.d/settings.conf): `strict` lowers the
 * action thresholds — `add header` from 1, `reject` from 50 — so `X-Test-Score: 2` is spam there
 * and not without it.
 */
export const TEST_SETTINGS = `strict {
  id = "strict";
  apply {
    actions {
      reject = 50.0;
      "add header" = 1.0;
    }
  }
}`;

/** A running rspamd. */
export interface RspamdServer {
  /** The normal worker's base URL, `http://127.0.0.1:<port>`: POST /checkv2 there. */
  readonly url: string;
  readonly port: number;
  /** The controller's base URL when started with `controller: true`. */
  readonly controllerUrl: string | undefined;
  /** The temporary configuration, database and log directory. */
  readonly dir: string;
  /** rspamd's log so far (for a failing test's message). */
  log(): Promise<string>;
  /** Stops rspamd (its whole process group) and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRspamdOptions {
  /** Also start a controller worker (needed only for the web interface, learning, stats). */
  readonly controller?: boolean;
  /** More settings that `Settings-ID` can select, as UCL, besides {@link TEST_SETTINGS}. */
  readonly settings?: string;
  /** How long to wait for /ping to answer. Default 30 s. */
  readonly startTimeoutMs?: number;
}


/** A UDP port nothing listens on (it was free a moment ago): DNS sent there fails at once. */
async function closedUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, LOOPBACK, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}


function topLevelConfig(port: number, controllerPort: number | null): string {
  return `# outbound-pools test rspamd: packaged rules, this directory's overrides, loopback workers only.
.include "$CONFDIR/common.conf"

options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
  .include(try=true; priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}

logging {
  type = "file";
  filename = "$LOGDIR/rspamd.log";
  .include "$CONFDIR/logging.inc"
}

worker "normal" {
  bind_socket = "${LOOPBACK}:${port}";
  count = 1;
  .include "$CONFDIR/worker-normal.inc"
}
${
  controllerPort === null
    ? ''
    : `
worker "controller" {
  bind_socket = "${LOOPBACK}:${controllerPort}";
  count = 1;
  secure_ip = "${LOOPBACK}";
  static_dir = "\${WWWDIR}";
}
`
}`;
}

async function writeConfig(dir: string, port: number, controllerPort: number | null, dnsPort: number, settings: string | undefined): Promise<string> {
  await mkdir(join(dir, 'local.d'));
  await mkdir(join(dir, 'override.d'));
  for (const sub of ['db', 'run', 'log']) await mkdir(join(dir, sub));
  const files: Record<string, string> = {
    'rspamd.conf': topLevelConfig(port, controllerPort),
    'local.d/options.inc': [
      `dns { nameserver = ["${LOOPBACK}:${dnsPort}"]; timeout = 0.2s; retransmits = 1; }`,
      `url_tld = "${join(dir, 'tld.dat')}";`,
      '',
    ].join('\n'),
    // Without fuzzy_check: it resolves rspamd.com's fuzzy servers with the system resolver.
    'override.d/options.inc': 'filters = "chartable,dkim,regexp";\n',
    'tld.dat': ['com', 'net', 'org', 'example', 'test', 'invalid', 'localhost', ''].join('\n'),
    'rspamd.local.lua': TEST_RULES,
  };
  for (const module of ['rbl', 'asn', 'spf', 'dmarc', 'hfilter']) files[`local.d/${module}.conf`] = 'enabled = false;\n';
  files['local.d/settings.conf'] = `${TEST_SETTINGS}\n${settings ?? ''}\n`;
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return join(dir, 'rspamd.conf');
}

async function pong(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
    return response.ok && (await response.text()).trim() === 'pong';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts rspamd in the foreground (`-f`) with a temporary configuration (see the top of this
 * file) and resolves once its normal worker answers /ping. Rejects — with the end of its log —
 * when rspamd is missing, exits, or does not answer within `startTimeoutMs`.
 */
export async function startRspamd(options: StartRspamdOptions = {}): Promise<RspamdServer> {
  const missing = rspamdMissing();
  if (missing !== null) throw missing;
  const binary = findRspamd()!;
  const dir = await mkdtemp(join(tmpdir(), 'outbound-pools-rspamd-'));
  const [port, controllerPort, dnsPort] = await Promise.all([freeTcpPort(), options.controller === true ? freeTcpPort() : null, closedUdpPort()]);
  const config = await writeConfig(dir, port, controllerPort, dnsPort, options.settings);
  const args = [
    '-f',
    '-c',
    config,
    `--var=CONFDIR=${PACKAGED_CONFDIR}`,
    `--var=LOCAL_CONFDIR=${dir}`,
    `--var=DBDIR=${join(dir, 'db')}`,
    `--var=RUNDIR=${join(dir, 'run')}`,
    `--var=LOGDIR=${join(dir, 'log')}`,
  ];
  // As root, rspamd would switch its workers to the _rspamd user, which cannot write the
  // temporary directory: keep them root.
  if (process.getuid?.() === 0) args.push('-u', 'root', '-g', 'root');

  // Detached: rspamd's workers join its process group, and the whole group is stopped together.
  const watched = spawnWatched(binary, args, { cwd: dir, detached: true });
  const { child, exit } = watched;

  const logFile = join(dir, 'log', 'rspamd.log');
  const log = async () => {
    try {
      return await readFile(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (watched.exited() === null) {
      killWatched(child, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = await Promise.race([exit.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 2_000, false)))]);
      clearTimeout(timer);
      if (!killed) {
        killWatched(child, 'SIGKILL');
        await exit;
      }
    }
    // The workers are in the main process's group: none may outlive it and keep writing here.
    killWatched(child, 'SIGKILL');
    child.stdout!.destroy();
    child.stderr!.destroy();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  const url = `http://${LOOPBACK}:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (watched.exited() !== null) {
      const text = (await log()).slice(-4_000);
      await stop();
      throw new Error(`rspamd exited during startup (${watched.exited()}):\n${watched.output()}\n${text}`);
    }
    if (await pong(url)) break;
    if (Date.now() > deadline) {
      const text = (await log()).slice(-4_000);
      await stop();
      throw new Error(`rspamd did not answer ${url}/ping within ${options.startTimeoutMs ?? 30_000} ms:\n${watched.output()}\n${text}`);
    }
    await sleep(100);
  }
  return { url, port, controllerUrl: controllerPort === null ? undefined : `http://${LOOPBACK}:${controllerPort}`, dir, log, stop };
}
