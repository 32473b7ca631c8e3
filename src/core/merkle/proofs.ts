/**
 * RFC 9162 Merkle proofs: generation of inclusion proofs (section 2.1.3.1, PATH) and consistency proofs
 * (section 2.1.4.1, PROOF/SUBPROOF) from stored node hashes, and their verification (sections 2.1.3.2 and
 * 2.1.4.2), written step by step after the RFC text.
 *
 * Tree sizes and leaf indices are bigint at the API, anywhere in 0..2^64-1 (RFC 9162 sizes are uint64). The
 * verifiers split them once into two 32-bit halves and run the RFC loops on plain numbers, so that no bigint
 * is allocated in the hashing loop and no 32-bit shift ever truncates an index above 2^32.
 */
import { bytesEqual } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import { HASH_LENGTH, emptyTreeHash, nodeHash } from "./hash.ts";
import type { Sha256 } from "./hash.ts";

/** The most hashes an inclusion proof may carry: a tree of < 2^64 leaves is at most 64 levels high. */
export const MAX_PROOF_HASHES = 64;

/**
 * The most hashes a consistency proof may carry: a 64-level path plus the seed hash (the root of the largest
 * perfect subtree on the old tree's right edge, RFC 9162 section 2.1.4.1). Reached, for example, from size
 * 2^63 + 5 to size 2^64 - 1.
 */
export const MAX_CONSISTENCY_PROOF_HASHES = 65;

/** The largest tree size RFC 9162 can express (a uint64). */
export const MAX_TREE_SIZE = (1n << 64n) - 1n;

/** A stored node: the root of the perfect subtree of 2^level leaves that starts at leaf index * 2^level. */
export interface NodeId {
  readonly level: number;
  readonly index: bigint;
}

/** Read access to the stored node hashes of a tree (level 0 holds the leaf hashes). */
export interface MerkleNodeReader {
  /** The hash of node (level, index), or undefined when it is not stored. */
  get(level: number, index: bigint): Uint8Array | undefined;
  /** Optional batched read, in the order asked (one round trip for a database adapter). */
  getMany?(ids: readonly NodeId[]): readonly (Uint8Array | undefined)[];
}

/** A leaf range [start, end) whose Merkle Tree Hash (RFC 9162 section 2.1.1) is a proof element. */
export type LeafRange = readonly [start: bigint, end: bigint];

/** The inputs of an inclusion proof check (RFC 9162 section 2.1.3.2). */
export interface InclusionProofInput {
  /** Index of the leaf, 0-based. */
  readonly index: bigint;
  /** Size of the tree the proof is for. */
  readonly size: bigint;
  /** The leaf hash, SHA-256(0x00 || entry). */
  readonly leafHash: Uint8Array;
  /** The inclusion path, lowest level first, at most 64 hashes of 32 bytes. */
  readonly proof: readonly Uint8Array[];
}

/** The inputs of an inclusion proof check against a known root. */
export interface InclusionCheck extends InclusionProofInput {
  /** The root hash of the tree of `size` leaves. */
  readonly root: Uint8Array;
}

/** The inputs of a consistency proof check (RFC 9162 section 2.1.4.2). */
export interface ConsistencyCheck {
  /** Size of the earlier tree ("first"). */
  readonly size1: bigint;
  /** Size of the later tree ("second"). */
  readonly size2: bigint;
  /** Root of the earlier tree ("first_hash"). */
  readonly root1: Uint8Array;
  /** Root of the later tree ("second_hash"). */
  readonly root2: Uint8Array;
  /** The consistency path, at most 64 hashes of 32 bytes. */
  readonly proof: readonly Uint8Array[];
}

// ---------------------------------------------------------------------------------------------------------
// Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2)
// ---------------------------------------------------------------------------------------------------------

/**
 * RFC 9162 section 2.1.3.2 steps 1-4: the root hash an inclusion proof leads to. Throws INDEX_OUT_OF_RANGE
 * when index >= size, MALFORMED_INPUT for a hash that is not 32 bytes, PROOF_INVALID for a path of the wrong
 * length.
 */
