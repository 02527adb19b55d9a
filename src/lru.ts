// lru-cache, loaded when the first cache is made rather than by every import of the package
// (its ESM build costs several milliseconds to load; the resolvers and limiters that use it are
// made once, at start-up). require() of its CommonJS build, the same class.

import { createRequire } from 'node:module';
import type { LRUCache as LRUCacheClass } from 'lru-cache';


let loaded: typeof LRUCacheClass | undefined;

/** The `LRUCache` class of lru-cache. */
export function lruCacheClass(): typeof LRUCacheClass {
  loaded ??= (createRequire(import.meta.url)('lru-cache') as { LRUCache: typeof LRUCacheClass }).LRUCache;
  return loaded;
}
