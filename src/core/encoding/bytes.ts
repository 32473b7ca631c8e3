/**
 * Byte helpers for the pure core: strict hex and base64 (RFC 4648 section 4, padded, canonical),
 * UTF-8, concatenation and constant-time comparison. No Buffer: this module also runs in a browser.
 */
import { LedgerError } from "../errors.ts";

const HEX = "0123456789abcdef";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The two hex digits of every byte value. */
const HEX_PAIRS: readonly string[] = Array.from({ length: 256 }, (_, b) => HEX[b >> 4]! + HEX[b & 15]!);
/** The value of each hex digit by character code (either case), -1 for any other character. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE[HEX.charCodeAt(i)] = i;
  HEX_VALUE[HEX.toUpperCase().charCodeAt(i)] = i;
}

/** Lower-case hex of the bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_PAIRS[bytes[i]!]!;
  return out;
}

/** Parse hex (either case); refuses odd length and non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) badHex();
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(hex.charCodeAt(2 * i));
    const lo = hexValue(hex.charCodeAt(2 * i + 1));
    if ((hi | lo) < 0) badHex();
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexValue(c: number): number {
  return c < 128 ? HEX_VALUE[c]! : -1;
}

function badHex(): never {
  throw new LedgerError("MALFORMED_INPUT", "hex string has odd length or a non-hex character");
}

/** Standard padded base64 (RFC 4648 section 4). */
export function toBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + "==";
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + "=";
  }
  return out;
}

function badBase64(why: string): never {
  throw new LedgerError("MALFORMED_INPUT", `invalid base64: ${why}`);
}

/**
 * Parse standard padded base64 strictly: no whitespace, no URL alphabet, correct padding, and zero
 * unused bits (so every byte string has exactly one accepted encoding).
 */
export function fromBase64(text: string): Uint8Array {
  // Entries carry several base64 fields (signatures, key envelopes): this is on the validator's hot path,
  // so it allocates nothing but its result.
  if (text.length % 4 !== 0) badBase64("length is not a multiple of 4");
  let pad = 0;
  if (text.endsWith("==")) pad = 2;
  else if (text.endsWith("=")) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  const full = text.length - (pad === 0 ? 0 : 4);
  let o = 0;
  for (let i = 0; i < full; i += 4) {
    const a = base64Value(text.charCodeAt(i));
    const b = base64Value(text.charCodeAt(i + 1));
    const c = base64Value(text.charCodeAt(i + 2));
    const d = base64Value(text.charCodeAt(i + 3));
    if ((a | b | c | d) < 0) badGroup(text, i);
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  if (pad !== 0) {
    const i = full;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const ch = text.charCodeAt(i + j);
      let v: number;
      if (ch === 61 /* = */) {
        if (j < 4 - pad) badBase64("misplaced padding");
        v = 0;
      } else {
        v = base64Value(ch);
        if (v < 0) badBase64("character outside the alphabet");
      }
      n = (n << 6) | v;
    }
    if (pad === 2 && (n & 0xffff) !== 0) badBase64("non-zero trailing bits");
    if (pad === 1 && (n & 0xff) !== 0) badBase64("non-zero trailing bits");
    out[o] = n >> 16;
    if (pad === 1) out[o + 1] = (n >> 8) & 255;
  }
  return out;
}

/** Report the first bad character of a group that is not the last, as a scan in order meets it. */
function badGroup(text: string, i: number): never {
  for (let j = 0; j < 4; j++) {
    const ch = text.charCodeAt(i + j);
    if (ch === 61 /* = */) badBase64("misplaced padding");
    if (base64Value(ch) < 0) break;
  }
  return badBase64("character outside the alphabet");
}

/** The value of a base64 character, or -1 (also for "="). */
function base64Value(c: number): number {
  return c < 128 ? B64_INDEX[c]! : -1;
}

/** UTF-8 bytes of a string (lone surrogates become U+FFFD; use the JCS parser to refuse them). */
export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Decode UTF-8 strictly: invalid sequences are refused, not replaced. */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", "bytes are not valid UTF-8", { cause });
  }
}

/** Concatenate byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Compare two byte arrays in time that depends only on their lengths, never on where they differ:
 * used for every secret or MAC comparison.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Plain equality for public values (hashes, keys); not for secrets. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Big-endian encoding of a non-negative integer in `length` bytes (I2OSP of RFC 8017). */
export function i2osp(value: number, length: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0 || (length < 6 && value >= 256 ** length)) {
    throw new LedgerError("INVALID_ARGUMENT", `i2osp: ${value} does not fit in ${length} bytes`);
  }
  const out = new Uint8Array(length);
  let v = value;
  for (let i = length - 1; i >= 0 && v > 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}
