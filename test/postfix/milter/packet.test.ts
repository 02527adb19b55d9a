import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodePacket, MilterProtocolError, PacketReader } from '../../../src/postfix/milter/packet.js';
import { assertLinear } from '../doubling.js';
import { packet } from '../milter-client.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MilterProtocolError, String(error));
    return error.code;
  }
  return 'no error';
}

describe('milter packet framing', () => {
  it('encodes the length of the command octet and the data, in network byte order', () => {
    assert.deepEqual(encodePacket(0x63), Buffer.from([0, 0, 0, 1, 0x63]));
    assert.deepEqual(encodePacket(0x68, Buffer.from('a\0b\0')), Buffer.from([0, 0, 0, 5, 0x68, 0x61, 0, 0x62, 0]));
  });

  it('reads packets however the stream is split: whole, several per chunk, one octet at a time', () => {
    const stream = Buffer.concat([packet('O', [0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff]), packet('H', 'mx.example\0'), packet('Q')]);
    for (const size of [stream.length, 7, 3, 1]) {
      const reader = new PacketReader();
      const got: [string, string][] = [];
      for (let at = 0; at < stream.length; at += size) {
        for (const p of reader.push(stream.subarray(at, at + size))) got.push([String.fromCharCode(p.command), p.data.toString('latin1')]);
      }
      reader.end();
      assert.deepEqual(got.map(([command]) => command), ['O', 'H', 'Q'], `chunks of ${size}`);
      assert.equal(got[1]![1], 'mx.example\0');
      assert.equal(reader.pending, 0);
    }
  });

  it('refuses a length over the limit as soon as the four length octets arrive', () => {
    const reader = new PacketReader(1000);
    assert.equal(codeOf(() => reader.push(Buffer.from([0, 0, 3, 0xe9]))), 'oversized');
    // The largest allowed passes.
    const ok = new PacketReader(1000);
    assert.equal(ok.push(packet('B', Buffer.alloc(999))).length, 1);
  });

  it('refuses a packet of length 0 (no command) and reports a stream cut inside a packet', () => {
    assert.equal(codeOf(() => new PacketReader().push(Buffer.from([0, 0, 0, 0]))), 'empty-packet');
    const reader = new PacketReader();
    reader.push(packet('H', 'mx.example\0').subarray(0, 8));
    assert.equal(codeOf(() => reader.end()), 'truncated');
    const short = new PacketReader();
    short.push(Buffer.from([0, 0]));
    assert.equal(codeOf(() => short.end()), 'truncated');
  });

  it('takes time linear in the packet size, however it is split (doubling series)', () => {
    const time = (size: number, reads: number): number => {
      const stream = packet('B', Buffer.alloc(size, 0x61));
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length; at += 64) chunks.push(stream.subarray(at, at + 64));
      let best = Infinity;
      for (let run = 0; run < 15; run++) {
        let count = 0;
        const started = process.hrtime.bigint();
        for (let read = 0; read < reads; read++) {
          const reader = new PacketReader(1 << 24);
          for (const chunk of chunks) count += reader.push(chunk).length;
        }
        best = Math.min(best, Number(process.hrtime.bigint() - started));
        assert.equal(count, reads);
      }
      return best;
    };
    // Up to 256 KiB: above the largest packet Postfix sends (a 100 KiB header), below the sizes
    // where fresh large buffers make the timing noisy.
    assertLinear([8_192, 16_384, 32_768, 65_536, 131_072, 262_144], time, 'reading a packet in 64-octet chunks');
  });
});
