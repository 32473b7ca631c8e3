/**
 * Hashing of the verifiable patient index (docs/patient-index.md): the key derivation, the value layout and
 * the leaf and internal node hashes of the sparse Merkle tree, each domain-separated from the RFC 9162
 * log's 0x00 (leaf) and 0x01 (node) prefixes so that no log hash can ever be read as a map hash.
 */
import { LedgerError } from "../errors.ts";
import type { ErrorCode } from "../errors.ts";
import { bytesEqual, utf8 } from "../encoding/bytes.ts";
import { isWellFormedString } from "../encoding/jcs.ts";

/**
 * SHA-256 (FIPS 180-4), taken as a parameter to keep the core platform-free. It must return a new 32-byte
 * array on every call and keep no reference to its input, as node:crypto's createHash and noble's sha256
 * do.
 */
export type HashFunction = (data: Uint8Array) => Uint8Array;

/** Bytes of a hash, a key and a node reference. */
export const HASH_SIZE = 32;
/** Depth of the tree: one level per bit of a 32-byte key. */
export const TREE_DEPTH = 256;
/** Bytes of an encoded value: head (32) then length (8, big-endian). */
export const VALUE_SIZE = 40;
/** Longest patient id accepted by patientIndexKey, in UTF-8 bytes. */
export const MAX_PATIENT_ID_BYTES = 256;

/** Prefix of a leaf hash SHA-256(0x02 || key || value): RFC 9162 uses 0x00 and 0x01, we take the next. */
export const MAP_LEAF_PREFIX = 0x02;
/** Prefix of an internal node hash: SHA-256(0x03 || left || right). */
export const MAP_NODE_PREFIX = 0x03;
/** Prefix of the key derivation: key = SHA-256(0x04 || patient id). */
export const MAP_KEY_PREFIX = 0x04;

/**
 * The hash of an empty subtree at every depth, and so the root of the empty map: 32 zero bytes, as Diem's
 * SPARSE_MERKLE_PLACEHOLDER_HASH is a constant. Finding a preimage of it is as hard as inverting SHA-256.
 */
export const EMPTY_HASH: Uint8Array = new Uint8Array(HASH_SIZE);

/** The entry the index keeps for a patient: the head of the patient's chain and the chain's length. */
export interface IndexValue {
  /** SHA-256 id of the patient's latest accepted entry. */
  readonly head: Uint8Array;
  /** Number of accepted entries in the patient's chain, at least 1. */
  readonly length: number;
}

/** A fresh copy of bytes[start, end): Buffer's `slice` returns a view, so `slice` is not relied on. */
export function copyBytes(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end));
}

/** True when the bytes are the empty-subtree hash. */
export function isEmptyHash(hash: Uint8Array): boolean {
  return bytesEqual(hash, EMPTY_HASH);
}

/** Bit `depth` of a key, most significant bit of byte 0 first: 0 goes left, 1 goes right. */
export function keyBit(key: Uint8Array, depth: number): number {
  return (key[depth >> 3]! >> (7 - (depth & 7))) & 1;
}

/** Number of leading bits two keys share (256 when equal). */
export function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < HASH_SIZE; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return TREE_DEPTH;
}

/**
 * The index key of a patient: SHA-256(0x04 || UTF-8 id). Hashing, rather than using a 32-byte id as is,
 * accepts any id format and spreads keys uniformly, so an enrollee who picks an id cannot make anyone's
 * path deep without grinding 2^k hashes for k shared bits.
 */
