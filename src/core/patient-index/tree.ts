/**
 * The verifiable patient index: a sparse Merkle tree of depth 256 from a patient's index key to the head
 * and length of the patient's chain, in the compact ("shortcut") form described in docs/patient-index.md:
 *
 *   hash(S, d) = EMPTY_HASH                                  when S is empty
 *              = SHA-256(0x02 || key || value)               when S holds one entry
 *              = SHA-256(0x03 || hash(S0, d+1) || hash(S1, d+1))  otherwise
 *
 * where S0 and S1 are the entries of S whose key bit d is 0 and 1. The root is hash(all, 0). The tree is
 * persistent and incremental: an update rewrites only the nodes on the changed paths (about log2(n) per
 * key, at most 257), stores them content-addressed, and leaves every older root readable.
 */
import { LedgerError } from "../errors.ts";
import { bytesEqual } from "../encoding/bytes.ts";
import {
  EMPTY_HASH,
  HASH_SIZE,
  MAP_LEAF_PREFIX,
  MAP_NODE_PREFIX,
  TREE_DEPTH,
  checkKey,
  checkValue,
  commonPrefixBits,
  copyBytes,
  decodeIndexValue,
  encodeIndexValue,
  isEmptyHash,
  keyBit,
} from "./hashing.ts";
import type { HashFunction, IndexValue } from "./hashing.ts";
import type { IndexLeaf, MembershipProof, NonMembershipProof } from "./proof.ts";
import { LEAF_BODY_SIZE, NODE_BODY_SIZE } from "./store.ts";
import type { IndexNodeWrite, PatientIndexStore } from "./store.ts";

/** One change of a batch: set the key's value, or remove the key when value is null. */
export interface IndexChange {
  readonly key: Uint8Array;
  readonly value: IndexValue | null;
}

/** The answer to a lookup: the value with its membership proof, or no value with a non-membership proof. */
export type IndexLookup =
  | { readonly value: IndexValue; readonly proof: MembershipProof }
  | { readonly value: undefined; readonly proof: NonMembershipProof };

/** A child reference while updating; "unknown" until the node is read (only removals need to know). */
interface Ref {
  readonly hash: Uint8Array;
  kind: "empty" | "leaf" | "internal" | "unknown";
}

/** An entry being placed: its encoded value (null to remove) and, for an existing leaf, its known hash. */
interface Item {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly hash?: Uint8Array;
}

type LoadedNode =
  | { readonly kind: "leaf"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly kind: "internal"; readonly left: Uint8Array; readonly right: Uint8Array };

/** Bytes of each chunk new node bodies are carved from. */
const BODY_CHUNK_SIZE = 64 * 1024;

const EMPTY_REF: Ref = { hash: EMPTY_HASH, kind: "empty" };

