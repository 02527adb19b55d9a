// The CommonJS entry Haraka loads (compiled to dist/haraka/index.cjs). Haraka compiles a plugin
// file in a vm context where `import()` is unavailable, and outbound-pools is ESM; so a plugin
// file requires this module, which imports the ESM code and installs hooks that wait for it.
// See docs/haraka.md.

import type * as Root from '../index.js' with { 'resolution-mode': 'import' };
import type * as Mailauth from '../mailauth/index.js' with { 'resolution-mode': 'import' };
import type * as Rspamd from '../rspamd/index.js' with { 'resolution-mode': 'import' };
import type { HarakaPlugin, HarakaPluginOptions } from './plugin.js' with { 'resolution-mode': 'import' };

/** The parts of a Haraka plugin object (`this` in `register`, `exports` in the plugin file) used. */
interface HarakaPluginObject {
  [key: string]: unknown;
  config?: { get(name: string, type?: string): unknown };
  logcrit?(message: string): void;
}

type Next = (code?: number, message?: unknown) => void;

/**
 * What a {@link Configure} function is given: the root entry together with `outbound-pools/mailauth`
 * and `outbound-pools/rspamd`. (The Redis limiter is left out so that these types need no ioredis:
 * `await import('outbound-pools/redis')` in an async `configure` when you use it.)
 */
type OutboundPools = typeof Root & typeof Mailauth & typeof Rspamd;

/** Builds the plugin's options; given the `outbound-pools` modules and the Haraka plugin object. */
type Configure = (
  outboundPools: OutboundPools,
  plugin: HarakaPluginObject,
) => HarakaPluginOptions | Promise<HarakaPluginOptions>;

/** The JSON of `config/outbound_pools.json`, read when {@link install} gets no `configure`. */
interface JsonConfig {
  readonly policy?: Root.PolicyInput;
  readonly srs?: { readonly secret: string; readonly domain: string };
  readonly pools: HarakaPluginOptions['pools'];
  readonly nextHop?: { readonly host: string; readonly port?: number };
  readonly relayingOnly?: boolean;
  readonly harakaAuthResults?: boolean;
}

const DENYSOFT = 903;

/** Options from `config/outbound_pools.json`: a policy, an SRS secret and domain, the pools. */
const fromConfigFile: Configure = (outboundPools, plugin) => {
  const config = plugin.config?.get('outbound_pools.json', 'json') as JsonConfig | null | undefined;
  if (config === null || config === undefined || typeof config !== 'object') {
    throw new Error('outbound-pools: config/outbound_pools.json is missing or not JSON');
  }
  return {
    pools: config.pools,
    ...(config.policy !== undefined ? { policy: outboundPools.createPolicy(config.policy) } : {}),
    ...(config.srs !== undefined
      ? { srs: { rewriter: new outboundPools.Srs({ secret: config.srs.secret }), domain: config.srs.domain } }
      : {}),
    ...(config.nextHop !== undefined ? { nextHop: config.nextHop } : {}),
    ...(config.relayingOnly !== undefined ? { relayingOnly: config.relayingOnly } : {}),
    ...(config.harakaAuthResults !== undefined ? { harakaAuthResults: config.harakaAuthResults } : {}),
    providers: { dns: outboundPools.createDnsResolver() },
  };
};

/**
 * Installs the outbound-pools hooks (`data_post`, `get_mx`) on a Haraka plugin. Call it from
 * the plugin file, with the file's `exports`:
 *
 * ```js
 * // plugins/outbound_pools.js
 * require('outbound-pools/haraka').install(exports);            // options from config/outbound_pools.json
 * require('outbound-pools/haraka').install(exports, (op) => ({  // or options in code
 *   policy: op.createPolicy({ acceptedDomains: ['contoso.com'] }),
 *   pools: { normal: { bind: '192.0.2.10', helo: 'out1.contoso.com' }, … },
 * }));
 * ```
 *
 * The options are built once, at `register`; until they are ready the hooks wait. When building
 * them fails, the failure is logged (`logcrit`) and every message is deferred (`DENYSOFT`).
 */
function install(target: HarakaPluginObject, configure: Configure = fromConfigFile): void {
  let ready: Promise<HarakaPlugin> | undefined;
  const start = (plugin: HarakaPluginObject): Promise<HarakaPlugin> => {
    ready ??= (async () => {
      const [root, mailauth, rspamd, { createHarakaPlugin }] = await Promise.all([
        import('../index.js'),
        import('../mailauth/index.js'),
        import('../rspamd/index.js'),
        import('./plugin.js'),
      ]);
      return createHarakaPlugin(await configure({ ...root, ...mailauth, ...rspamd }, plugin));
    })();
    ready.catch((error: unknown) => plugin.logcrit?.(`outbound-pools: cannot start: ${error instanceof Error ? error.message : String(error)}`));
    return ready;
  };
  target['register'] = function register(this: HarakaPluginObject): void {
    void start(this);
  };
  target['hook_data_post'] = function hook_data_post(this: HarakaPluginObject, next: Next, connection: never): void {
    start(this).then(
      (plugin) => plugin.hook_data_post(next, connection),
      () => next(DENYSOFT, 'Outbound pool decision unavailable'),
    );
  };
  target['hook_get_mx'] = function hook_get_mx(this: HarakaPluginObject, next: Next, hmail: never, domain: string): void {
    start(this).then(
      (plugin) => plugin.hook_get_mx(next, hmail, domain),
      () => next(),
    );
  };
}

export = { install };