export function patientIndexKey(hash: HashFunction, patientId: string | Uint8Array): Uint8Array {
  let id: Uint8Array;
  if (typeof patientId === "string") {
    // A lone surrogate would be encoded as U+FFFD, so two different ids would share one key.
    if (!isWellFormedString(patientId)) {
      throw new LedgerError("INVALID_STRING", "patient id contains a lone surrogate");
    }
    id = utf8(patientId);
  } else if (patientId instanceof Uint8Array) {
    id = patientId;
  } else {
    throw new LedgerError("INVALID_ARGUMENT", "patient id must be a string or bytes");
  }
  if (id.length === 0 || id.length > MAX_PATIENT_ID_BYTES) {
    throw new LedgerError("INVALID_ARGUMENT", `patient id must be 1 to ${MAX_PATIENT_ID_BYTES} bytes`);
  }
  const input = new Uint8Array(1 + id.length);
  input[0] = MAP_KEY_PREFIX;
  input.set(id, 1);
  return hash(input);
}

/** Check that a value is a 32-byte key; `code` is the error to raise otherwise. */
export function checkKey(key: unknown, code: ErrorCode = "INVALID_ARGUMENT"): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== HASH_SIZE) {
    throw new LedgerError(code, `index key must be ${HASH_SIZE} bytes`);
  }
  return key;
}

/** Check an IndexValue's fields (head 32 bytes, length a safe integer >= 1), raising `code` otherwise. */
export function checkValue(value: unknown, code: ErrorCode = "INVALID_ARGUMENT"): IndexValue {
  if (typeof value !== "object" || value === null) {
    throw new LedgerError(code, "index value must be an object { head, length }");
  }
  const { head, length } = value as { head?: unknown; length?: unknown };
  if (!(head instanceof Uint8Array) || head.length !== HASH_SIZE) {
    throw new LedgerError(code, `index value head must be ${HASH_SIZE} bytes`);
  }
  // Length 0 is refused: a patient without entries is an absent key, so "empty" has one representation.
  if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 1) {
    throw new LedgerError(code, "index value length must be an integer from 1 to 2^53 - 1");
  }
  return { head, length };
}

/** The fixed 40-byte value layout: head (32) || length as an unsigned 64-bit big-endian integer. */
export function encodeIndexValue(value: IndexValue): Uint8Array {
  const { head, length } = checkValue(value);
  const out = new Uint8Array(VALUE_SIZE);
  out.set(head, 0);
  new DataView(out.buffer).setBigUint64(HASH_SIZE, BigInt(length), false);
  return out;
}

/** Parse the 40-byte value layout; refuses a wrong size, length 0 and lengths above 2^53 - 1. */
export function decodeIndexValue(bytes: Uint8Array): IndexValue {
  if (!(bytes instanceof Uint8Array) || bytes.length !== VALUE_SIZE) {
    throw new LedgerError("MALFORMED_INPUT", `index value must be ${VALUE_SIZE} bytes`);
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(
    HASH_SIZE,
    false,
  );
  if (length < 1n || length > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new LedgerError("MALFORMED_INPUT", "index value length must be from 1 to 2^53 - 1");
  }
  return { head: copyBytes(bytes, 0, HASH_SIZE), length: Number(length) };
}

/**
 * The preimage of a leaf: 0x02 || key || value (73 bytes). It is also the stored form of a leaf node, so a
 * stored node is checked by hashing it.
 */
export function leafPreimage(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + HASH_SIZE + VALUE_SIZE);
  out[0] = MAP_LEAF_PREFIX;
  out.set(key, 1);
  out.set(value, 1 + HASH_SIZE);
  return out;
}

/** The preimage of an internal node: 0x03 || left || right (65 bytes), also its stored form. */
export function nodePreimage(left: Uint8Array, right: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + 2 * HASH_SIZE);
  out[0] = MAP_NODE_PREFIX;
  out.set(left, 1);
  out.set(right, 1 + HASH_SIZE);
  return out;
}

/** Leaf hash SHA-256(0x02 || key || value) of a 32-byte key and a 40-byte encoded value. */
export function leafHash(hash: HashFunction, key: Uint8Array, value: Uint8Array): Uint8Array {
  return hash(leafPreimage(key, value));
}

/** Internal node hash SHA-256(0x03 || left || right). */
export function nodeHash(hash: HashFunction, left: Uint8Array, right: Uint8Array): Uint8Array {
  return hash(nodePreimage(left, right));
}