export function rootFromInclusionProof(sha: Sha256, input: InclusionProofInput): Uint8Array {
  const { index, size, leafHash, proof } = input;
  checkTreeSize("tree size", size);
  checkTreeSize("leaf index", index);
  // Step 1: the index must be inside the tree.
  if (index >= size) {
    throw new LedgerError("INDEX_OUT_OF_RANGE", `leaf index ${index} is not below the tree size ${size}`);
  }
  checkHash("leaf hash", leafHash);
  checkProof(proof, MAX_PROOF_HASHES);

  // Step 2: fn = leaf_index, sn = tree_size - 1, each as (high, low) 32-bit halves.
  const last = size - 1n;
  let fnHi = high32(index);
  let fnLo = low32(index);
  let snHi = high32(last);
  let snLo = low32(last);
  // Step 3.
  let r = leafHash;
  // Step 4.
  for (let i = 0; i < proof.length; i++) {
    const p = proof[i]!;
    // 4a: the path is longer than the tree is high.
    if ((snHi | snLo) === 0) {
      throw new LedgerError(
        "PROOF_INVALID",
        `inclusion proof has ${proof.length} hashes, more than the path`,
      );
    }
    if ((fnLo & 1) === 1 || (fnLo === snLo && fnHi === snHi)) {
      // 4b: p is a left sibling.
      r = nodeHash(sha, p, r);
      if ((fnLo & 1) === 0) {
        // Skip the levels where this node is the only child on the right border.
        while ((fnLo & 1) === 0 && (fnHi | fnLo) !== 0) {
          fnLo = ((fnLo >>> 1) | (fnHi << 31)) >>> 0;
          fnHi = fnHi >>> 1;
          snLo = ((snLo >>> 1) | (snHi << 31)) >>> 0;
          snHi = snHi >>> 1;
        }
      }
    } else {
      // 4b otherwise: p is a right sibling.
      r = nodeHash(sha, r, p);
    }
    // 4c.
    fnLo = ((fnLo >>> 1) | (fnHi << 31)) >>> 0;
    fnHi = fnHi >>> 1;
    snLo = ((snLo >>> 1) | (snHi << 31)) >>> 0;
    snHi = snHi >>> 1;
  }
  // Step 5 (first half): sn must be 0, or the path was too short.
  if ((snHi | snLo) !== 0) {
    throw new LedgerError("PROOF_INVALID", `inclusion proof has ${proof.length} hashes, fewer than the path`);
  }
  return r;
}

/**
 * RFC 9162 section 2.1.3.2: verify that the leaf hash is at `index` in the tree of `size` leaves with root
 * `root`. Returns the verified root; throws PROOF_INVALID (or INDEX_OUT_OF_RANGE, INVALID_ARGUMENT,
 * MALFORMED_INPUT) otherwise.
 */
export function verifyInclusion(sha: Sha256, check: InclusionCheck): Uint8Array {
  checkHash("root", check.root);
  const computed = rootFromInclusionProof(sha, check);
  // Step 5 (second half): r must equal the root hash.
  if (!bytesEqual(computed, check.root)) {
    throw new LedgerError(
      "PROOF_INVALID",
      `inclusion proof for leaf ${check.index} does not lead to the root of the tree of size ${check.size}`,
    );
  }
  return check.root;
}

/**
 * RFC 9162 section 2.1.4.2: verify that the tree of size1 leaves with root1 is a prefix of the tree of size2
 * leaves with root2. Returns root2. Equal sizes need an empty proof and equal roots. size1 = 0 is refused
 * (INVALID_ARGUMENT): the RFC defines the proof only for 0 < first, and the empty tree is a prefix of every
 * tree, so a client moving on from size 0 has nothing to verify.
 */
