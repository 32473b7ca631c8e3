/**
 * Proofs of the verifiable patient index: membership (this key has this value under this root) and
 * non-membership (this key has no value under this root), their pure verifiers, a compact binary encoding
 * and a JSON form. Byte layouts are in docs/patient-index.md.
 *
 * A proof lists the siblings of the path from the root down to the node where the key's path ends (the
 * key's own leaf, another key's leaf, or an empty subtree). Empty siblings are left out and marked by a
 * zero bit in a bitmap, so a proof in an index of n random keys carries about log2(n) hashes, never more
 * than 256.
 */
import { LedgerError } from "../errors.ts";
import type { ErrorCode } from "../errors.ts";
import { bytesEqual, fromBase64, toBase64 } from "../encoding/bytes.ts";
import {
  EMPTY_HASH,
  HASH_SIZE,
  TREE_DEPTH,
  VALUE_SIZE,
  checkKey,
  checkValue,
  commonPrefixBits,
  copyBytes,
  decodeIndexValue,
  encodeIndexValue,
  isEmptyHash,
  keyBit,
  MAP_NODE_PREFIX,
  leafHash,
} from "./hashing.ts";
import type { HashFunction, IndexValue } from "./hashing.ts";

/** A key and its value, as found in a leaf. */
export interface IndexLeaf {
  readonly key: Uint8Array;
  readonly value: IndexValue;
}

/** The path part shared by both proof types. */
interface ProofPath {
  /** Number of levels from the root to the node where the key's path ends, 0 to 256. */
  readonly depth: number;
  /** ceil(depth / 8) bytes; bit i (most significant first) is 1 when the sibling at level i is not empty. */
  readonly bitmap: Uint8Array;
  /** The non-empty siblings, 32 bytes each, from the root's child level downwards. */
  readonly siblings: readonly Uint8Array[];
}

/** Proof that a key has a given value under a root. */
export interface MembershipProof extends ProofPath {
  readonly type: "membership";
}

/** Proof that a key has no value under a root. */
export interface NonMembershipProof extends ProofPath {
  readonly type: "non-membership";
  /** The other key's leaf where the key's path ends, or null when it ends in an empty subtree. */
  readonly leaf: IndexLeaf | null;
}

/** Either proof. */
export type IndexProof = MembershipProof | NonMembershipProof;

/** The JSON form of a proof: byte strings in standard padded base64. */
export type IndexProofJson =
  | { type: "membership"; depth: number; bitmap: string; siblings: string[] }
  | {
      type: "non-membership";
      depth: number;
      bitmap: string;
      siblings: string[];
      leaf: { key: string; head: string; length: number } | null;
    };

const TYPE_MEMBERSHIP = 0x01;
const TYPE_NON_MEMBERSHIP = 0x02;
const TERMINAL_EMPTY = 0x00;
const TERMINAL_LEAF = 0x01;

/** Largest encoded proof: type, depth, a full bitmap, 256 siblings, and a terminal leaf. */
export const MAX_PROOF_BYTES = 1 + 2 + TREE_DEPTH / 8 + TREE_DEPTH * HASH_SIZE + 1 + HASH_SIZE + VALUE_SIZE;

type CheckCode = Extract<ErrorCode, "PROOF_INVALID" | "MALFORMED_INPUT">;

function fail(code: CheckCode, message: string): never {
  throw new LedgerError(code, `patient index proof: ${message}`);
}

function popcount(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) {
    let x = b;
    while (x !== 0) {
      x &= x - 1;
      n++;
    }
  }
  return n;
}

/**
 * Check the path fields of a proof of any provenance, so that a hostile object ends in a LedgerError and
 * never in a TypeError. Also refuses what a correct prover never emits: an explicit empty sibling (the
 * bitmap says "empty") and, below the root, an empty deepest sibling (a leaf or an empty subtree is never
 * the only non-empty child of its parent: the parent would be that leaf, or empty).
 */
