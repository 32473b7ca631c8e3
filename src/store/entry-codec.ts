/**
 * How the SQLite store keeps entry bytes (submissions) compactly without changing them (docs/store.md,
 * "Entry bytes on disk"). An entry is canonical JSON whose bulk is random values written as text: hashes,
 * keys and ids in lower-case hex (4 bits per character), signatures and key envelopes in base64 (6 bits).
 * A general compressor cannot give those back their binary size, so a stored value is two parts:
 *
 * - the **skeleton**: the JSON text with each long hex run and each base64 string replaced by a marker and
 *   its byte length, or by a reference to an identical value met before. Skeletons of one entry kind are
 *   nearly identical, so the skeleton is stored as copies from a dictionary: the skeletons of the entry
 *   kinds (with no org ids in them), then the store's genesis skeleton, which spells its founding orgs' ids
 *   (a record's skeleton of about 420 bytes packs into about 65);
 * - the **payload**: the bytes those values stand for, as they are (random: nothing compresses them).
 *
 * References reach the earlier values of the same entry (a patient id is also in `patient:<id>`) and the
 * values of the store's first submission, its genesis, which names every founding org's keys: the org keys
 * of a record's signatures then cost two bytes each instead of 32.
 *
 * Why not DEFLATE (RFC 1951) with a preset dictionary, as first tried: with the same split and dictionary a
 * DEFLATEd skeleton makes a record about 6 bytes smaller (550 against 556), but node:zlib's synchronous
 * calls cost about 20 µs to compress and 9 µs to inflate even a 400-byte skeleton (a stream and its
 * dictionary are set up at every call), against 4 µs and 3 µs for these copies (docs/store.md).
 *
 * Every stored value carries a CRC-32 of its stored form, so any damaged byte is reported as STORE_CORRUPT
 * rather than decoded into something else. Decoding checks every length, reference and bound and throws
 * nothing but LedgerError STORE_CORRUPT; encoding never fails: a value that is not JSON text, would not
 * shrink, or (a bug) would not come back identical, is stored as it is.
 */
import { LedgerError } from "../core/errors.ts";
import { MAX_ENTRY_BYTES } from "./types.ts";

/** First byte of a stored value: the entry bytes follow as they are. */
const FORMAT_RAW = 0;
/** First byte of a stored value: varint packed-skeleton length, packed skeleton, payload. */
const FORMAT_SPLIT = 1;
/** Bytes before the body: the format byte and the CRC-32 (big-endian). */
const HEADER_BYTES = 5;

// Skeleton markers. JSON text (RFC 8785 output, and any I-JSON) has no byte below 0x20 outside escapes, so
// a marker cannot be mistaken for text; an input holding such a byte is stored raw.
/** A new base64 value; then its byte length (varint); its bytes are next in the payload. */
const MARK_BASE64 = 1;
/** A new hex run; then its byte length (varint). */
const MARK_HEX = 2;
/** A base64 value equal to an earlier one; then that value's index (varint). */
const MARK_BASE64_AGAIN = 3;
/** A hex run equal to an earlier value; then its index (varint). */
const MARK_HEX_AGAIN = 4;

/** Shortest hex run made a value: 16 digits (8 bytes). */
const MIN_HEX_DIGITS = 16;
/** Shortest base64 string made a value: 16 characters (10 to 12 bytes). */
const MIN_BASE64_CHARS = 16;
/** Most genesis values entries may refer to (a genesis of 64 orgs has about 200). */
const MAX_DICTIONARY_VALUES = 1024;
/** Most bytes of the genesis skeleton entries may copy from (a genesis of 64 orgs has about 8 KiB). */
const MAX_GENESIS_SKELETON = 16 * 1024;
/** Shortest copy from the skeleton dictionary. */
const MIN_COPY = 4;
/** Dictionary positions tried per skeleton position when looking for the longest copy. */
const MAX_CANDIDATES = 16;
/** A copy this long that continues the previous one is taken without searching for a longer one. */
const GOOD_COPY = 16;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;
const HEX_DIGITS = "0123456789abcdef";
const BASE64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Per byte: 1 for a lower-case hex digit, 2 for another base64 character ("=" excluded), else 0. */
const CLASS = new Uint8Array(256);
/** Per byte: the value of a lower-case hex digit / a base64 character, else 255. */
const HEX_VALUE = new Uint8Array(256).fill(255);
const BASE64_VALUE = new Uint8Array(256).fill(255);
const HEX_CODES = Uint8Array.from(HEX_DIGITS, (c) => c.charCodeAt(0));
const BASE64_CODES = Uint8Array.from(BASE64_DIGITS, (c) => c.charCodeAt(0));
for (let i = 0; i < 64; i++) {
  BASE64_VALUE[BASE64_CODES[i]!] = i;
  CLASS[BASE64_CODES[i]!] = 2;
}
for (let i = 0; i < 16; i++) {
  HEX_VALUE[HEX_CODES[i]!] = i;
  CLASS[HEX_CODES[i]!] = 1;
}