export function verifyConsistency(sha: Sha256, check: ConsistencyCheck): Uint8Array {
  const { size1, size2, root1, root2, proof } = check;
  checkTreeSize("size1", size1);
  checkTreeSize("size2", size2);
  checkProof(proof, MAX_CONSISTENCY_PROOF_HASHES);
  if (size1 > size2) {
    throw new LedgerError("INVALID_ARGUMENT", `size1 ${size1} is greater than size2 ${size2}`);
  }
  if (size1 === 0n) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      "a consistency proof from the empty tree is meaningless (RFC 9162 section 2.1.4.2 requires 0 < first)",
    );
  }
  if (size1 === size2) {
    // Equal sizes compare the roots as given, whatever their length, as the reference implementation
    // (transparency-dev/merkle) does and its vectors expect: nothing is hashed, so nothing can be forged.
    if (proof.length !== 0) {
      throw new LedgerError("PROOF_INVALID", "consistency proof between equal sizes must be empty");
    }
    if (!(root1 instanceof Uint8Array) || !(root2 instanceof Uint8Array)) {
      throw new LedgerError("MALFORMED_INPUT", "roots must be byte arrays");
    }
    if (!bytesEqual(root1, root2)) {
      throw new LedgerError("PROOF_INVALID", `two different roots for the same tree size ${size1}`);
    }
    return root2;
  }

  checkHash("root1", root1);
  checkHash("root2", root2);
  // Step 1.
  if (proof.length === 0) {
    throw new LedgerError("PROOF_INVALID", "consistency proof is empty");
  }
  // Step 2: when first is a power of 2 its root is a node of the second tree and starts the path.
  const first = size1;
  const path: readonly Uint8Array[] = (first & (first - 1n)) === 0n ? [root1, ...proof] : proof;
  // Step 3: fn = first - 1, sn = second - 1, as (high, low) 32-bit halves.
  const fnBig = first - 1n;
  const snBig = size2 - 1n;
  let fnHi = high32(fnBig);
  let fnLo = low32(fnBig);
  let snHi = high32(snBig);
  let snLo = low32(snBig);
  // Step 4.
  while ((fnLo & 1) === 1) {
    fnLo = ((fnLo >>> 1) | (fnHi << 31)) >>> 0;
    fnHi = fnHi >>> 1;
    snLo = ((snLo >>> 1) | (snHi << 31)) >>> 0;
    snHi = snHi >>> 1;
  }
  // Step 5.
  let fr = path[0]!;
  let sr = fr;
  // Step 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    // 6a: the path is longer than the tree is high.
    if ((snHi | snLo) === 0) {
      throw new LedgerError(
        "PROOF_INVALID",
        `consistency proof has ${proof.length} hashes, more than the path`,
      );
    }
    if ((fnLo & 1) === 1 || (fnLo === snLo && fnHi === snHi)) {
      // 6b: c is a left sibling shared by both trees.
      fr = nodeHash(sha, c, fr);
      sr = nodeHash(sha, c, sr);
      if ((fnLo & 1) === 0) {
        while ((fnLo & 1) === 0 && (fnHi | fnLo) !== 0) {
          fnLo = ((fnLo >>> 1) | (fnHi << 31)) >>> 0;
          fnHi = fnHi >>> 1;
          snLo = ((snLo >>> 1) | (snHi << 31)) >>> 0;
          snHi = snHi >>> 1;
        }
      }
    } else {
      // 6b otherwise: c is a right sibling that only the second tree has.
      sr = nodeHash(sha, sr, c);
    }
    // 6c.
    fnLo = ((fnLo >>> 1) | (fnHi << 31)) >>> 0;
    fnHi = fnHi >>> 1;
    snLo = ((snLo >>> 1) | (snHi << 31)) >>> 0;
    snHi = snHi >>> 1;
  }
  // Step 7.
  if ((snHi | snLo) !== 0) {
    throw new LedgerError(
      "PROOF_INVALID",
      `consistency proof has ${proof.length} hashes, fewer than the path`,
    );
  }
  if (!bytesEqual(fr, root1)) {
    throw new LedgerError("PROOF_INVALID", `consistency proof does not lead to the root of size ${size1}`);
  }
  if (!bytesEqual(sr, root2)) {
    throw new LedgerError("PROOF_INVALID", `consistency proof does not lead to the root of size ${size2}`);
  }
  return root2;
}

