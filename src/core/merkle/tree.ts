/**
 * An incremental RFC 9162 Merkle tree over a node store.
 *
 * Storage is a "compact range" / tiled-log layout: every full-subtree node hash is written once, keyed by
 * (level, index), when its 2^level leaves are complete, and never changes afterwards. Level 0 holds the leaf
 * hashes. The tree keeps in memory only the right frontier: the roots of the perfect subtrees that make up
 * the current size (one per set bit of the size, at most 64). Appending leaf n therefore hashes the leaf and
 * then merges it with as many frontier roots as n has trailing one bits (amortised 1, at most log2 n), writes
 * each new node, and reads nothing from the store. Past roots and proofs for any size up to the current one
 * are assembled from O(log n) stored nodes (see proofs.ts).
 */
import { LedgerError } from "../errors.ts";
import { HASH_LENGTH, emptyTreeHash, leafHash, nodeHash } from "./hash.ts";
import type { Sha256 } from "./hash.ts";
import { consistencyProofFromNodes, inclusionProofFromNodes, rootFromNodes } from "./proofs.ts";
import type { MerkleNodeReader } from "./proofs.ts";

/** Where node hashes live: synchronous, and written only with complete, immutable nodes. */
export interface MerkleNodeStore extends MerkleNodeReader {
  /** Store the hash of node (level, index); writing a different hash to a stored node is an error. */
  put(level: number, index: bigint, hash: Uint8Array): void;
}

/** Node levels run 0..63: a tree of at most 2^64 - 1 leaves. */
const MAX_LEVEL = 63;

/** Slots of an in-memory level are addressed by byte offset, which must stay an exact double. */
const MAX_MEMORY_INDEX = BigInt(Math.floor(Number.MAX_SAFE_INTEGER / HASH_LENGTH));

/**
 * The in-memory node store: per level, one growable byte array of 32-byte slots plus a presence bitmap, so a
 * million-leaf tree costs about 64 MB and no per-node objects.
 */
export class MemoryNodeStore implements MerkleNodeStore {
  private readonly slabs: Uint8Array[] = [];
  private readonly present: Uint8Array[] = [];

  /** The stored hash (a read-only view into the store), or undefined. */
  get(level: number, index: bigint): Uint8Array | undefined {
    const slab = this.slabs[level];
    if (slab === undefined || typeof index !== "bigint" || index < 0n) return undefined;
    const i = Number(index);
    if (i >= slab.length / HASH_LENGTH || !this.has(level, i)) return undefined;
    return slab.subarray(i * HASH_LENGTH, (i + 1) * HASH_LENGTH);
  }

  /** Store a node hash (copied). Throws INCONSISTENT_TREE when the node already holds a different hash. */
  put(level: number, index: bigint, hash: Uint8Array): void {
    if (!Number.isInteger(level) || level < 0 || level > MAX_LEVEL) {
      throw new LedgerError("INVALID_ARGUMENT", `node level must be an integer in 0..${MAX_LEVEL}`);
    }
    if (typeof index !== "bigint" || index < 0n || index >= MAX_MEMORY_INDEX) {
      throw new LedgerError("INVALID_ARGUMENT", "node index is out of the range an in-memory store can hold");
    }
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_LENGTH) {
      throw new LedgerError("MALFORMED_INPUT", `a node hash must be ${HASH_LENGTH} bytes`);
    }
    const i = Number(index);
    let slab = this.slabs[level];
    if (slab === undefined || (i + 1) * HASH_LENGTH > slab.length) slab = this.grow(level, i + 1);
    const at = i * HASH_LENGTH;
    if (this.has(level, i)) {
      for (let b = 0; b < HASH_LENGTH; b++) {
        if (slab[at + b] !== hash[b]) {
          throw new LedgerError(
            "INCONSISTENT_TREE",
            `node (level ${level}, index ${index}) is already stored`,
          );
        }
      }
      return;
    }
    slab.set(hash, at);
    // Slot numbers stay below 2^53 / 32, so they are divided here, not shifted.
    this.present[level]![Math.floor(i / 8)]! |= 1 << (i % 8);
  }

  private has(level: number, i: number): boolean {
    return (this.present[level]![Math.floor(i / 8)]! & (1 << (i % 8))) !== 0;
  }

  private grow(level: number, slots: number): Uint8Array {
    while (this.slabs.length <= level) {
      this.slabs.push(new Uint8Array(0));
      this.present.push(new Uint8Array(0));
    }
    // Double (at least 1024 slots), so that n appends cost O(n) copying in total.
    const capacity = Math.max(1024, 2 ** Math.ceil(Math.log2(slots)));
    let grown: Uint8Array;
    let bits: Uint8Array;
    try {
      grown = new Uint8Array(capacity * HASH_LENGTH);
      bits = new Uint8Array(capacity / 8);
    } catch (cause) {
      throw new LedgerError("TOO_LARGE", `cannot hold ${capacity} nodes of level ${level} in memory`, {
        cause,
      });
    }
    grown.set(this.slabs[level]!);
    bits.set(this.present[level]!);
    this.slabs[level] = grown;
    this.present[level] = bits;
    return grown;
  }
}