/**
 * Per byte inside a string: the bits it adds to split()'s `kinds` (0 for a hex digit, 1 for another base64
 * character or "=", 3 for anything else), or 4 for the closing quote, 5 for a backslash, 6 for a control
 * byte (not JSON text).
 */
const STRING_CLASS = new Uint8Array(256).fill(3);
for (let c = 0; c < 0x20; c++) STRING_CLASS[c] = 6;
for (let c = 0; c < 256; c++) if (CLASS[c] !== 0) STRING_CLASS[c] = CLASS[c] === 1 ? 0 : 1;
STRING_CLASS[EQUALS] = 1;
STRING_CLASS[QUOTE] = 4;
STRING_CLASS[BACKSLASH] = 5;

const NONE: readonly number[] = [];

/** Values by index, and the index of each by valueKey. */
interface Values {
  readonly values: readonly Uint8Array[];
  /** valueKey -> indices of the values with that key. */
  readonly byKey: ReadonlyMap<number, readonly number[]>;
}

/**
 * What a store's entries are encoded against: the values of its genesis (seq 0), by index, and the copy
 * dictionary of skeletons (the entry kinds' templates, then the genesis's own skeleton, which spells the
 * founding orgs' ids and the log's origin).
 */
export interface EntryDictionary extends Values {
  readonly copies: Uint8Array;
  /** 4-byte sequence -> its positions in `copies`, latest first. */
  readonly copyIndex: ReadonlyMap<number, readonly number[]>;
}

const NO_VALUES: Values = { values: [], byKey: new Map() };

/** A lookup key for a value of at least 8 bytes: its first four bytes and its length. */
function valueKey(bytes: Uint8Array, at: number, length: number): number {
  const word = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
  return word ^ Math.imul(length, 0x9e3779b1);
}

function sameBytes(a: Uint8Array, at: number, b: Uint8Array, bt: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[at + i] !== b[bt + i]) return false;
  return true;
}

/** Write a varint (LEB128, unsigned) at out[at]; returns the position after it. */
function putVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

function damaged(why: string): never {
  throw new LedgerError("STORE_CORRUPT", `stored entry bytes are damaged: ${why}`);
}

/** Reads varints from a byte array, refusing any that runs past its end or past 2^28. */
class VarintReader {
  pos: number;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array, pos: number) {
    this.#bytes = bytes;
    this.pos = pos;
  }

  read(what: string): number {
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.pos >= this.#bytes.length) damaged(`${what} is cut short`);
      const b = this.#bytes[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
    return damaged(`${what} is too long`);
  }
}

/** JSON text split into its skeleton and its payload. */
interface Split {
  readonly skeleton: Uint8Array;
  readonly payload: Uint8Array;
  /** Start and length in the payload of each new value, in order (what a genesis offers). */
  readonly valueAt: readonly number[];
  readonly valueLength: readonly number[];
}

/**
 * Split JSON text; null when it is not JSON text (a byte below 0x20, an unterminated string). In each
 * string: the whole string when it is canonical padded base64 of at least MIN_BASE64_CHARS characters and
 * not all hex digits; otherwise each run of at least MIN_HEX_DIGITS lower-case hex digits (an even number of
 * them). A value equal to a dictionary value or an earlier one becomes a reference. A value is always
 * shorter than the text it replaces, so neither part outgrows the input.
 */
