/**
 * RFC 9162 section 2.1.1 hashing: leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || left || right),
 * and the hash of the empty tree, SHA-256 of the empty string. The hash function is passed in (the pure
 * core has no crypto of its own): hand it `suite.sha256` from a CryptoSuite.
 */
import { LedgerError } from "../errors.ts";

/**
 * A synchronous SHA-256 (FIPS 180-4). It must return a fresh 32-byte array and must not keep a reference to
 * its input: nodeHash reuses one input buffer across calls.
 */
export type Sha256 = (data: Uint8Array) => Uint8Array;

/** Domain-separation prefix of a leaf hash (RFC 9162 section 2.1.1). */
export const RFC9162_LEAF_PREFIX = 0x00;

/** Domain-separation prefix of an interior node hash (RFC 9162 section 2.1.1). */
export const RFC9162_NODE_PREFIX = 0x01;

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_LENGTH = 32;

// nodeHash is the hot path (every append, proof and verification goes through it): one 65-byte input buffer
// is reused, so a node hash allocates only what the hash function itself returns. Safe because Sha256 is
// synchronous and keeps no reference to its input.
const nodeInput = new Uint8Array(1 + 2 * HASH_LENGTH);
nodeInput[0] = RFC9162_NODE_PREFIX;

// Leaf inputs vary in length; a reusable buffer grows to the largest entry seen up to this bound, beyond
// which a one-off buffer is used so that a single huge entry does not pin memory.
const LEAF_SCRATCH_MAX = 64 * 1024;
let leafScratch = new Uint8Array(256);

/** RFC 9162 section 2.1.1: the leaf hash SHA-256(0x00 || entry). */
export function leafHash(sha: Sha256, entry: Uint8Array): Uint8Array {
  const length = 1 + entry.length;
  if (length > LEAF_SCRATCH_MAX) {
    const input = new Uint8Array(length);
    input[0] = RFC9162_LEAF_PREFIX;
    input.set(entry, 1);
    return checkedDigest(sha(input));
  }
  if (length > leafScratch.length) {
    leafScratch = new Uint8Array(Math.min(LEAF_SCRATCH_MAX, Math.max(length, 2 * leafScratch.length)));
  }
  leafScratch[0] = RFC9162_LEAF_PREFIX;
  leafScratch.set(entry, 1);
  return checkedDigest(sha(leafScratch.subarray(0, length)));
}

/**
 * RFC 9162 section 2.1.1: the interior node hash SHA-256(0x01 || left || right). Both children must be
 * 32 bytes; callers at the trust boundary check lengths first (proofs.ts), so this only guards.
 */
export function nodeHash(sha: Sha256, left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_LENGTH || right.length !== HASH_LENGTH) {
    throw new LedgerError("MALFORMED_INPUT", `a Merkle node child must be ${HASH_LENGTH} bytes`);
  }
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_LENGTH);
  return checkedDigest(sha(nodeInput));
}

/** RFC 9162 section 2.1.1: the hash of the empty tree, MTH({}) = SHA-256(""). */
export function emptyTreeHash(sha: Sha256): Uint8Array {
  return checkedDigest(sha(new Uint8Array(0)));
}

function checkedDigest(digest: Uint8Array): Uint8Array {
  if (digest.length !== HASH_LENGTH) {
    throw new LedgerError(
      "INTERNAL",
      `the hash function returned ${digest.length} bytes, not ${HASH_LENGTH}`,
    );
  }
  return digest;
}
