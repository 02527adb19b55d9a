/**
 * outbound-pools: decide which outbound delivery pool an email leaves through, and rewrite the
 * envelope sender of verified forwards with SRS.
 *
 * The decision core (`decidePool`) is being built; today this entry point re-exports the SRS
 * module, which also stands alone as `outbound-pools/srs`.
 *
 * @packageDocumentation
 */
export * from './srs/index.js';
