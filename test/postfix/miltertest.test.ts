// The milter against Debian's miltertest (package miltertest, from OpenDKIM): an MTA side written
// by others, on libmilter's definitions, driven by test/postfix/miltertest.lua.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDecider } from '../../src/decide/gather.js';
import { createPolicy } from '../../src/policy.js';
import { createStaticResolver, type StaticZone } from '../../src/providers/static-dns.js';
import { startMilterServer } from '../../src/postfix/milter/server.js';
import { createPoolMilter } from '../../src/postfix/pool-milter.js';
import { findExecutable } from '../servers/processes.js';

const HERE = new URL('.', import.meta.url).pathname;
const ZONE = JSON.parse(readFileSync(join(HERE, '..', '..', 'examples', 'zone.json'), 'utf8')) as StaticZone;

it('passes the miltertest script: negotiation, headers added and deleted, high-risk by spam score, a block with the decision’s reply', async () => {
  const miltertest = findExecutable('miltertest');
  assert.ok(miltertest !== null, 'miltertest is not installed: run `bash scripts/install-postfix.sh` (Debian package miltertest).');
  const decide = createDecider({
    policy: createPolicy({ acceptedDomains: ['contoso.com'], spam: { threshold: 6 }, limits: [{ name: 'test', recipientsPerMessage: 2, action: 'block' }] }),
    providers: { dns: createStaticResolver(ZONE) },
  });
  const lines: string[] = [];
  const server = await startMilterServer(
    { kind: 'inet', host: '127.0.0.1', port: 0 },
    { handler: createPoolMilter({ decide, spamScoreHeader: 'X-Spam-Score', log: (line) => lines.push(line) }) },
  );
  try {
    const port = server.address.split(':').pop()!;
    // Not spawnSync: the milter answering runs in this process.
    const result = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(miltertest, ['-s', join(HERE, 'miltertest.lua')], { env: { ...process.env, MILTER: `inet:${port}@127.0.0.1` }, timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, out: stdout + stderr });
      });
    });
    assert.equal(result.code, 0, result.out);
    assert.match(result.out, /^1: OutboundIpPoolName=\S+; action=deliver; pool=normal; reasons=accepted-domain$/m);
    assert.match(result.out, /^2: OutboundIpPoolName=\S+; action=deliver; pool=high-risk; reasons=spam$/m);
    assert.match(result.out, /^3: blocked$/m);
    assert.deepEqual(
      lines.map((line) => line.split(':')[0]),
      ['MT0001', 'MT0002', 'MT0003'],
    );
  } finally {
    await server.close();
  }
});