function split(text: Uint8Array, dictionary: Values): Split | null {
  const n = text.length;
  const out = new Splitter(n, dictionary);
  const skeleton = out.skeleton;
  const payload = out.payload;
  // The write position is kept in a local, and handed to the Splitter around each value.
  let s = 0;
  let i = 0;
  while (i < n) {
    const c = text[i++]!;
    if (c < 0x20) return null;
    skeleton[s++] = c;
    if (c !== QUOTE) continue;
    // A string: find its closing quote (a backslash escapes the next byte) and what its characters are.
    const from = i;
    // Short and without escapes (member names, most of the text): copied as it is.
    const short = Math.min(n, from + MIN_HEX_DIGITS);
    const mark = s;
    while (i < short) {
      const d = text[i]!;
      if (d === QUOTE || d === BACKSLASH || d < 0x20) break;
      skeleton[s++] = d;
      i++;
    }
    if (i < n && text[i] === QUOTE) {
      skeleton[s++] = QUOTE;
      i++;
      continue;
    }
    i = from;
    s = mark;
    // Bit 1: a character that is not a hex digit; bit 2: one outside base64 ("=" aside), or an escape.
    let kinds = 0;
    while (i < n) {
      const kind = STRING_CLASS[text[i]!]!;
      if (kind < 4) {
        kinds |= kind;
        i++;
      } else if (kind === 4) {
        break;
      } else if (kind === 5) {
        kinds |= 3;
        i += 2;
      } else {
        return null;
      }
    }
    if (i >= n) return null;
    const end = i++;
    // Canonical base64 and not all hex digits (hex is the denser reading of such a string).
    if (kinds === 1 && end - from >= MIN_BASE64_CHARS && (end - from) % 4 === 0) {
      const length = decodeBase64(text, from, end, payload, out.p);
      if (length >= 0) {
        out.s = s;
        out.value(length, MARK_BASE64, MARK_BASE64_AGAIN);
        s = out.s;
        skeleton[s++] = QUOTE;
        continue;
      }
    }
    let j = from;
    if (kinds === 0 && end - from >= MIN_HEX_DIGITS) {
      // All hex digits: the whole string is one run.
      j = hexRun(text, from, end, out, s);
      s = out.s;
    }
    while (j < end) {
      const d = text[j]!;
      if (CLASS[d] !== 1) {
        skeleton[s++] = d;
        if (d === BACKSLASH) skeleton[s++] = text[j + 1]!;
        j += d === BACKSLASH ? 2 : 1;
        continue;
      }
      let k = j;
      while (k < end && CLASS[text[k]!] === 1) k++;
      if (k - j >= MIN_HEX_DIGITS) {
        j = hexRun(text, j, k, out, s);
        s = out.s;
      }
      while (j < k) skeleton[s++] = text[j++]!;
    }
    skeleton[s++] = QUOTE;
  }
  return {
    skeleton: skeleton.subarray(0, s),
    payload: payload.subarray(0, out.p),
    valueAt: out.valueAt,
    valueLength: out.valueLength,
  };
}

/**
 * Make the hex digits text[from, to) (at least MIN_HEX_DIGITS) a value, all but an odd last one; the
 * skeleton position is `s` before and out.s after. Returns where the digits left over start.
 */
function hexRun(text: Uint8Array, from: number, to: number, out: Splitter, s: number): number {
  const digits = (to - from) & ~1;
  const payload = out.payload;
  const p = out.p;
  for (let x = 0; x < digits; x += 2) {
    payload[p + x / 2] = (HEX_VALUE[text[from + x]!]! << 4) | HEX_VALUE[text[from + x + 1]!]!;
  }
  out.s = s;
  out.value(digits / 2, MARK_HEX, MARK_HEX_AGAIN);
  return from + digits;
}

let scratchSkeleton = new Uint8Array(4096);
let scratchPayload = new Uint8Array(4096);

/** The two parts split() writes, and the values met so far. */
class Splitter {
  readonly skeleton: Uint8Array;
  readonly payload: Uint8Array;
  readonly valueAt: number[] = [];
  readonly valueLength: number[] = [];
  /** Where the next skeleton byte and the next payload byte go. */
  s = 0;
  p = 0;
  readonly #dictionary: Values;
  readonly #byKey = new Map<number, number[]>();

  constructor(n: number, dictionary: Values) {
    // Reused between calls (split is synchronous); split hands out views, which callers copy or drop.
    if (scratchSkeleton.length < n)
      [scratchSkeleton, scratchPayload] = [new Uint8Array(n), new Uint8Array(n)];
    this.skeleton = scratchSkeleton;
    this.payload = scratchPayload;
    this.#dictionary = dictionary;
  }

  /** The value just decoded into payload[p, p + length): a reference when met before, else a new value. */
  value(length: number, fresh: number, again: number): void {
    const { payload, p } = this;
    const key = valueKey(payload, p, length);
    const dictionary = this.#dictionary;
    let found = -1;
    for (const i of dictionary.byKey.get(key) ?? NONE) {
      const v = dictionary.values[i]!;
      if (v.length === length && sameBytes(v, 0, payload, p, length)) found = i;
    }
    const local = this.#byKey.get(key);
    if (found < 0 && local !== undefined) {
      for (const i of local) {
        if (this.valueLength[i] === length && sameBytes(payload, this.valueAt[i]!, payload, p, length)) {
          found = dictionary.values.length + i;
        }
      }
    }
    if (found >= 0) {
      this.skeleton[this.s++] = again;
      this.s = putVarint(this.skeleton, this.s, found);
      return;
    }
    if (local === undefined) this.#byKey.set(key, [this.valueAt.length]);
    else local.push(this.valueAt.length);
    this.valueAt.push(p);
    this.valueLength.push(length);
    this.skeleton[this.s++] = fresh;
    this.s = putVarint(this.skeleton, this.s, length);
    this.p += length;
  }
}

/**
 * Decode canonical padded base64 text[from, end) into out[at...]: the byte count, or -1 when the text is not
 * canonical (misplaced padding, non-zero unused bits), so that encoding the bytes gives the same text.
 */
