/**
 * `outbound-pools/mailauth`: SPF, DKIM and ARC (DMARC on request) at ingress with mailauth, as an
 * authenticator for `decidePool`. A leaf of its own so that the root entry loads no mailauth.
 *
 * @packageDocumentation
 */
export {
  createMailauthAuthenticator,
  firstUntrustedHop,
  receivedFrom,
  verdictFromMailauth,
  type MailauthAuthenticatorOptions,
} from './authenticator.js';