function checkPath(proof: ProofPath, code: CheckCode): void {
  const { depth, bitmap, siblings } = proof;
  if (typeof depth !== "number" || !Number.isInteger(depth) || depth < 0 || depth > TREE_DEPTH) {
    fail(code, `depth must be an integer from 0 to ${TREE_DEPTH}`);
  }
  if (!(bitmap instanceof Uint8Array) || bitmap.length !== Math.ceil(depth / 8)) {
    fail(code, "bitmap must be ceil(depth / 8) bytes");
  }
  if (depth % 8 !== 0 && (bitmap[bitmap.length - 1]! & (0xff >> (depth % 8))) !== 0) {
    fail(code, "bitmap has bits set past the depth");
  }
  if (!Array.isArray(siblings) || siblings.length !== popcount(bitmap)) {
    fail(code, "number of siblings does not match the bitmap");
  }
  for (const sibling of siblings as unknown[]) {
    if (!(sibling instanceof Uint8Array) || sibling.length !== HASH_SIZE)
      fail(code, "sibling must be 32 bytes");
    if (isEmptyHash(sibling)) fail(code, "an empty sibling must be left out and marked 0 in the bitmap");
  }
  if (depth > 0 && keyBit(bitmap, depth - 1) === 0) fail(code, "the deepest sibling cannot be empty");
}

function checkLeaf(leaf: unknown, code: CheckCode): IndexLeaf | null {
  if (leaf === null) return null;
  if (typeof leaf !== "object") fail(code, "leaf must be an object or null");
  const { key, value } = leaf as { key?: unknown; value?: unknown };
  return { key: checkKey(key, code), value: checkValue(value, code) };
}

/**
 * Fold the path up from the terminal node's hash to the root it implies. One preimage buffer serves every
 * level (a hash function reads its input and keeps none of it), so verifying allocates little.
 */
function rootFromPath(
  hash: HashFunction,
  key: Uint8Array,
  proof: ProofPath,
  terminal: Uint8Array,
): Uint8Array {
  const preimage = new Uint8Array(1 + 2 * HASH_SIZE);
  preimage[0] = MAP_NODE_PREFIX;
  let h = terminal;
  let next = proof.siblings.length - 1;
  for (let level = proof.depth - 1; level >= 0; level--) {
    const sibling = keyBit(proof.bitmap, level) === 1 ? proof.siblings[next--]! : EMPTY_HASH;
    const right = keyBit(key, level) === 1;
    preimage.set(right ? sibling : h, 1);
    preimage.set(right ? h : sibling, 1 + HASH_SIZE);
    h = hash(preimage);
  }
  return h;
}

function checkRootAndType(root: unknown, proof: unknown, type: IndexProof["type"]): void {
  if (!(root instanceof Uint8Array) || root.length !== HASH_SIZE)
    fail("PROOF_INVALID", "root must be 32 bytes");
  if (typeof proof !== "object" || proof === null || (proof as { type?: unknown }).type !== type) {
    fail("PROOF_INVALID", `not a ${type} proof`);
  }
}

/** Verify that `key` maps to `value` under `root`; throws LedgerError PROOF_INVALID on any mismatch. */
export function verifyMembership(
  hash: HashFunction,
  root: Uint8Array,
  key: Uint8Array,
  value: IndexValue,
  proof: MembershipProof,
): void {
  checkRootAndType(root, proof, "membership");
  checkPath(proof, "PROOF_INVALID");
  checkKey(key, "PROOF_INVALID");
  const encoded = encodeIndexValue(checkValue(value, "PROOF_INVALID"));
  if (!bytesEqual(rootFromPath(hash, key, proof, leafHash(hash, key, encoded)), root)) {
    fail("PROOF_INVALID", "membership proof does not lead to the root");
  }
}

/** Verify that `key` has no value under `root`; throws LedgerError PROOF_INVALID on any mismatch. */
export function verifyNonMembership(
  hash: HashFunction,
  root: Uint8Array,
  key: Uint8Array,
  proof: NonMembershipProof,
): void {
  checkRootAndType(root, proof, "non-membership");
  checkPath(proof, "PROOF_INVALID");
  checkKey(key, "PROOF_INVALID");
  const leaf = checkLeaf((proof as { leaf?: unknown }).leaf, "PROOF_INVALID");
  let terminal = EMPTY_HASH;
  if (leaf !== null) {
    // The other leaf must sit on the key's path (share its first `depth` bits) and be another key:
    // then no leaf for `key` can exist under the root, since a subtree holding one leaf holds nothing else.
    const shared = commonPrefixBits(leaf.key, key);
    if (shared === TREE_DEPTH) fail("PROOF_INVALID", "the proof's leaf is the key itself");
    if (shared < proof.depth) fail("PROOF_INVALID", "the proof's leaf is not on the key's path");
    terminal = leafHash(hash, leaf.key, encodeIndexValue(leaf.value));
  }
  if (!bytesEqual(rootFromPath(hash, key, proof, terminal), root)) {
    fail("PROOF_INVALID", "non-membership proof does not lead to the root");
  }
}

