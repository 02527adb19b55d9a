/**
 * `outbound-pools/rspamd`: a spam classifier for `decidePool` that asks rspamd's `/checkv2`.
 * A leaf of its own so that the root entry loads no HTTP client code.
 *
 * @packageDocumentation
 */
export {
  createRspamdClassifier,
  verdictFromRspamd,
  RspamdError,
  DEFAULT_RSPAMD_SPAM_ACTIONS,
  DEFAULT_RSPAMD_CATEGORIES,
  MAX_RSPAMD_REPLY_BYTES,
  type RspamdAction,
  type RspamdClassifierOptions,
  type RspamdErrorCode,
} from './classifier.js';
