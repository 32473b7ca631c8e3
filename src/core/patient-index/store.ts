/**
 * Node storage of the patient index. Nodes are content-addressed: a node is stored under its own hash, and
 * its body is exactly the hash preimage (0x02 || key || value for a leaf, 0x03 || left || right for an
 * internal node). So any root ever committed can serve proofs while its nodes are kept, identical subtrees
 * are stored once, and every stored row can be checked by hashing it.
 *
 * The interface is synchronous on purpose (an update reads one node per level; a promise per read would
 * cost more than the read) and free of SQL, so a SQLite or PostgreSQL adapter implements it with one table
 * `(hash BLOB PRIMARY KEY, body BLOB)` plus one row for the current root, written in one transaction.
 */
import { LedgerError } from "../errors.ts";
import { HASH_SIZE, VALUE_SIZE, copyBytes } from "./hashing.ts";

/**
 * One node to store: its hash and its body (the hash preimage). The body may be a view into a buffer the
 * index reuses, so a store copies the bytes it keeps.
 */
export interface IndexNodeWrite {
  readonly hash: Uint8Array;
  readonly body: Uint8Array;
}

/** The writes of one update: the new nodes and the root they produce. */
export interface IndexBatch {
  readonly nodes: readonly IndexNodeWrite[];
  readonly root: Uint8Array;
}

/** Synchronous storage of patient-index nodes; writeBatch must be atomic (all of it or nothing). */
export interface PatientIndexStore {
  /** The body of the node whose hash is `hash`, or undefined when absent. Callers never modify it. */
  get(hash: Uint8Array): Uint8Array | undefined;
  /** Store the nodes of a batch (storing a node already present is a no-op) and make `root` current. */
  writeBatch(batch: IndexBatch): void;
  /** The root of the last batch written, or undefined when none was. */
  currentRoot(): Uint8Array | undefined;
}

/** Byte length of a leaf body (0x02 || key || value). */
export const LEAF_BODY_SIZE = 1 + HASH_SIZE + VALUE_SIZE;
/** Byte length of an internal node body (0x03 || left || right). */
export const NODE_BODY_SIZE = 1 + 2 * HASH_SIZE;

/** Bytes per arena slab of the memory store. */
const SLAB_SIZE = 1 << 20;
/** Bytes of a stored record: the node's hash, then its body. */
const RECORD_HEADER = HASH_SIZE;

/**
 * The in-memory store: for tests, the browser, and as the reference a durable adapter must match.
 *
 * Every version of every path is kept, so the store reaches millions of nodes. Held as one small array and
 * one map key each, they made garbage collection the main cost of an update; so records (hash || body) are
 * packed into 1 MiB slabs and found through an open-addressing table of numbers, indexed by the hash's first
 * four bytes (SHA-256 output is uniform, and nobody chooses a node's hash).
 */
export class MemoryIndexStore implements PatientIndexStore {
  readonly #slabs: Uint8Array[] = [];
  #used = SLAB_SIZE;
  /** Slot -> 0 when free, else 1 + (slab * SLAB_SIZE + offset) * 2 + (1 for a leaf body, 0 for internal). */
  #table = new Float64Array(1 << 16);
  #count = 0;
  #root: Uint8Array | undefined;

  /** Number of distinct nodes held. */
  get size(): number {
    return this.#count;
  }

  /** The body stored under `hash`, or undefined. The body is a view into the store: do not modify it. */
  get(hash: Uint8Array): Uint8Array | undefined {
    if (hash.length !== HASH_SIZE) return undefined;
    const slot = this.#find(hash);
    const entry = this.#table[slot]!;
    if (entry === 0) return undefined;
    const { slab, offset } = this.#record(entry);
    const length = (entry - 1) % 2 === 1 ? LEAF_BODY_SIZE : NODE_BODY_SIZE;
    return slab.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length);
  }

  /** Store the batch's nodes, then move the current root; a batch with a bad size writes nothing. */
  writeBatch(batch: IndexBatch): void {
    for (const { hash, body } of batch.nodes) {
      if (hash.length !== HASH_SIZE || (body.length !== LEAF_BODY_SIZE && body.length !== NODE_BODY_SIZE)) {
        throw new LedgerError("INVALID_ARGUMENT", "patient index node has a wrong hash or body size");
      }
    }
    if (batch.root.length !== HASH_SIZE) {
      throw new LedgerError("INVALID_ARGUMENT", "patient index root must be 32 bytes");
    }
    for (const { hash, body } of batch.nodes) {
      const slot = this.#find(hash);
      if (this.#table[slot] !== 0) continue;
      if (this.#used + RECORD_HEADER + body.length > SLAB_SIZE) {
        this.#slabs.push(new Uint8Array(SLAB_SIZE));
        this.#used = 0;
      }
      const slab = this.#slabs[this.#slabs.length - 1]!;
      slab.set(hash, this.#used);
      slab.set(body, this.#used + RECORD_HEADER);
      const at = (this.#slabs.length - 1) * SLAB_SIZE + this.#used;
      this.#table[slot] = 1 + at * 2 + (body.length === LEAF_BODY_SIZE ? 1 : 0);
      this.#used += RECORD_HEADER + body.length;
      // Keep the table at most half full, so a probe stays short.
      if (++this.#count * 2 > this.#table.length) this.#grow();
    }
    this.#root = copyBytes(batch.root);
  }

  /** The root of the last batch written, or undefined. */
  currentRoot(): Uint8Array | undefined {
    return this.#root === undefined ? undefined : copyBytes(this.#root);
  }

  #record(entry: number): { slab: Uint8Array; offset: number } {
    const at = Math.floor((entry - 1) / 2);
    return { slab: this.#slabs[Math.floor(at / SLAB_SIZE)]!, offset: at % SLAB_SIZE };
  }

  /** The slot holding `hash`, or the free slot where it would go (linear probing). */
  #find(hash: Uint8Array): number {
    const mask = this.#table.length - 1;
    let slot = ((hash[0]! << 24) | (hash[1]! << 16) | (hash[2]! << 8) | hash[3]!) & mask;
    while (true) {
      const entry = this.#table[slot]!;
      if (entry === 0) return slot;
      // Inlined #record: this loop is the hottest of the store and should allocate nothing.
      const at = Math.floor((entry - 1) / 2);
      const slab = this.#slabs[Math.floor(at / SLAB_SIZE)]!;
      const offset = at % SLAB_SIZE;
      let same = true;
      for (let i = 0; i < HASH_SIZE && same; i++) same = slab[offset + i] === hash[i];
      if (same) return slot;
      slot = (slot + 1) & mask;
    }
  }

  #grow(): void {
    const old = this.#table;
    this.#table = new Float64Array(old.length * 2);
    for (const entry of old) {
      if (entry === 0) continue;
      const { slab, offset } = this.#record(entry);
      this.#table[this.#find(slab.subarray(offset, offset + HASH_SIZE))] = entry;
    }
  }
}
