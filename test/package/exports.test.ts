// The package as a user imports it: through its name and "exports" map, from the build.
import { it } from 'node:test';
import assert from 'node:assert/strict';

it('outbound-pools/srs and the root entry resolve through the exports map to the build', async () => {
  const srs = await import('outbound-pools/srs');
  const root = await import('outbound-pools');
  assert.equal(typeof srs.Srs, 'function');
  assert.equal(root.Srs, srs.Srs);
  const rewriter = new srs.Srs({ secret: 'tops3cr3t' });
  assert.equal(rewriter.forward('test@otherdomain.com', 'example.com', { now: 1577836860_000 }), 'SRS0=vmyz=2W=otherdomain.com=test@example.com');
});

it('outbound-pools/haraka loads from CommonJS, as a Haraka plugin file requires it, and as ESM', async () => {
  const { createRequire } = await import('node:module');
  const required = createRequire(import.meta.url)('outbound-pools/haraka') as { install: unknown };
  assert.equal(typeof required.install, 'function');
  const imported = await import('outbound-pools/haraka');
  assert.equal(typeof imported.createHarakaPlugin, 'function');
});

it('outbound-pools/postfix resolves through the exports map to the build', async () => {
  const postfix = await import('outbound-pools/postfix');
  assert.equal(typeof postfix.startMilterServer, 'function');
  assert.equal(typeof postfix.startSocketmapServer, 'function');
  assert.equal(postfix.POOL_HEADER, 'X-Outbound-Pool-Route');
});