function decodeBase64(text: Uint8Array, from: number, end: number, out: Uint8Array, at: number): number {
  const pad = text[end - 1] === EQUALS ? (text[end - 2] === EQUALS ? 2 : 1) : 0;
  let o = at;
  for (let i = from; i < end; i += 4) {
    const last = i + 4 === end;
    const a = BASE64_VALUE[text[i]!]!;
    const b = BASE64_VALUE[text[i + 1]!]!;
    const c = last && pad === 2 ? 0 : BASE64_VALUE[text[i + 2]!]!;
    const d = last && pad >= 1 ? 0 : BASE64_VALUE[text[i + 3]!]!;
    if ((a | b | c | d) > 63) return -1;
    out[o++] = (a << 2) | (b >> 4);
    if (last && pad === 2) return (b & 15) === 0 ? o - at : -1;
    out[o++] = ((b & 15) << 4) | (c >> 2);
    if (last && pad === 1) return (c & 3) === 0 ? o - at : -1;
    out[o++] = ((c & 3) << 6) | d;
  }
  return o - at;
}

/** Padded base64 of bytes[from, from + length) written at out[at...]; returns the position after it. */
function encodeBase64(bytes: Uint8Array, from: number, length: number, out: Uint8Array, at: number): number {
  const end = from + length;
  let i = from;
  for (; i + 2 < end; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[at++] = BASE64_CODES[v >> 18]!;
    out[at++] = BASE64_CODES[(v >> 12) & 63]!;
    out[at++] = BASE64_CODES[(v >> 6) & 63]!;
    out[at++] = BASE64_CODES[v & 63]!;
  }
  if (i < end) {
    const two = i + 1 < end;
    const v = (bytes[i]! << 16) | (two ? bytes[i + 1]! << 8 : 0);
    out[at++] = BASE64_CODES[v >> 18]!;
    out[at++] = BASE64_CODES[(v >> 12) & 63]!;
    out[at++] = two ? BASE64_CODES[(v >> 6) & 63]! : EQUALS;
    out[at++] = EQUALS;
  }
  return at;
}

/** Lower-case hex of bytes[from, from + length) written at out[at...]; returns the position after it. */
function encodeHex(bytes: Uint8Array, from: number, length: number, out: Uint8Array, at: number): number {
  for (let i = from; i < from + length; i++) {
    out[at++] = HEX_CODES[bytes[i]! >> 4]!;
    out[at++] = HEX_CODES[bytes[i]! & 15]!;
  }
  return at;
}

/**
 * Join a skeleton and its payload back into the text: the inverse of split. A first pass checks every
 * marker, length and reference and sizes the text (at most MAX_ENTRY_BYTES); the second writes it.
 */
function join(skeleton: Uint8Array, payload: Uint8Array, dictionary: Values): Uint8Array {
  const known = dictionary.values.length;
  const valueAt: number[] = [];
  const valueLength: number[] = [];
  const reader = new VarintReader(skeleton, 0);
  const n = skeleton.length;
  let length = 0;
  let p = 0;
  let i = 0;
  while (i < n) {
    const mark = skeleton[i++]!;
    if (mark >= 0x20) {
      length++;
      continue;
    }
    reader.pos = i;
    const number = reader.read("a value's length or reference");
    i = reader.pos;
    let size: number;
    if (mark === MARK_BASE64 || mark === MARK_HEX) {
      if (number > payload.length - p) damaged("a value runs past the end of the payload");
      valueAt.push(p);
      valueLength.push(number);
      p += number;
      size = number;
    } else if (mark === MARK_BASE64_AGAIN || mark === MARK_HEX_AGAIN) {
      if (number >= known + valueAt.length) damaged(`a reference to value ${number}, which does not exist`);
      size = number < known ? dictionary.values[number]!.length : valueLength[number - known]!;
    } else {
      return damaged(`unknown skeleton marker ${mark}`);
    }
    length += mark === MARK_HEX || mark === MARK_HEX_AGAIN ? 2 * size : 4 * Math.ceil(size / 3);
    if (length > MAX_ENTRY_BYTES) damaged("they decode to more than an entry's maximum size");
  }
  if (p !== payload.length) damaged(`${payload.length - p} payload bytes are left over`);
  if (length === 0) damaged("they decode to nothing");
  // Pass 2: every marker was checked above.
  const out = new Uint8Array(length);
  let o = 0;
  let fresh = 0;
  i = 0;
  while (i < n) {
    const mark = skeleton[i++]!;
    if (mark >= 0x20) {
      out[o++] = mark;
      continue;
    }
    let number = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = skeleton[i++]!;
      number += (b & 0x7f) * shift;
      if (b < 0x80) break;
    }
    let bytes = payload;
    let at: number;
    let size: number;
    if (mark === MARK_BASE64 || mark === MARK_HEX) {
      at = valueAt[fresh]!;
      size = valueLength[fresh++]!;
    } else if (number < known) {
      bytes = dictionary.values[number]!;
      at = 0;
      size = bytes.length;
    } else {
      at = valueAt[number - known]!;
      size = valueLength[number - known]!;
    }
    o =
      mark === MARK_HEX || mark === MARK_HEX_AGAIN
        ? encodeHex(bytes, at, size, out, o)
        : encodeBase64(bytes, at, size, out, o);
  }
  return out;
}

