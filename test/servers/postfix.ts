// A private Postfix instance for the integration tests (installed from Debian by
// scripts/install-postfix.sh): its own config_directory, queue and data directories in a
// temporary directory, loopback listeners only, the log in a file of its own (maillog_file,
// Postfix ≥ 3.4), relaying everything to a loopback sink through one smtp transport per pool.
// Run as root (as CI is): Postfix's master starts as root and its daemons drop to `postfix`.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freeTcpPort, killWatched, spawnWatched, type WatchedProcess } from './processes.js';

/** One delivery pool: its transport name in master.cf, its source address and HELO name. */
export interface PostfixPool {
  readonly transport: string;
  readonly bind: string;
  readonly helo: string;
}

export interface PostfixOptions {
  /** Where every message is relayed (the sink), as relayhost `[127.0.0.1]:port`. */
  readonly relayPort: number;
  /** The pools by the value of the pool header. */
  readonly pools: Readonly<Record<string, PostfixPool>>;
  /** The header the milter names the pool in. */
  readonly poolHeader: string;
  /** The milter on the submission listener (`inet:127.0.0.1:port`); none: no milter. */
  readonly milter?: string;
  /** What Postfix does when the milter cannot be reached (default tempfail). */
  readonly milterDefaultAction?: 'accept' | 'tempfail' | 'reject';
  /** The SRS socketmap for recipient_canonical_maps (`inet:127.0.0.1:port`). */
  readonly socketmap?: string;
  /** The pool transport for the null sender (Postfix's own bounces skip milters). */
  readonly nullSenderTransport?: string;
  /**
   * The next hop of the FILTER actions (`[127.0.0.1]:port`): a FILTER with an empty destination
   * keeps the recipient domain as next hop (header_checks(5)), not the relayhost.
   */
  readonly filterNexthop?: string;
  /** A second submission listener with another milter (the bench compares milters). */
  readonly secondMilter?: string;
}

export interface PostfixInstance {
  /** The submission listener: smtpd with the milter. */
  readonly submissionPort: number;
  /** The MX listener: smtpd without the milter (where bounces from the world arrive). */
  readonly mxPort: number;
  /** The listener with `secondMilter`, when given. */
  readonly secondPort: number | null;
  readonly dir: string;
  /** The mail log so far. */
  log(): string;
  stop(): Promise<void>;
}

const SERVICES = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/** The Postfix binaries, or an error saying how to install them. */
export function postfixBinary(): string {
  const postfix = findExecutable('postfix');
  if (postfix === null) throw new Error('postfix is not installed: run `bash scripts/install-postfix.sh` (Debian package postfix).');
  if (process.getuid?.() !== 0) throw new Error('the Postfix tests start a private Postfix, whose master must run as root: run them as root (as CI does).');
  return postfix;
}

function waitForSmtp(port: number, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const attempt = (): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.setTimeout(2000, () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('data', (data: Buffer) => {
        socket.end('QUIT\r\n');
        resolve(data.toString('latin1').startsWith('220'));
      });
      socket.once('error', () => resolve(false));
    });
  return (async () => {
    while (Date.now() < deadline) {
      if (await attempt()) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`Postfix did not greet on 127.0.0.1:${port} within ${timeoutMs} ms; its log:\n${log().slice(-4000)}`);
  })();
}

