// SRS timestamps: the day number modulo 1024, as two base32 characters (Mail::SRS, libsrs2,
// postsrsd and pysrs all agree). Emitted uppercase, read case-insensitively.

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const DAY_MS = 86_400_000;
/** 32 × 32 two-character stamps: the stamp repeats every 1024 days. */
export const STAMP_CYCLE = 1024;

/** Whole UTC days since the epoch, modulo 1024 (always 0…1023, also before 1970). */
export function dayOfCycle(nowMs: number): number {
  const day = Math.floor(nowMs / DAY_MS) % STAMP_CYCLE;
  return day < 0 ? day + STAMP_CYCLE : day;
}

/** The two-character stamp for a day of the cycle. */
export function encodeStamp(day: number): string {
  return BASE32.charAt(day >> 5) + BASE32.charAt(day & 31);
}

/** Value of one stamp character, case-insensitive; -1 when it is not in the alphabet. */
function stampDigit(code: number): number {
  if (code >= 0x61 && code <= 0x7a) return code - 0x61; // a-z
  if (code >= 0x41 && code <= 0x5a) return code - 0x41; // A-Z
  if (code >= 0x32 && code <= 0x37) return code - 0x32 + 26; // 2-7
  return -1;
}

/**
 * The day of the cycle the stamp `stamp[start, end)` names, or -1 when it is not exactly two
 * base32 characters.
 * postsrsd ≥ 1.10 insists on exactly two (CVE-2020-35573 was CPU burn on long stamps).
 */
export function decodeStamp(stamp: string, start = 0, end = stamp.length): number {
  if (end - start !== 2) return -1;
  const high = stampDigit(stamp.charCodeAt(start));
  const low = stampDigit(stamp.charCodeAt(start + 1));
  return high < 0 || low < 0 ? -1 : (high << 5) | low;
}

/**
 * How many days ago a stamp was made, seen from `today` (both days of the cycle): 0…1023.
 * A stamp from tomorrow is 1023 days old, which is how the peers reject future stamps.
 */
export function stampAge(today: number, then: number): number {
  return (today - then + STAMP_CYCLE) % STAMP_CYCLE;
}