/** An append-only RFC 9162 Merkle tree whose appends cost O(log n) hashes and no store reads. */
export class MerkleTree {
  private readonly sha: Sha256;
  private readonly store: MerkleNodeStore;
  // The right frontier: roots of the perfect subtrees of the current size, leftmost (largest) first.
  private readonly frontier: Uint8Array[];
  // Leaf count as a number: exact below 2^53 (285 years at a million appends a second), checked on append,
  // and only ever divided, never shifted, so nothing truncates above 2^32.
  private count: number;
  private cachedRoot: Uint8Array | undefined;

  private constructor(sha: Sha256, store: MerkleNodeStore, count: number, frontier: Uint8Array[]) {
    this.sha = sha;
    this.store = store;
    this.count = count;
    this.frontier = frontier;
  }

  /** A new, empty tree writing to `store` (an empty in-memory store by default). */
  static create(sha: Sha256, store: MerkleNodeStore = new MemoryNodeStore()): MerkleTree {
    return new MerkleTree(sha, store, 0, []);
  }

  /**
   * Reopen a tree of `size` leaves whose nodes are in `store`: reads the popcount(size) frontier nodes,
   * O(log size). Throws INCONSISTENT_TREE when one is missing.
   */
  static open(sha: Sha256, store: MerkleNodeStore, size: bigint): MerkleTree {
    if (typeof size !== "bigint" || size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new LedgerError("INVALID_ARGUMENT", "tree size must be a bigint in 0..2^53-1");
    }
    const frontier: Uint8Array[] = [];
    for (let level = MAX_LEVEL; level >= 0; level--) {
      const above = size >> BigInt(level);
      if ((above & 1n) === 1n) {
        // The perfect subtree of 2^level leaves ending at the highest leaf covered by this bit of size.
        const h = store.get(level, above - 1n);
        if (!(h instanceof Uint8Array) || h.length !== HASH_LENGTH) {
          throw new LedgerError(
            "INCONSISTENT_TREE",
            `node (level ${level}, index ${above - 1n}) of a tree of size ${size} is missing from the store`,
          );
        }
        frontier.push(copy(h));
      }
    }
    return new MerkleTree(sha, store, Number(size), frontier);
  }

  /** Number of leaves. */
  get size(): bigint {
    return BigInt(this.count);
  }

  /** Append an entry: its leaf hash is SHA-256(0x00 || entry) (RFC 9162 section 2.1.1). Returns its index. */
  append(entry: Uint8Array): bigint {
    if (!(entry instanceof Uint8Array)) throw new LedgerError("MALFORMED_INPUT", "an entry must be bytes");
    return this.appendHash(leafHash(this.sha, entry));
  }