/**
 * Whether the parts join back into exactly `bytes`: join's second pass, compared as it goes instead of
 * written (encoding checks every value it stores with it).
 */
/** Whether the packed skeleton unpacks to exactly `skeleton`. */
function sameSkeleton(packed: Uint8Array, copies: Uint8Array, skeleton: Uint8Array): boolean {
  try {
    const unpacked = unpackSkeleton(packed, copies);
    return unpacked.length === skeleton.length && sameBytes(unpacked, 0, skeleton, 0, skeleton.length);
  } catch {
    return false;
  }
}

function joinsBack(parts: Split, dictionary: Values, bytes: Uint8Array): boolean {
  const { skeleton, payload } = parts;
  const known = dictionary.values.length;
  const n = skeleton.length;
  let o = 0;
  let p = 0;
  let fresh = 0;
  let i = 0;
  while (i < n) {
    const mark = skeleton[i++]!;
    if (mark >= 0x20) {
      if (bytes[o++] !== mark) return false;
      continue;
    }
    let number = 0;
    for (let shift = 1; i < n; shift *= 128) {
      const b = skeleton[i++]!;
      number += (b & 0x7f) * shift;
      if (b < 0x80) break;
    }
    let source = payload;
    let at: number;
    let size: number;
    if (mark === MARK_BASE64 || mark === MARK_HEX) {
      if (
        fresh >= parts.valueAt.length ||
        parts.valueAt[fresh] !== p ||
        parts.valueLength[fresh] !== number
      ) {
        return false;
      }
      at = p;
      size = number;
      p += number;
      fresh++;
    } else if (mark !== MARK_BASE64_AGAIN && mark !== MARK_HEX_AGAIN) {
      return false;
    } else if (number < known) {
      source = dictionary.values[number]!;
      at = 0;
      size = source.length;
    } else if (number - known < fresh) {
      at = parts.valueAt[number - known]!;
      size = parts.valueLength[number - known]!;
    } else {
      return false;
    }
    if (mark === MARK_HEX || mark === MARK_HEX_AGAIN) {
      if (o + 2 * size > bytes.length) return false;
      for (let k = at; k < at + size; k++) {
        if (bytes[o++] !== HEX_CODES[source[k]! >> 4] || bytes[o++] !== HEX_CODES[source[k]! & 15])
          return false;
      }
    } else {
      const scratch = base64Scratch(size);
      const text = encodeBase64(source, at, size, scratch, 0);
      if (o + text > bytes.length) return false;
      for (let k = 0; k < text; k++) if (bytes[o++] !== scratch[k]) return false;
    }
  }
  return o === bytes.length && p === payload.length;
}

let scratchBase64 = new Uint8Array(256);

/** Room for the base64 text of a value of `size` bytes, reused (encoding is synchronous). */
function base64Scratch(size: number): Uint8Array {
  const need = 4 * Math.ceil(size / 3);
  if (scratchBase64.length < need) scratchBase64 = new Uint8Array(need);
  return scratchBase64;
}

// The skeleton dictionary: the skeletons of the entry kinds (docs/entries.md), the most frequent last.
// Stored values copy from it, so it is part of the format: a test pins its SHA-256, and a different
// dictionary needs a new format byte (old values keep decoding with the old one).
// Org ids are left empty: a store's own ones are in its genesis skeleton, after the templates.
const ORG = "";
const H = "00".repeat(32);
const ID = "00".repeat(16);
const SIG = "A".repeat(86) + "==";
const ENV = "A".repeat(116);
const SIGS = (a: string, b: string): string =>
  `"sigs":[{"key":"${H}","role":"${a}","sig":"${SIG}"},{"key":"${H}","role":"${b}","sig":"${SIG}"}],"v":1}`;
const ABOUT = `"patient":"${ID}","prev":"${H}"`;
const RECORD = (kind: string, supersedes: string): string =>
  `{"body":{"author":"${ORG}","blobs":[],"ciphertext":{"hash":"${H}","size":0},"envelopes":[` +
  `{"env":"${ENV}","to":"org:${ORG}"},{"env":"${ENV}","to":"org:${ORG}"},` +
  `{"env":"${ENV}","to":"patient:${ID}"}],"month":"2026-01",${ABOUT},"record":"${ID}",${supersedes}` +
  `"validator":"${ORG}","withheldFromPatient":false},"kind":"${kind}",${SIGS("author", "validator")}`;
