// Our HMAC-SHA1 must equal node:crypto's for every key and message, block boundaries included.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { HmacSha1 } from '../../src/srs/hmac-sha1.js';

it('HmacSha1 equals createHmac("sha1") for random keys (up to 200 bytes) and messages (up to 300 bytes)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.uint8Array({ maxLength: 300 }), (key, message) => {
      const expected = createHmac('sha1', key).update(message).digest();
      assert.deepEqual(Buffer.from(new HmacSha1(key).digestBytes(message)), expected);
    }),
    { numRuns: 3000 },
  );
});

it('HmacSha1 is right at every padding boundary (messages of 0…130 bytes)', () => {
  const key = new HmacSha1(Buffer.from('tops3cr3t'));
  for (let length = 0; length <= 130; length++) {
    const message = Buffer.alloc(length, 0x61 + (length % 26));
    assert.deepEqual(Buffer.from(key.digestBytes(message)), createHmac('sha1', 'tops3cr3t').update(message).digest(), `length ${length}`);
  }
});