  /** Append a leaf by its 32-byte leaf hash (already SHA-256(0x00 || entry)). Returns its index. */
  appendLeafHash(hash: Uint8Array): bigint {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_LENGTH) {
      throw new LedgerError("MALFORMED_INPUT", `a leaf hash must be ${HASH_LENGTH} bytes`);
    }
    return this.appendHash(copy(hash));
  }

  /** Append entries in order; returns the index of the first. All are checked before any is appended. */
  appendMany(entries: readonly Uint8Array[]): bigint {
    if (!Array.isArray(entries) || !entries.every((e) => e instanceof Uint8Array)) {
      throw new LedgerError("MALFORMED_INPUT", "entries must be an array of byte arrays");
    }
    const first = this.size;
    for (const entry of entries) this.appendHash(leafHash(this.sha, entry));
    return first;
  }

  /** RFC 9162 section 2.1.1: the current root, folded from the frontier (cached until the next append). */
  root(): Uint8Array {
    if (this.cachedRoot === undefined) {
      const f = this.frontier;
      let r = f.length === 0 ? emptyTreeHash(this.sha) : f[f.length - 1]!;
      for (let i = f.length - 2; i >= 0; i--) r = nodeHash(this.sha, f[i]!, r);
      this.cachedRoot = r;
    }
    return copy(this.cachedRoot);
  }

  /** The root of the tree as it was at `size` leaves (any size up to now), from O(log n) stored nodes. */
  rootAt(size: bigint): Uint8Array {
    this.checkSize(size);
    if (size === this.size) return this.root();
    return rootFromNodes(this.sha, this.store, size);
  }

  /** The stored leaf hash of leaf `index`. */
  leafHash(index: bigint): Uint8Array {
    this.checkSize(index);
    if (index >= this.size) {
      throw new LedgerError(
        "INDEX_OUT_OF_RANGE",
        `leaf index ${index} is not below the tree size ${this.size}`,
      );
    }
    const h = this.node(0, index);
    if (h === undefined) {
      throw new LedgerError("INCONSISTENT_TREE", `leaf ${index} is missing from the node store`);
    }
    return h;
  }

  /** RFC 9162 section 2.1.3.1: inclusion proof of leaf `index` in the tree at `size` (default: now). */
  inclusionProof(index: bigint, size: bigint = this.size): Uint8Array[] {
    this.checkSize(size);
    return inclusionProofFromNodes(this.sha, this.store, index, size);
  }

  /**
   * RFC 9162 section 2.1.4.1: consistency proof from the tree at size1 to the tree at size2 (default: now).
   * Empty when size1 is 0 or equals size2.
   */
  consistencyProof(size1: bigint, size2: bigint = this.size): Uint8Array[] {
    this.checkSize(size2);
    return consistencyProofFromNodes(this.sha, this.store, size1, size2);
  }

  /** Read a stored node (for adapters and tests); undefined when absent. */
  node(level: number, index: bigint): Uint8Array | undefined {
    const h = this.store.get(level, index);
    return h === undefined ? undefined : copy(h);
  }

  private appendHash(hash: Uint8Array): bigint {
    let index = this.count;
    if (index >= Number.MAX_SAFE_INTEGER) {
      throw new LedgerError("TOO_LARGE", "the tree is full (2^53 - 1 leaves)");
    }
    const f = this.frontier;
    // Merge with the frontier while this node is a right child: one hash per trailing one bit of the index.
    // Nothing is changed in memory until every store write succeeded, so a failed put leaves the old tree.
    let top = f.length;
    let level = 0;
    let h = hash;
    this.store.put(0, BigInt(index), h);
    while (index % 2 === 1) {
      top--;
      h = nodeHash(this.sha, f[top]!, h);
      level++;
      index = (index - 1) / 2;
      this.store.put(level, BigInt(index), h);
    }
    f.length = top;
    f.push(h);
    this.cachedRoot = undefined;
    return BigInt(this.count++);
  }

  private checkSize(size: bigint): void {
    if (typeof size !== "bigint" || size < 0n) {
      throw new LedgerError("INVALID_ARGUMENT", "tree sizes and indices are non-negative bigints");
    }
    if (size > this.size) {
      throw new LedgerError("INDEX_OUT_OF_RANGE", `size ${size} is beyond the tree size ${this.size}`);
    }
  }
}

function copy(h: Uint8Array): Uint8Array {
  const out = new Uint8Array(HASH_LENGTH);
  out.set(h);
  return out;
}