/**
 * Compact binary encoding: type (1: 0x01 membership, 0x02 non-membership) || depth (2, big-endian) ||
 * bitmap (ceil(depth/8)) || siblings (32 each) || for non-membership a terminal: 0x00 (empty) or
 * 0x01 || key (32) || value (40).
 */
export function encodeIndexProof(proof: IndexProof): Uint8Array {
  checkPath(proof, "MALFORMED_INPUT");
  const leaf = proof.type === "non-membership" ? checkLeaf(proof.leaf, "MALFORMED_INPUT") : null;
  const terminalSize = proof.type === "membership" ? 0 : leaf === null ? 1 : 1 + HASH_SIZE + VALUE_SIZE;
  const out = new Uint8Array(3 + proof.bitmap.length + proof.siblings.length * HASH_SIZE + terminalSize);
  out[0] = proof.type === "membership" ? TYPE_MEMBERSHIP : TYPE_NON_MEMBERSHIP;
  out[1] = proof.depth >> 8;
  out[2] = proof.depth & 0xff;
  out.set(proof.bitmap, 3);
  let at = 3 + proof.bitmap.length;
  for (const sibling of proof.siblings) {
    out.set(sibling, at);
    at += HASH_SIZE;
  }
  if (proof.type === "non-membership") {
    if (leaf === null) {
      out[at] = TERMINAL_EMPTY;
    } else {
      out[at] = TERMINAL_LEAF;
      out.set(leaf.key, at + 1);
      out.set(encodeIndexValue(leaf.value), at + 1 + HASH_SIZE);
    }
  }
  return out;
}

/** Parse the binary encoding strictly: every length checked, no trailing byte; MALFORMED_INPUT otherwise. */
export function decodeIndexProof(bytes: Uint8Array): IndexProof {
  if (!(bytes instanceof Uint8Array) || bytes.length < 3 || bytes.length > MAX_PROOF_BYTES) {
    fail("MALFORMED_INPUT", `encoded proof must be 3 to ${MAX_PROOF_BYTES} bytes`);
  }
  const type = bytes[0];
  if (type !== TYPE_MEMBERSHIP && type !== TYPE_NON_MEMBERSHIP) fail("MALFORMED_INPUT", "unknown proof type");
  const depth = (bytes[1]! << 8) | bytes[2]!;
  if (depth > TREE_DEPTH) fail("MALFORMED_INPUT", `depth must be at most ${TREE_DEPTH}`);
  const bitmapEnd = 3 + Math.ceil(depth / 8);
  if (bytes.length < bitmapEnd) fail("MALFORMED_INPUT", "truncated bitmap");
  const bitmap = copyBytes(bytes, 3, bitmapEnd);
  const siblingsEnd = bitmapEnd + popcount(bitmap) * HASH_SIZE;
  if (bytes.length < siblingsEnd) fail("MALFORMED_INPUT", "truncated siblings");
  const siblings: Uint8Array[] = [];
  for (let at = bitmapEnd; at < siblingsEnd; at += HASH_SIZE)
    siblings.push(copyBytes(bytes, at, at + HASH_SIZE));
  let proof: IndexProof;
  if (type === TYPE_MEMBERSHIP) {
    if (bytes.length !== siblingsEnd) fail("MALFORMED_INPUT", "trailing bytes after a membership proof");
    proof = { type: "membership", depth, bitmap, siblings };
  } else {
    const terminal = bytes[siblingsEnd];
    let leaf: IndexLeaf | null = null;
    if (terminal === TERMINAL_EMPTY) {
      if (bytes.length !== siblingsEnd + 1) fail("MALFORMED_INPUT", "wrong length after an empty terminal");
    } else if (terminal === TERMINAL_LEAF) {
      if (bytes.length !== siblingsEnd + 1 + HASH_SIZE + VALUE_SIZE) {
        fail("MALFORMED_INPUT", "wrong length of the terminal leaf");
      }
      const keyStart = siblingsEnd + 1;
      leaf = {
        key: copyBytes(bytes, keyStart, keyStart + HASH_SIZE),
        value: decodeIndexValue(bytes.subarray(keyStart + HASH_SIZE)),
      };
    } else {
      fail("MALFORMED_INPUT", "unknown or missing terminal");
    }
    proof = { type: "non-membership", depth, bitmap, siblings, leaf };
  }
  checkPath(proof, "MALFORMED_INPUT");
  return proof;
}

