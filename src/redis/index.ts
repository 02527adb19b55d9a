/**
 * `outbound-pools/redis`: the sending-limit and restriction store on Redis (or Redis Cluster),
 * shared by every MTA node. ioredis is an optional peer dependency: only this entry needs it.
 *
 * @packageDocumentation
 */
export { createRedisRateLimiter, type RedisClient, type RedisRateLimiter, type RedisRateLimiterOptions } from './limiter.js';