const TEMPLATES: readonly string[] = [
  `{"body":{"consortium":{"keys":["${H}"],"threshold":1},"orgs":[{"encKey":"${H}","id":"${ORG}",` +
    `"roles":["author","validator"],"signKey":"${H}"}],"origin":"example.org/log"},"kind":"genesis",` +
    `"sigs":[{"key":"${H}","role":"consortium","sig":"${SIG}"}],"v":1}`,
  `{"body":{"org":{"encKey":"${H}","id":"${ORG}","roles":["author"],"signKey":"${H}"}},` +
    `"kind":"org.admit","sigs":[{"key":"${H}","role":"consortium","sig":"${SIG}"}],"v":1}`,
  `{"body":{"org":"${ORG}"},"kind":"org.retire","sigs":[{"key":"${H}","role":"consortium",` +
    `"sig":"${SIG}"}],"v":1}`,
  `{"body":{"org":"${ORG}",${ABOUT},"reason":"life-threatening"},"kind":"emergency.access",` +
    SIGS("org", "patient"),
  `{"body":{"grant":"${H}",${ABOUT}},"kind":"grant.revoke",${SIGS("org", "patient")}`,
  `{"body":{"by":"author",${ABOUT},"record":"${ID}"},"kind":"record.erase",${SIGS("author", "patient")}`,
  `{"body":{"expires":"2026-01-01","grantee":"${ORG}",${ABOUT},"scope":{"ct":"${SIG}","envelopes":[` +
    `{"env":"${ENV}","to":"org:${ORG}"}]},"scopeHash":"${H}"},"kind":"grant",${SIGS("org", "patient")}`,
  `{"body":{"grant":"${H}","keys":[{"env":"${ENV}","record":"${ID}"}],${ABOUT}},"kind":"key.share",` +
    SIGS("org", "patient"),
  `{"body":{"basis":{"type":"care"},"org":"${ORG}",${ABOUT},"records":["${ID}"]},"kind":"access.event",` +
    SIGS("org", "patient"),
  `{"body":{"blinded":"${H}","org":"${ORG}",${ABOUT}},"kind":"identifier.unlink",${SIGS("org", "patient")}`,
  `{"body":{"blinded":"${H}","org":"${ORG}",${ABOUT}},"kind":"identifier.link",${SIGS("org", "patient")}`,
  `{"body":{"encKey":"${H}","org":"${ORG}","patient":"${ID}","prev":null,"signKey":"${H}"},` +
    `"kind":"patient.enroll",${SIGS("patient", "org")}`,
  RECORD("record.amend", `"supersedes":"${ID}",`),
  RECORD("record.append", ""),
];

/** The templates' skeletons (their values marked, none repeated across them): the start of every copy dictionary. */
export const SKELETON_DICTIONARY: Uint8Array = concat(
  TEMPLATES.map((t) => split(new TextEncoder().encode(t), NO_VALUES)!.skeleton.slice()),
);

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Positions of each 4-byte sequence of `copies`, latest first (the latest are the most specific). */
function indexCopies(copies: Uint8Array): Map<number, number[]> {
  const index = new Map<number, number[]>();
  for (let i = copies.length - MIN_COPY; i >= 0; i--) {
    const key = copies[i]! | (copies[i + 1]! << 8) | (copies[i + 2]! << 16) | (copies[i + 3]! << 24);
    const list = index.get(key);
    if (list === undefined) index.set(key, [i]);
    else list.push(i);
  }
  return index;
}

/** The dictionary of a store without a genesis, and of the genesis itself: the templates only. */
export const EMPTY_DICTIONARY: EntryDictionary = {
  ...NO_VALUES,
  copies: SKELETON_DICTIONARY,
  copyIndex: indexCopies(SKELETON_DICTIONARY),
};

/** How many bytes of skeleton[i...] equal copies[at...]. */
function matchLength(skeleton: Uint8Array, i: number, copies: Uint8Array, at: number): number {
  const max = Math.min(skeleton.length - i, copies.length - at);
  let length = 0;
  while (length < max && copies[at + length] === skeleton[i + length]) length++;
  return length;
}

/** Zigzag: 0, -1, 1, -2... as 0, 1, 2, 3... */
function zigzag(value: number): number {
  return value >= 0 ? 2 * value : -2 * value - 1;
}

/**
 * A copy's source as a number: the zigzag distance from the end of the last copy or of the one before it
 * (the low bit says which), whichever is smaller. A skeleton follows its template, leaving it for a value
 * the genesis spells (an org id) and coming back: both starts are near one of the last two ends.
 */
function sourceCode(at: number, last: number, before: number): number {
  const fromLast = 2 * zigzag(at - last);
  const fromBefore = 2 * zigzag(at - before) + 1;
  return fromLast <= fromBefore ? fromLast : fromBefore;
}

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : 4;
}

/**
 * Pack a skeleton as copies from the dictionary: varint skeleton length, then steps of a token byte (literal
 * count in its top 2 bits, copy length - MIN_COPY in its low 6; the largest value of each means a varint
 * follows with the rest), the literals, and, unless the skeleton is then complete, the copy's source
 * (sourceCode). Copies are chosen greedily, by length less the bytes of their source.
 */
