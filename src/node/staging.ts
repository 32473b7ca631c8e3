/**
 * Staging layers over the store's Merkle-node and patient-index stores. A batch (the block) must compute
 * its new Merkle root and patient-index root, and sign the checkpoint over them, BEFORE the one store
 * transaction that commits it: signing is asynchronous and a store transaction is synchronous. So the tree
 * and the index write into these layers while the batch is prepared; `commit()` (called inside the
 * transaction) writes the staged nodes to the store, and `discard()` drops them when the batch fails.
 */
import { toHex } from "../core/encoding/bytes.ts";
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

/** Patient-index writes held in memory until the batch commits. */
export class StagedIndexNodes implements PatientIndexStore {
  readonly #base: PatientIndexStore;
  readonly #nodes = new Map<string, IndexNodeWrite>();
  #root: Uint8Array | undefined;

  /** Stage writes over `base`. */
  constructor(base: PatientIndexStore) {
    this.#base = base;
  }

  /** A staged node body, else the stored one. */
  get(hash: Uint8Array): Uint8Array | undefined {
    return this.#nodes.get(toHex(hash))?.body ?? this.#base.get(hash);
  }

  /** Stage a batch of nodes and its root (bodies are copied: the index may reuse its buffers). */
  writeBatch(batch: IndexBatch): void {
    for (const { hash, body } of batch.nodes) {
      this.#nodes.set(toHex(hash), { hash: hash.slice(), body: body.slice() });
    }
    this.#root = batch.root.slice();
  }

  /** The staged root, else the stored one. */
  currentRoot(): Uint8Array | undefined {
    return this.#root?.slice() ?? this.#base.currentRoot();
  }

  /** Write the staged nodes and root to the base store in one batch, and forget them. */
  commit(): void {
    if (this.#root !== undefined) {
      this.#base.writeBatch({ nodes: [...this.#nodes.values()], root: this.#root });
    }
    this.discard();
  }

  /** Forget the staged nodes and root. */
  discard(): void {
    this.#nodes.clear();
    this.#root = undefined;
  }
}