/** The JSON form of a proof (base64 byte strings), for the HTTP API. */
export function indexProofToJson(proof: IndexProof): IndexProofJson {
  checkPath(proof, "MALFORMED_INPUT");
  const path = {
    depth: proof.depth,
    bitmap: toBase64(proof.bitmap),
    siblings: proof.siblings.map((s) => toBase64(s)),
  };
  if (proof.type === "membership") return { type: "membership", ...path };
  const leaf = checkLeaf(proof.leaf, "MALFORMED_INPUT");
  return {
    type: "non-membership",
    ...path,
    leaf:
      leaf === null
        ? null
        : { key: toBase64(leaf.key), head: toBase64(leaf.value.head), length: leaf.value.length },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkMembers(value: Record<string, unknown>, names: readonly string[], what: string): void {
  const keys = Object.keys(value);
  if (keys.length !== names.length || !names.every((n) => Object.hasOwn(value, n))) {
    fail("MALFORMED_INPUT", `${what} must have exactly the members ${names.join(", ")}`);
  }
}

function bytesMember(value: unknown, what: string, size?: number): Uint8Array {
  if (typeof value !== "string") fail("MALFORMED_INPUT", `${what} must be a base64 string`);
  // Bound the text before decoding it: no member is longer than a full bitmap or one hash.
  if (value.length > 4 * Math.ceil(HASH_SIZE / 3)) fail("MALFORMED_INPUT", `${what} is too long`);
  const bytes = fromBase64(value);
  if (size !== undefined && bytes.length !== size) fail("MALFORMED_INPUT", `${what} must be ${size} bytes`);
  return bytes;
}

/**
 * Parse the JSON form of a proof (an already parsed JSON value) strictly: exact members, canonical base64,
 * every size checked; MALFORMED_INPUT on anything else.
 */
export function indexProofFromJson(json: unknown): IndexProof {
  if (!isPlainObject(json)) fail("MALFORMED_INPUT", "must be a JSON object");
  const type = json["type"];
  if (type === "membership") checkMembers(json, ["type", "depth", "bitmap", "siblings"], "membership proof");
  else if (type === "non-membership") {
    checkMembers(json, ["type", "depth", "bitmap", "siblings", "leaf"], "non-membership proof");
  } else fail("MALFORMED_INPUT", "type must be membership or non-membership");
  const depth = json["depth"];
  if (typeof depth !== "number" || !Number.isInteger(depth) || depth < 0 || depth > TREE_DEPTH) {
    fail("MALFORMED_INPUT", `depth must be an integer from 0 to ${TREE_DEPTH}`);
  }
  const bitmap = bytesMember(json["bitmap"], "bitmap");
  const rawSiblings = json["siblings"];
  if (!Array.isArray(rawSiblings) || rawSiblings.length > TREE_DEPTH) {
    fail("MALFORMED_INPUT", `siblings must be an array of at most ${TREE_DEPTH} strings`);
  }
  const siblings = (rawSiblings as unknown[]).map((s) => bytesMember(s, "sibling", HASH_SIZE));
  let proof: IndexProof;
  if (type === "membership") {
    proof = { type, depth, bitmap, siblings };
  } else {
    const rawLeaf = json["leaf"];
    let leaf: IndexLeaf | null = null;
    if (rawLeaf !== null) {
      if (!isPlainObject(rawLeaf)) fail("MALFORMED_INPUT", "leaf must be an object or null");
      checkMembers(rawLeaf, ["key", "head", "length"], "leaf");
      const length = rawLeaf["length"];
      if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 1) {
        fail("MALFORMED_INPUT", "leaf length must be an integer from 1 to 2^53 - 1");
      }
      leaf = {
        key: bytesMember(rawLeaf["key"], "leaf key", HASH_SIZE),
        value: { head: bytesMember(rawLeaf["head"], "leaf head", HASH_SIZE), length },
      };
    }
    proof = { type: "non-membership", depth, bitmap, siblings, leaf };
  }
  checkPath(proof, "MALFORMED_INPUT");
  return proof;
}