function packSkeleton(skeleton: Uint8Array, dictionary: EntryDictionary): Uint8Array {
  return new Packer(skeleton, dictionary).pack();
}

/** The state of packSkeleton. */
class Packer {
  readonly #skeleton: Uint8Array;
  readonly #copies: Uint8Array;
  readonly #copyIndex: ReadonlyMap<number, readonly number[]>;
  readonly #out: Uint8Array;
  #o = 0;
  /** The next skeleton byte, and the first not yet written (as a literal or a copy). */
  #i = 0;
  #literalsFrom = 0;
  /** The ends of the last copy and of the one before it. */
  #last = 0;
  #before = 0;
  /** The best copy found for position #i: its score, length and start. */
  #score = 0;
  #length = 0;
  #at = 0;

  constructor(skeleton: Uint8Array, dictionary: EntryDictionary) {
    this.#skeleton = skeleton;
    this.#copies = dictionary.copies;
    this.#copyIndex = dictionary.copyIndex;
    this.#out = new Uint8Array(2 * skeleton.length + 16);
  }

  pack(): Uint8Array {
    const skeleton = this.#skeleton;
    const n = skeleton.length;
    this.#o = putVarint(this.#out, 0, n);
    while (this.#i + MIN_COPY <= n) {
      const i = this.#i;
      this.#score = 0;
      this.#length = 0;
      // Continuing the last copy, or the one before, first: a long one is taken at once.
      this.#consider(this.#last);
      this.#consider(this.#before);
      if (this.#length < GOOD_COPY) {
        const copies = this.#copies;
        const key =
          skeleton[i]! | (skeleton[i + 1]! << 8) | (skeleton[i + 2]! << 16) | (skeleton[i + 3]! << 24);
        const candidates = this.#copyIndex.get(key) ?? NONE;
        for (let c = 0; c < candidates.length && c < MAX_CANDIDATES; c++) {
          // A candidate that differs where the best one ends cannot be longer (zlib's shortcut).
          const at = candidates[c]!;
          const end = this.#length;
          if (end === 0 || (at + end < copies.length && copies[at + end] === skeleton[i + end])) {
            this.#consider(at);
          }
        }
      }
      // A copy must save more than its token and source cost, or the bytes are cheaper as literals.
      if (this.#score <= 1) {
        this.#i++;
        continue;
      }
      this.#step(this.#length);
      this.#o = putVarint(this.#out, this.#o, sourceCode(this.#at, this.#last, this.#before));
      this.#i += this.#length;
      this.#literalsFrom = this.#i;
      this.#before = this.#last;
      this.#last = this.#at + this.#length;
    }
    this.#i = n;
    this.#step(0);
    return this.#out.subarray(0, this.#o);
  }