function childRef(hash: Uint8Array): Ref {
  return { hash, kind: isEmptyHash(hash) ? "empty" : "unknown" };
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < HASH_SIZE; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function checkRoot(root: unknown): void {
  if (!(root instanceof Uint8Array) || root.length !== HASH_SIZE) {
    throw new LedgerError("INVALID_ARGUMENT", `an index root must be ${HASH_SIZE} bytes`);
  }
}

function corrupt(message: string): never {
  throw new LedgerError("INCONSISTENT_TREE", `patient index store: ${message}`);
}

/** The verifiable patient index over a node store; `root` moves with each committed update. */
export class PatientIndex {
  readonly #hash: HashFunction;
  readonly #store: PatientIndexStore;
  #root: Uint8Array;
  #chunk = new Uint8Array(0);
  #chunkUsed = 0;

  /** Open the index at the store's current root (the empty root for a new store). */
  constructor(hash: HashFunction, store: PatientIndexStore) {
    this.#hash = hash;
    this.#store = store;
    const root = store.currentRoot();
    this.#root = root === undefined ? EMPTY_HASH : copyBytes(root);
  }

  /** The current root (32 bytes; all zeros for the empty index). */
  get root(): Uint8Array {
    return copyBytes(this.#root);
  }

  /** Set one key's value; returns the new root. */
  set(key: Uint8Array, value: IndexValue): Uint8Array {
    return this.update([{ key, value }]);
  }

  /** Remove one key (a no-op when absent); returns the new root. */
  remove(key: Uint8Array): Uint8Array {
    return this.update([{ key, value: null }]);
  }

  /**
   * Apply a batch of changes (a block) in one pass, so paths the keys share are rewritten once, and commit
   * the new nodes with the new root in one atomic store write. The result does not depend on the order of
   * the changes; a key may appear only once. Input is checked before any work: a refused batch changes
   * nothing. Returns the new root.
   */
  update(changes: Iterable<IndexChange>): Uint8Array {
    if (typeof (changes as { [Symbol.iterator]?: unknown } | null)?.[Symbol.iterator] !== "function") {
      throw new LedgerError("INVALID_ARGUMENT", "index changes must be iterable");
    }
    const items: Item[] = [];
    for (const change of changes as Iterable<unknown>) {
      if (typeof change !== "object" || change === null) {
        throw new LedgerError("INVALID_ARGUMENT", "an index change must be an object { key, value }");
      }
      const { key, value } = change as { key?: unknown; value?: unknown };
      const checkedKey = copyBytes(checkKey(key));
      items.push({ key: checkedKey, value: value === null ? null : encodeIndexValue(checkValue(value)) });
    }
    if (items.length === 0) return this.root;
    items.sort((a, b) => compareKeys(a.key, b.key));
    for (let i = 1; i < items.length; i++) {
      if (compareKeys(items[i - 1]!.key, items[i]!.key) === 0) {
        throw new LedgerError("INVALID_ARGUMENT", "a key appears twice in one index batch");
      }
    }
    const writes: IndexNodeWrite[] = [];
    const root = this.#update(childRef(this.#root), 0, items, 0, items.length, writes).hash;
    this.#store.writeBatch({ nodes: writes, root });
    this.#root = copyBytes(root);
    return this.root;
  }

  /** The value of `key` under `root` (the current root by default), or undefined. */
  get(key: Uint8Array, root: Uint8Array = this.#root): IndexValue | undefined {
    checkKey(key);
    checkRoot(root);
    let ref = root;
    for (let depth = 0; depth <= TREE_DEPTH; depth++) {
      if (isEmptyHash(ref)) return undefined;
      const node = this.#load(ref, depth);
      if (node.kind === "leaf") return bytesEqual(node.key, key) ? decodeIndexValue(node.value) : undefined;
      if (depth === TREE_DEPTH) break;
      ref = keyBit(key, depth) === 0 ? node.left : node.right;
    }
    return corrupt("a path is longer than 256 levels");
  }

  /** The value of `key` under `root` (current by default) with its membership or non-membership proof. */
  lookup(key: Uint8Array, root: Uint8Array = this.#root): IndexLookup {
    checkKey(key);
    checkRoot(root);
    const bitmap = new Uint8Array(HASH_SIZE);
    const siblings: Uint8Array[] = [];
    const pathTo = (depth: number) => ({ depth, bitmap: bitmap.slice(0, Math.ceil(depth / 8)), siblings });
    let ref = root;
    for (let depth = 0; depth <= TREE_DEPTH; depth++) {
      if (isEmptyHash(ref)) {
        return { value: undefined, proof: { type: "non-membership", ...pathTo(depth), leaf: null } };
      }
      const node = this.#load(ref, depth);
      if (node.kind === "leaf") {
        const value = decodeIndexValue(node.value);
        if (bytesEqual(node.key, key)) return { value, proof: { type: "membership", ...pathTo(depth) } };
        const leaf: IndexLeaf = { key: copyBytes(node.key), value };
        return { value: undefined, proof: { type: "non-membership", ...pathTo(depth), leaf } };
      }
      if (depth === TREE_DEPTH) break;
      const right = keyBit(key, depth) === 1;
      const sibling = right ? node.left : node.right;
      if (!isEmptyHash(sibling)) {
        bitmap[depth >> 3]! |= 0x80 >> (depth & 7);
        siblings.push(copyBytes(sibling));
      }
      ref = right ? node.right : node.left;
    }
    return corrupt("a path is longer than 256 levels");
  }

  /** Every entry under `root` (current by default), in key order. */
  *entries(root: Uint8Array = this.#root): Generator<IndexLeaf> {
    checkRoot(root);
    const stack: { hash: Uint8Array; depth: number }[] = [{ hash: root, depth: 0 }];
    while (stack.length > 0) {
      const { hash, depth } = stack.pop()!;
      if (isEmptyHash(hash)) continue;
      const node = this.#load(hash, depth);
      if (node.kind === "leaf") {
        yield { key: copyBytes(node.key), value: decodeIndexValue(node.value) };
      } else {
        if (depth === TREE_DEPTH) corrupt("a path is longer than 256 levels");
        stack.push({ hash: node.right, depth: depth + 1 }, { hash: node.left, depth: depth + 1 });
      }
    }
  }

  /**
   * Check the whole tree under `root` (current by default) from the store, trusting nothing in it: every
   * node hashes to its reference, every leaf sits on its key's path, and every node is in canonical form
   * (no internal node over fewer than two entries). Returns the number of entries; throws
   * INCONSISTENT_TREE at the first fault. Used by `medledger verify`.
   */
  audit(root: Uint8Array = this.#root): number {
    checkRoot(root);
    const path = new Uint8Array(HASH_SIZE);
    // Returns the entry count of the subtree, so a parent can tell a single leaf from a larger subtree.
    const visit = (hash: Uint8Array, depth: number): number => {
      if (isEmptyHash(hash)) return 0;
      const body = this.#read(hash, depth);
      if (!bytesEqual(this.#hash(body), hash)) corrupt("a node does not hash to its reference");
      const node = this.#parse(body);
      if (node.kind === "leaf") {
        if (commonPrefixBits(node.key, path) < depth) corrupt("a leaf is not on its key's path");
        return 1;
      }
      if (depth === TREE_DEPTH) corrupt("a path is longer than 256 levels");
      path[depth >> 3]! &= ~(0x80 >> (depth & 7));
      const left = visit(node.left, depth + 1);
      path[depth >> 3]! |= 0x80 >> (depth & 7);
      const right = visit(node.right, depth + 1);
      if (left + right < 2) corrupt("an internal node holds fewer than two entries");
      return left + right;
    };
    return visit(root, 0);
  }

  /** A node's body; a missing root is the caller's unknown root, a missing node below it a fault. */
  #read(hash: Uint8Array, depth: number): Uint8Array {
    const body = this.#store.get(hash);
    if (body !== undefined) return body;
    if (depth === 0) {
      throw new LedgerError("INVALID_ARGUMENT", "this root is not held by the patient index store");
    }
    return corrupt("a node is missing");
  }

  #parse(body: Uint8Array): LoadedNode {
    if (body.length === LEAF_BODY_SIZE && body[0] === MAP_LEAF_PREFIX) {
      const value = body.subarray(1 + HASH_SIZE);
      try {
        decodeIndexValue(value);
      } catch (cause) {
        throw new LedgerError("INCONSISTENT_TREE", "patient index store: a leaf has a malformed value", {
          cause,
        });
      }
      return { kind: "leaf", key: body.subarray(1, 1 + HASH_SIZE), value };
    }
    if (body.length === NODE_BODY_SIZE && body[0] === MAP_NODE_PREFIX) {
      return { kind: "internal", left: body.subarray(1, 1 + HASH_SIZE), right: body.subarray(1 + HASH_SIZE) };
    }
    return corrupt("a node has a malformed body");
  }

  /** Read and parse a node. Its hash is not recomputed here (audit does): a read costs no hash. */
  #load(hash: Uint8Array, depth: number): LoadedNode {
    return this.#parse(this.#read(hash, depth));
  }

  #kindOf(ref: Ref): Ref["kind"] {
    // Only a child read back from its parent is "unknown", so it is never the root.
    if (ref.kind === "unknown") ref.kind = this.#load(ref.hash, 1).kind;
    return ref.kind;
  }

  /**
   * Room for a new node body, carved from a shared 64 KiB chunk: a 65- or 73-byte array of its own is
   * allocated outside the JavaScript heap, and thousands of those per second made garbage collection the
   * main cost of an update. Bodies are only read after this (hashed, then copied by the store).
   */
  #body(size: number): Uint8Array {
    if (this.#chunkUsed + size > this.#chunk.length) {
      this.#chunk = new Uint8Array(BODY_CHUNK_SIZE);
      this.#chunkUsed = 0;
    }
    const body = this.#chunk.subarray(this.#chunkUsed, this.#chunkUsed + size);
    this.#chunkUsed += size;
    return body;
  }

  /** Rewrite the subtree `node` at `depth` with items[lo, hi), all of which lie under it. */
  #update(node: Ref, depth: number, items: Item[], lo: number, hi: number, writes: IndexNodeWrite[]): Ref {
    if (lo === hi) return node;
    if (node.kind === "empty") return this.#build(depth, items.slice(lo, hi), writes);
    if (depth > TREE_DEPTH) corrupt("a path is longer than 256 levels");
    const loaded = this.#load(node.hash, depth);
    if (loaded.kind === "leaf") {
      // A single-entry subtree: rebuild it from the existing entry and the new items together.
      const existing: Item = { key: loaded.key, value: loaded.value, hash: node.hash };
      const merged: Item[] = [];
      let placed = false;
      for (let i = lo; i < hi; i++) {
        const item = items[i]!;
        const order = compareKeys(item.key, existing.key);
        if (!placed && order >= 0) {
          if (order > 0) merged.push(existing);
          placed = true;
        }
        merged.push(item);
      }
      if (!placed) merged.push(existing);
      return this.#build(depth, merged, writes);
    }
    if (depth === TREE_DEPTH) corrupt("a path is longer than 256 levels");
    let split = lo;
    while (split < hi && keyBit(items[split]!.key, depth) === 0) split++;
    const left = this.#update(childRef(loaded.left), depth + 1, items, lo, split, writes);
    const right = this.#update(childRef(loaded.right), depth + 1, items, split, hi, writes);
    return this.#join(left, right, writes);
  }

  /** Build the subtree at `depth` holding exactly the items whose value is not null (sorted by key). */
  #build(depth: number, items: Item[], writes: IndexNodeWrite[]): Ref {
    const present = items.filter((item) => item.value !== null);
    if (present.length === 0) return EMPTY_REF;
    if (present.length === 1) {
      const item = present[0]!;
      if (item.hash !== undefined) return { hash: item.hash, kind: "leaf" };
      const body = this.#body(LEAF_BODY_SIZE);
      body[0] = MAP_LEAF_PREFIX;
      body.set(item.key, 1);
      body.set(item.value!, 1 + HASH_SIZE);
      const hash = this.#hash(body);
      writes.push({ hash, body });
      return { hash, kind: "leaf" };
    }
    // Distinct keys differ in some bit below 256, so this recursion ends before depth 256.
    let split = 0;
    while (split < present.length && keyBit(present[split]!.key, depth) === 0) split++;
    const left = this.#build(depth + 1, present.slice(0, split), writes);
    const right = this.#build(depth + 1, present.slice(split), writes);
    return this.#join(left, right, writes);
  }

  /** The parent of two subtrees, collapsing to the empty hash or to a lone leaf (the shortcut rule). */
  #join(left: Ref, right: Ref, writes: IndexNodeWrite[]): Ref {
    if (left.kind === "empty" && right.kind === "empty") return EMPTY_REF;
    if (left.kind === "empty" && this.#kindOf(right) === "leaf") return right;
    if (right.kind === "empty" && this.#kindOf(left) === "leaf") return left;
    const body = this.#body(NODE_BODY_SIZE);
    body[0] = MAP_NODE_PREFIX;
    body.set(left.hash, 1);
    body.set(right.hash, 1 + HASH_SIZE);
    const hash = this.#hash(body);
    writes.push({ hash, body });
    return { hash, kind: "internal" };
  }
}
