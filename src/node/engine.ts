/**
 * The ordering engine (DESIGN.md section 3): one small interface through which a node submits entry bytes
 * and reads back the totally ordered stream of everything submitted. Ordering comes first and validation
 * after, on every node (order, then validate), so an engine never looks inside the bytes.
 *
 * The embedded engine is the default: the node is its own sequencer, and the stream is the store's durable
 * submissions table. A distributed engine (consortium mode, its own issue) implements the same interface
 * over a replicated log run by several orgs.
 */
import { LedgerError } from "../core/errors.ts";
import {
  MAX_APPEND_BATCH,
  MAX_ENTRY_BYTES,
  MAX_READ_LIMIT,
  type LedgerStore,
  type Submission,
} from "../store/types.ts";

/** Called after submissions became durable in the stream, with the stream's new length. */
export type AppendedListener = (length: bigint) => void;

/** The ordering-engine interface: submit bytes, read the ordered stream from any position. */
export interface OrderingEngine {
  /** Which engine this is ("embedded", ...), for logs and reports. */
  readonly kind: string;
  /**
   * Append byte strings to the ordered stream, in order; resolves with the sequence number of the first
   * once all of them are durable. Sequence numbers start at 0 and have no gaps.
   */
  submit(batch: readonly Uint8Array[]): Promise<bigint>;
  /** Submissions with seq >= fromSeq, in order: at most `limit` (1..MAX_READ_LIMIT), possibly fewer. */
  read(fromSeq: bigint, limit: number): Promise<Submission[]>;
  /** Number of durable submissions, which is also the next sequence number. */
  length(): Promise<bigint>;
  /** Register a listener for new durable submissions; returns a function that removes it. */
  onAppended(listener: AppendedListener): () => void;
  /** Flush what was submitted, refuse further submissions (CONFLICT) and release the engine. */
  close(): Promise<void>;
}

/** Check a batch of submissions from outside: 1..MAX_APPEND_BATCH byte strings of 1..MAX_ENTRY_BYTES. */
export function checkSubmissionBatch(batch: unknown): readonly Uint8Array[] {
  if (!Array.isArray(batch)) throw new LedgerError("INVALID_ARGUMENT", "submissions must be an array");
  if (batch.length === 0 || batch.length > MAX_APPEND_BATCH) {
    throw new LedgerError("INVALID_ARGUMENT", `a submission holds 1..${MAX_APPEND_BATCH} entries`);
  }
  for (const bytes of batch as unknown[]) {
    if (!(bytes instanceof Uint8Array)) throw new LedgerError("INVALID_ARGUMENT", "an entry must be bytes");
    if (bytes.length === 0) throw new LedgerError("INVALID_ARGUMENT", "an entry must not be empty");
    if (bytes.length > MAX_ENTRY_BYTES) {
      throw new LedgerError("TOO_LARGE", `an entry is at most ${MAX_ENTRY_BYTES} bytes`);
    }
  }
  return batch as readonly Uint8Array[];
}

/** A submit() call waiting for the next group commit. */
interface QueuedSubmit {
  readonly batch: readonly Uint8Array[];
  readonly resolve: (first: bigint) => void;
  readonly reject: (err: unknown) => void;
}

/** Bound on submissions queued for one group commit, so a burst cannot grow memory without limit. */
export const MAX_QUEUED_SUBMISSIONS = 100_000;

/**
 * The embedded engine: the stream is the store's submissions table. Submissions made in the same turn of
 * the event loop are group-committed: one store transaction (one fsync) for all of them, so many small
 * submit() calls cost one durable write, which is what lets a node reach thousands of entries per second.
 */
export class EmbeddedEngine implements OrderingEngine {
  readonly kind = "embedded";
  readonly #store: LedgerStore;
  readonly #listeners = new Set<AppendedListener>();
  #queue: QueuedSubmit[] = [];
  #queued = 0;
  #scheduled = false;
  #closed = false;

  /** An engine over a store's durable submissions stream. */
  constructor(store: LedgerStore) {
    this.#store = store;
  }

  /** Queue a batch for the next group commit; resolves with its first sequence number once durable. */
  async submit(batch: readonly Uint8Array[]): Promise<bigint> {
    if (this.#closed) throw new LedgerError("CONFLICT", "the ordering engine is closed");
    const checked = checkSubmissionBatch(batch);
    if (this.#queued + checked.length > MAX_QUEUED_SUBMISSIONS) {
      throw new LedgerError("CONFLICT", "the ordering engine is busy; retry later");
    }
    // Copy: the caller may reuse its buffers before the commit runs.
    const copy = checked.map((bytes) => bytes.slice());
    return new Promise<bigint>((resolve, reject) => {
      this.#queue.push({ batch: copy, resolve, reject });
      this.#queued += copy.length;
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: submissions arriving with the same I/O turn join this commit.
        setImmediate(() => this.#commit());
      }
    });
  }

  /** Read the stream from the store. */
  async read(fromSeq: bigint, limit: number): Promise<Submission[]> {
    if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
      throw new LedgerError("INVALID_ARGUMENT", `a read limit is 1..${MAX_READ_LIMIT}`);
    }
    return this.#store.readSubmissions(fromSeq, limit);
  }

  /** The number of durable submissions. */
  async length(): Promise<bigint> {
    return this.#store.submissionCount();
  }

  /** Register a listener for new durable submissions. */
  onAppended(listener: AppendedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Commit what is queued, then refuse further submissions. The store stays open (its owner closes it). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#queue.length > 0) this.#commit();
    this.#listeners.clear();
    await this.#store.flush();
  }

  #commit(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    this.#queued = 0;
    if (queue.length === 0) return;
    let firsts: bigint[];
    try {
      // One transaction for every queued submit: all of them become durable together, or none does.
      firsts = this.#store.transaction(() => this.#appendAll(queue));
    } catch (err) {
      for (const q of queue) q.reject(err);
      return;
    }
    queue.forEach((q, i) => q.resolve(firsts[i]!));
    const length = this.#store.submissionCount();
    for (const listener of this.#listeners) {
      try {
        listener(length);
      } catch {
        // A listener's failure is its own business; the submissions are durable either way.
      }
    }
  }

  /** Append the queued batches in order, in chunks the store takes in one call. */
  #appendAll(queue: readonly QueuedSubmit[]): bigint[] {
    const firsts: bigint[] = [];
    let chunk: Uint8Array[] = [];
    let chunkOwners: number[] = [];
    const flush = (): void => {
      if (chunk.length === 0) return;
      const first = this.#store.appendSubmissions(chunk);
      // Each queued batch's first submission is at its offset within the chunk.
      let offset = 0n;
      let last = -1;
      for (const owner of chunkOwners) {
        if (owner !== last && firsts[owner] === undefined) firsts[owner] = first + offset;
        last = owner;
        offset++;
      }
      chunk = [];
      chunkOwners = [];
    };
    queue.forEach((q, owner) => {
      for (const bytes of q.batch) {
        if (chunk.length === MAX_APPEND_BATCH) flush();
        chunk.push(bytes);
        chunkOwners.push(owner);
      }
    });
    flush();
    return firsts;
  }
}