  #consider(at: number): void {
    const length = matchLength(this.#skeleton, this.#i, this.#copies, at);
    if (length < MIN_COPY) return;
    const score = length - varintSize(sourceCode(at, this.#last, this.#before));
    if (score > this.#score || (score === this.#score && length > this.#length)) {
      this.#score = score;
      this.#length = length;
      this.#at = at;
    }
  }

  /** Write a token, the pending literals and the copy's long length, if any (0: no copy, the end). */
  #step(copyLength: number): void {
    const out = this.#out;
    const literals = this.#i - this.#literalsFrom;
    const extra = copyLength === 0 ? 0 : copyLength - MIN_COPY;
    out[this.#o++] = (Math.min(literals, 3) << 6) | Math.min(extra, 63);
    if (literals >= 3) this.#o = putVarint(out, this.#o, literals - 3);
    for (let k = this.#literalsFrom; k < this.#i; k++) out[this.#o++] = this.#skeleton[k]!;
    if (copyLength > 0 && extra >= 63) this.#o = putVarint(out, this.#o, extra - 63);
  }
}

/** Unpack a skeleton, checking every count, source and length against the dictionary and the size. */
function unpackSkeleton(packed: Uint8Array, copies: Uint8Array): Uint8Array {
  const reader = new VarintReader(packed, 0);
  const n = reader.read("the skeleton's size");
  if (n === 0 || n > MAX_ENTRY_BYTES) damaged(`a skeleton of ${n} bytes`);
  const out = new Uint8Array(n);
  let o = 0;
  let last = 0;
  let before = 0;
  for (;;) {
    if (reader.pos >= packed.length) damaged("the packed skeleton is cut short");
    const token = packed[reader.pos++]!;
    let literals = token >> 6;
    if (literals === 3) literals += reader.read("a literal count");
    if (literals > n - o || literals > packed.length - reader.pos) damaged("a literal run overflows");
    for (let k = 0; k < literals; k++) out[o++] = packed[reader.pos++]!;
    if (o === n) break;
    let length = (token & 63) + MIN_COPY;
    if ((token & 63) === 63) length += reader.read("a copy's length");
    const code = reader.read("a copy's source");
    const half = Math.floor(code / 2);
    const distance = half % 2 === 0 ? half / 2 : -(half + 1) / 2;
    const at = (code % 2 === 0 ? last : before) + distance;
    if (at < 0 || at + length > copies.length || length > n - o)
      damaged("a copy falls outside the dictionary");
    for (let k = at; k < at + length; k++) out[o++] = copies[k]!;
    before = last;
    last = at + length;
  }
  if (reader.pos !== packed.length) damaged("the packed skeleton has bytes left over");
  return out;
}

/** CRC-32 (ISO-HDLC: zlib's and PNG's) table. */
const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

function crcUpdate(crc: number, bytes: Uint8Array, from: number, to: number): number {
  let c = crc;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

/**
 * The CRC-32 of a stored value: of its format byte and its body (not of the four CRC bytes). A CRC-32
 * detects every error burst of up to 32 bits: every damaged byte, wherever it is.
 */
function storedCrc(stored: Uint8Array): number {
  return ~crcUpdate(crcUpdate(-1, stored, 0, 1), stored, HEADER_BYTES, stored.length) >>> 0;
}

function seal(out: Uint8Array): Uint8Array {
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(1, storedCrc(out));
  return out;
}

/**
 * The dictionary of a store's entries after its genesis (seq 0): the genesis's values (at most
 * MAX_DICTIONARY_VALUES) and its skeleton after the templates (at most MAX_GENESIS_SKELETON bytes).
 */
export function entryDictionary(genesis: Uint8Array): EntryDictionary {
  const parts = split(genesis, NO_VALUES);
  if (parts === null) return EMPTY_DICTIONARY;
  const values: Uint8Array[] = [];
  const byKey = new Map<number, number[]>();
  const count = Math.min(parts.valueAt.length, MAX_DICTIONARY_VALUES);
  for (let i = 0; i < count; i++) {
    const at = parts.valueAt[i]!;
    const length = parts.valueLength[i]!;
    const key = valueKey(parts.payload, at, length);
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [i]);
    else list.push(i);
    values.push(parts.payload.slice(at, at + length));
  }
  const copies = concat([SKELETON_DICTIONARY, parts.skeleton.subarray(0, MAX_GENESIS_SKELETON)]);
  return { values, byKey, copies, copyIndex: indexCopies(copies) };
}

/**
 * Encode entry bytes for storage against the store's value dictionary. Never fails: a value that is not
 * JSON text, would not shrink, or would not come back identical, is stored as it is.
 */
export function encodeEntryBytes(bytes: Uint8Array, dictionary: EntryDictionary): Uint8Array {
  const parts = split(bytes, dictionary);
  if (parts !== null) {
    const packed = packSkeleton(parts.skeleton, dictionary);
    const size = HEADER_BYTES + 4 + packed.length + parts.payload.length;
    // A submission is acknowledged once stored: never store one that would not decode to the same bytes.
    // The check unpacks the skeleton and joins the parts back against the input, as decoding would.
    if (
      size < HEADER_BYTES + bytes.length &&
      sameSkeleton(packed, dictionary.copies, parts.skeleton) &&
      joinsBack(parts, dictionary, bytes)
    ) {
      const out = new Uint8Array(size);
      out[0] = FORMAT_SPLIT;
      let at = putVarint(out, HEADER_BYTES, packed.length);
      out.set(packed, at);
      at += packed.length;
      out.set(parts.payload, at);
      return seal(out.subarray(0, at + parts.payload.length));
    }
  }
  const out = new Uint8Array(HEADER_BYTES + bytes.length);
  out[0] = FORMAT_RAW;
  out.set(bytes, HEADER_BYTES);
  return seal(out);
}

/**
 * Decode a stored value back to the entry bytes it was made from. Anything wrong (the CRC, the format, a
 * count, offset, length or reference out of bounds, bytes left over) is STORE_CORRUPT naming what.
 */
export function decodeEntryBytes(stored: Uint8Array, dictionary: EntryDictionary): Uint8Array {
  if (stored.length <= HEADER_BYTES) damaged("shorter than their header");
  const crc = new DataView(stored.buffer, stored.byteOffset, stored.byteLength).getUint32(1);
  if (crc !== storedCrc(stored)) damaged("their CRC-32 does not match");
  const format = stored[0];
  if (format === FORMAT_RAW) {
    if (stored.length - HEADER_BYTES > MAX_ENTRY_BYTES) damaged("longer than an entry");
    return stored.slice(HEADER_BYTES);
  }
  if (format !== FORMAT_SPLIT) damaged(`unknown format ${format}`);
  const reader = new VarintReader(stored, HEADER_BYTES);
  const packedLength = reader.read("the skeleton's length");
  if (packedLength > stored.length - reader.pos) damaged("the skeleton's length exceeds the value");
  const skeleton = unpackSkeleton(stored.subarray(reader.pos, reader.pos + packedLength), dictionary.copies);
  return join(skeleton, stored.subarray(reader.pos + packedLength), dictionary);
}