/** Starts a private Postfix in the foreground (`postfix start-fg`), watched. */
export async function startPostfix(options: PostfixOptions): Promise<PostfixInstance> {
  const postfix = postfixBinary();
  const dir = mkdtempSync(join(tmpdir(), 'outbound-pools-postfix-'));
  // Postfix's daemons run as the postfix user: they must reach the directories.
  chmodSync(dir, 0o755);
  const conf = join(dir, 'conf');
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  for (const path of [conf, queue, data]) mkdirSync(path);
  const { uid, gid } = postfixUser();
  chownSync(data, uid, gid);
  const maillog = join(dir, 'maillog');
  const log = () => (existsSync(maillog) ? readFileSync(maillog, 'utf8') : '');
  const submissionPort = await freeTcpPort();
  const mxPort = await freeTcpPort();
  const secondPort = options.secondMilter === undefined ? null : await freeTcpPort();
  const pools = Object.entries(options.pools);

  writeFileSync(
    join(conf, 'milter_header_checks'),
    pools.map(([name, pool]) => `/^${options.poolHeader}:\\s*${name}\\s*$/ FILTER ${pool.transport}:${options.filterNexthop ?? ''}\n`).join(''),
  );
  writeFileSync(join(conf, 'smtp_header_checks'), `/^${options.poolHeader}:/ IGNORE\n`);
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${queue}`,
    `data_directory = ${data}`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'myhostname = mta.contoso.test',
    'mydomain = contoso.test',
    'myorigin = $mydomain',
    'mydestination =',
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    'mynetworks = 127.0.0.0/8',
    `relayhost = [127.0.0.1]:${options.relayPort}`,
    `maillog_file = ${maillog}`,
    `maillog_file_prefixes = ${dir}`,
    'smtpd_banner = $myhostname ESMTP',
    'smtp_tls_security_level = none',
    'smtpd_tls_security_level = none',
    'biff = no',
    'delay_warning_time = 0',
    // Retry deferred mail quickly: a test waits seconds, not minutes.
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    'in_flow_delay = 0',
    `milter_default_action = ${options.milterDefaultAction ?? 'tempfail'}`,
    'milter_protocol = 6',
    `milter_header_checks = regexp:${join(conf, 'milter_header_checks')}`,
    `smtp_header_checks = regexp:${join(conf, 'smtp_header_checks')}`,
    ...(options.nullSenderTransport === undefined ? [] : [`sender_dependent_default_transport_maps = inline:{ {<> = ${options.nullSenderTransport}:} }`]),
    ...(options.socketmap === undefined ? [] : [`recipient_canonical_maps = socketmap:${options.socketmap}:reverse`]),
  ];
  writeFileSync(join(conf, 'main.cf'), `${main.join('\n')}\n`);
  const master = [
    `127.0.0.1:${submissionPort} inet n - n - - smtpd -o syslog_name=postfix/submission${options.milter === undefined ? '' : ` -o smtpd_milters=${options.milter}`}`,
    `127.0.0.1:${mxPort} inet n - n - - smtpd -o syslog_name=postfix/mx`,
    ...(secondPort === null ? [] : [`127.0.0.1:${secondPort} inet n - n - - smtpd -o syslog_name=postfix/second -o smtpd_milters=${options.secondMilter}`]),
    ...pools.map(([, pool]) => `${pool.transport} unix - - n - - smtp -o smtp_bind_address=${pool.bind} -o smtp_helo_name=${pool.helo} -o syslog_name=postfix/${pool.transport}`),
  ];
  writeFileSync(join(conf, 'master.cf'), `${master.join('\n')}\n${SERVICES}`);

  // start-fg runs postfix-script's checks (and creates the queue's subdirectories) itself.
  const daemon: WatchedProcess = spawnWatched(postfix, ['-c', conf, 'start-fg'], { detached: true });
  const stop = async (): Promise<void> => {
    if (daemon.exited() === null) {
      spawnSync(postfix, ['-c', conf, 'stop'], { encoding: 'utf8' });
      const timer = setTimeout(() => killWatched(daemon.child, 'SIGKILL'), 10_000);
      await daemon.exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForSmtp(submissionPort, 20_000, () => `${daemon.output()}\n${log()}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { submissionPort, mxPort, secondPort, dir, log, stop };
}

function postfixUser(): { uid: number; gid: number } {
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((entry) => entry.startsWith('postfix:'));
  if (line === undefined) throw new Error('there is no postfix user: run `bash scripts/install-postfix.sh`.');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}
