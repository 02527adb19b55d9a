/**
 * `outbound-pools/srs`: the Sender Rewriting Scheme, byte-compatible with Mail::SRS (Guarded),
 * postsrsd and pysrs. Standalone: it imports nothing from the rest of outbound-pools.
 *
 * @packageDocumentation
 */
export { Srs, type BouncesAddress, type SrsCallOptions } from './srs.js';
export { SrsError, MAX_ADDRESS_LENGTH, type SrsErrorCode } from './errors.js';
export { isSrs, parseSrs, type Srs0Address, type Srs1Address, type SrsAddress, type SrsSeparator } from './address.js';
export type { LongLocalPartAction, SrsOptions, SrsSettings } from './options.js';
export type { HashAlphabet, HashInput } from './hash.js';
