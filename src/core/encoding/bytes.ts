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

/** Lower-case hex of the bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b >> 4]! + HEX[b & 15]!;
  return out;
}

/** Parse hex (either case); refuses odd length and non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new LedgerError("MALFORMED_INPUT", "hex string has odd length or a non-hex character");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
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

/**
 * Parse standard padded base64 strictly: no whitespace, no URL alphabet, correct padding, and zero
 * unused bits (so every byte string has exactly one accepted encoding).
 */
export function fromBase64(text: string): Uint8Array {
  const bad = (why: string): never => {
    throw new LedgerError("MALFORMED_INPUT", `invalid base64: ${why}`);
  };
  if (text.length % 4 !== 0) bad("length is not a multiple of 4");
  let pad = 0;
  if (text.endsWith("==")) pad = 2;
  else if (text.endsWith("=")) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      let v: number;
      if (c === 61 /* = */) {
        if (!last || j < 4 - pad) bad("misplaced padding");
        v = 0;
      } else {
        v = c < 128 ? B64_INDEX[c]! : -1;
        if (v < 0) bad("character outside the alphabet");
      }
      n = (n << 6) | v;
    }
    if (last && pad === 2 && (n & 0xffff) !== 0) bad("non-zero trailing bits");
    if (last && pad === 1 && (n & 0xff) !== 0) bad("non-zero trailing bits");
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
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