// ---------------------------------------------------------------------------------------------------------
// Generation (RFC 9162 sections 2.1.3.1 and 2.1.4.1) from stored nodes
// ---------------------------------------------------------------------------------------------------------

/**
 * RFC 9162 section 2.1.3.1 PATH(m, D[n]): the leaf ranges whose Merkle Tree Hashes form the inclusion
 * proof of leaf `index` in a tree of `size` leaves, lowest level first. The RFC recursion, unrolled top-down.
 */
export function inclusionProofRanges(index: bigint, size: bigint): LeafRange[] {
  checkTreeSize("tree size", size);
  checkTreeSize("leaf index", index);
  if (index >= size) {
    throw new LedgerError("INDEX_OUT_OF_RANGE", `leaf index ${index} is not below the tree size ${size}`);
  }
  const siblings: LeafRange[] = [];
  let start = 0n;
  let end = size;
  while (end - start > 1n) {
    const k = largestPowerOfTwoBelow(end - start);
    if (index < start + k) {
      // PATH(m, D[0:k]) : MTH(D[k:n])
      siblings.push([start + k, end]);
      end = start + k;
    } else {
      // PATH(m - k, D[k:n]) : MTH(D[0:k])
      siblings.push([start, start + k]);
      start += k;
    }
  }
  return siblings.reverse();
}

/**
 * RFC 9162 section 2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true): the leaf ranges whose Merkle Tree Hashes
 * form the consistency proof from size1 to size2, in proof order. Empty when size1 is 0 or equals size2
 * (nothing to prove; the verifier takes those cases without a proof).
 */
export function consistencyProofRanges(size1: bigint, size2: bigint): LeafRange[] {
  checkTreeSize("size1", size1);
  checkTreeSize("size2", size2);
  if (size1 > size2) {
    throw new LedgerError("INVALID_ARGUMENT", `size1 ${size1} is greater than size2 ${size2}`);
  }
  if (size1 === 0n || size1 === size2) return [];
  const siblings: LeafRange[] = [];
  let start = 0n;
  let end = size2;
  let complete = true; // the RFC's b: is this subtree the whole of the earlier tree so far?
  let base: LeafRange | undefined;
  for (;;) {
    if (size1 === end) {
      // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}.
      if (!complete) base = [start, end];
      break;
    }
    const k = largestPowerOfTwoBelow(end - start);
    if (size1 <= start + k) {
      // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
      siblings.push([start + k, end]);
      end = start + k;
    } else {
      // SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
      siblings.push([start, start + k]);
      start += k;
      complete = false;
    }
  }
  siblings.reverse();
  return base === undefined ? siblings : [base, ...siblings];
}

/**
 * The stored nodes whose hashes make up MTH(D[start:end]) (RFC 9162 section 2.1.1), left to right: one per
 * set bit of end - start, so at most 64. Every range a proof or root needs starts at a multiple of its
 * largest piece, which is what makes each piece a stored perfect subtree.
 */
export function rangeNodeIds(range: LeafRange): NodeId[] {
  let [start] = range;
  const end = range[1];
  if (start < 0n || end <= start || end > MAX_TREE_SIZE) {
    throw new LedgerError("INVALID_ARGUMENT", `empty or out-of-range leaf range [${start}, ${end})`);
  }
  const ids: NodeId[] = [];
  let remaining = end - start;
  while (remaining > 0n) {
    const level = bitLength(remaining) - 1;
    const width = 1n << BigInt(level);
    if (start % width !== 0n) {
      throw new LedgerError("INTERNAL", `leaf range [${range[0]}, ${end}) is not aligned to stored nodes`);
    }
    ids.push({ level, index: start / width });
    start += width;
    remaining -= width;
  }
  return ids;
}

