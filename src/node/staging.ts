/**
 * Staging layers over the store's Merkle-node and patient-index stores. A batch (the block) must compute
 * its new Merkle root and patient-index root, and sign the checkpoint over them, BEFORE the one store
 * transaction that commits it: signing is asynchronous and a store transaction is synchronous. So the tree
 * and the index write into these layers while the batch is prepared; `commit()` (called inside the
 * transaction) writes the staged nodes to the store, and `discard()` drops them when the batch fails.
 */
import type { MerkleNodeStore } from "../core/merkle/tree.ts";
import type { IndexBatch, IndexNodeWrite, PatientIndexStore } from "../core/patient-index/store.ts";

/** Merkle node writes held in memory until the batch commits. */
export class StagedMerkleNodes implements MerkleNodeStore {
  readonly #base: MerkleNodeStore;
  readonly #staged = new Map<string, { level: number; index: bigint; hash: Uint8Array }>();

  /** Stage writes over `base`. */
  constructor(base: MerkleNodeStore) {
    this.#base = base;
  }

  /** A staged node, else the stored one. */
  get(level: number, index: bigint): Uint8Array | undefined {
    return this.#staged.get(`${level}/${index}`)?.hash ?? this.#base.get(level, index);
  }

  /** Stage a node write (nodes are immutable, so a second write of the same node is refused by the base). */
  put(level: number, index: bigint, hash: Uint8Array): void {
    this.#staged.set(`${level}/${index}`, { level, index, hash: hash.slice() });
  }

  /** Write every staged node to the base store (inside the batch's transaction) and forget them. */
  commit(): void {
    for (const { level, index, hash } of this.#staged.values()) this.#base.put(level, index, hash);
    this.#staged.clear();
  }

  /** Forget the staged nodes. */
  discard(): void {
    this.#staged.clear();
  }
}

/** Committed patient-index nodes kept in memory for reading: about 16 MB at most. */
export const INDEX_NODE_CACHE_SIZE = 65_536;

/** A map key for a hash: one character per byte (latin1), the cheapest exact key Node builds. */
function hashKey(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("latin1");
}

/**
 * Patient-index writes held in memory until the batch commits, over a read cache of committed nodes. An
 * update reads every node on the paths it rewrites, and with thousands of patients moving per batch those
 * are mostly the same nodes batch after batch; nodes are content-addressed (a node's key is the hash of its
 * body) and never change, so a cached body is right for as long as it is kept.
 */
export class StagedIndexNodes implements PatientIndexStore {
  readonly #base: PatientIndexStore;
  readonly #nodes = new Map<string, IndexNodeWrite>();
  /** Nodes written to the base by commit(), cached once the transaction is known to have succeeded. */
  #committed: IndexNodeWrite[] = [];
  /** Bodies of nodes the base holds, oldest first (evicted in that order). */
  readonly #cache = new Map<string, Uint8Array>();
  #root: Uint8Array | undefined;

  /** Stage writes over `base`. */
  constructor(base: PatientIndexStore) {
    this.#base = base;
  }

  /** A staged node body, else a cached one, else the stored one. */
  get(hash: Uint8Array): Uint8Array | undefined {
    const key = hashKey(hash);
    const body = this.#nodes.get(key)?.body ?? this.#cache.get(key);
    if (body !== undefined) return body;
    const stored = this.#base.get(hash);
    if (stored !== undefined) this.#remember(key, stored.slice());
    return stored;
  }

  /** Stage a batch of nodes and its root (bodies are copied: the index may reuse its buffers). */
  writeBatch(batch: IndexBatch): void {
    for (const { hash, body } of batch.nodes) {
      this.#nodes.set(hashKey(hash), { hash: hash.slice(), body: body.slice() });
    }
    this.#root = batch.root.slice();
  }

  /** The staged root, else the stored one. */
  currentRoot(): Uint8Array | undefined {
    return this.#root?.slice() ?? this.#base.currentRoot();
  }

  /**
   * Write the staged nodes and root to the base store in one batch (inside the batch's transaction) and
   * forget them; call confirm() once that transaction has committed.
   */
  commit(): void {
    if (this.#root !== undefined) {
      const nodes = [...this.#nodes.values()];
      this.#base.writeBatch({ nodes, root: this.#root });
      this.#committed = nodes;
    }
    this.#nodes.clear();
    this.#root = undefined;
  }

  /** The transaction that commit() wrote into has committed: its nodes may be read from the cache. */
  confirm(): void {
    for (const { hash, body } of this.#committed) this.#remember(hashKey(hash), body);
    this.#committed = [];
  }

  /** Forget the staged nodes and root, and whatever the last commit() wrote (it may have rolled back). */
  discard(): void {
    this.#nodes.clear();
    this.#root = undefined;
    this.#committed = [];
  }

  #remember(key: string, body: Uint8Array): void {
    if (this.#cache.size >= INDEX_NODE_CACHE_SIZE && !this.#cache.has(key)) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, body);
  }
}
