// DKIM and ARC signing keys for the tests, made at load: no key is kept in the repository.
import { generateKeyPairSync } from 'node:crypto';

/** A fresh RSA-2048 key pair: the private key (PKCS#8 PEM) and its DKIM key record. */
export function rsaKey(): { readonly privateKey: string; readonly record: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
  };
}