/** MTH(D[start:end]) for each range, folded from the stored nodes (read in one batch when the reader can). */
export function hashRanges(
  sha: Sha256,
  reader: MerkleNodeReader,
  ranges: readonly LeafRange[],
): Uint8Array[] {
  const perRange = ranges.map(rangeNodeIds);
  const ids = perRange.flat();
  const hashes = readNodes(reader, ids);
  const out: Uint8Array[] = [];
  let at = 0;
  for (const rangeIds of perRange) {
    const first = at;
    at += rangeIds.length;
    // RFC 9162 section 2.1.1: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])), folded from the right.
    let h = hashes[at - 1]!;
    for (let i = at - 2; i >= first; i--) h = nodeHash(sha, hashes[i]!, h);
    // A single stored node is handed out as a copy, so that callers can never write into the store.
    out.push(at - first === 1 ? copyHash(h) : h);
  }
  return out;
}

/** RFC 9162 section 2.1.1: the root MTH(D[size]) of the first `size` leaves, from O(log size) nodes. */
export function rootFromNodes(sha: Sha256, reader: MerkleNodeReader, size: bigint): Uint8Array {
  checkTreeSize("tree size", size);
  if (size === 0n) return emptyTreeHash(sha);
  return hashRanges(sha, reader, [[0n, size]])[0]!;
}

/** RFC 9162 section 2.1.3.1: the inclusion proof of leaf `index` in the tree of `size` leaves. */
export function inclusionProofFromNodes(
  sha: Sha256,
  reader: MerkleNodeReader,
  index: bigint,
  size: bigint,
): Uint8Array[] {
  return hashRanges(sha, reader, inclusionProofRanges(index, size));
}

/** RFC 9162 section 2.1.4.1: the consistency proof from the tree of size1 leaves to that of size2. */
export function consistencyProofFromNodes(
  sha: Sha256,
  reader: MerkleNodeReader,
  size1: bigint,
  size2: bigint,
): Uint8Array[] {
  return hashRanges(sha, reader, consistencyProofRanges(size1, size2));
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/** Number of bits of a value in 0..2^64-1 (0 for 0), without building a string. */
export function bitLength(x: bigint): number {
  const hi = high32(x);
  return hi !== 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(low32(x));
}

/** The largest power of two strictly below n (n >= 2): the RFC's split point k (section 2.1.1). */
export function largestPowerOfTwoBelow(n: bigint): bigint {
  return 1n << BigInt(bitLength(n - 1n) - 1);
}

function readNodes(reader: MerkleNodeReader, ids: readonly NodeId[]): Uint8Array[] {
  const got = reader.getMany ? reader.getMany(ids) : ids.map((id) => reader.get(id.level, id.index));
  if (got.length !== ids.length) {
    throw new LedgerError(
      "INCONSISTENT_TREE",
      `node store returned ${got.length} hashes for ${ids.length} nodes`,
    );
  }
  return ids.map((id, i) => {
    const h = got[i];
    if (!(h instanceof Uint8Array) || h.length !== HASH_LENGTH) {
      throw new LedgerError(
        "INCONSISTENT_TREE",
        `node (level ${id.level}, index ${id.index}) is missing from the node store or is not ${HASH_LENGTH} bytes`,
      );
    }
    return h;
  });
}

function copyHash(h: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_LENGTH);
  out.set(h);
  return out;
}

function high32(x: bigint): number {
  return Number(x >> 32n);
}

function low32(x: bigint): number {
  return Number(x & 0xffffffffn);
}

function checkTreeSize(name: string, value: unknown): void {
  if (typeof value !== "bigint" || value < 0n || value > MAX_TREE_SIZE) {
    throw new LedgerError("INVALID_ARGUMENT", `${name} must be a bigint in 0..2^64-1`);
  }
}

function checkHash(name: string, value: unknown): void {
  if (!(value instanceof Uint8Array) || value.length !== HASH_LENGTH) {
    throw new LedgerError("MALFORMED_INPUT", `${name} must be ${HASH_LENGTH} bytes`);
  }
}

function checkProof(proof: unknown, max: number): void {
  if (!Array.isArray(proof)) {
    throw new LedgerError("MALFORMED_INPUT", "proof must be an array of hashes");
  }
  const items: readonly unknown[] = proof;
  if (items.length > max) {
    throw new LedgerError("PROOF_INVALID", `proof has ${items.length} hashes, more than ${max}`);
  }
  for (let i = 0; i < items.length; i++) checkHash(`proof hash ${i}`, items[i]);
}
