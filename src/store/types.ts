/**
 * The ledger store: one interface for everything a node keeps on disk (DESIGN.md section 8), implemented by
 * an in-memory reference adapter and by SQLite, with PostgreSQL to come. See docs/store.md.
 *
 * The interface is synchronous. The hot path (Merkle appends, patient-index updates, one batch of thousands
 * of entries committed in one transaction) makes many small reads and writes, and better-sqlite3 answers
 * each in microseconds; a promise per call would cost more than the call. An adapter for a networked
 * database keeps the same shape with a write-behind unit of work per transaction and makes `flush()` the
 * point where the commit is awaited (docs/store.md, "PostgreSQL").
 *
 * Nothing here names a SQL type or a row id: sequence numbers, positions and node indices are bigints,
 * hashes are 32-byte arrays, and every value handed out is a fresh copy the caller may keep or change.
 */
import type { MerkleNodeStore } from "../core/merkle/tree.ts";
import type { PatientIndexStore } from "../core/patient-index/store.ts";

/** Bytes of every hash the store keys by (SHA-256). */
export const HASH_BYTES = 32;

/** The largest submission (an entry's canonical bytes): 1 MiB. Ciphertext beyond that goes to blobs. */
export const MAX_ENTRY_BYTES = 1024 * 1024;

/** The most submissions one appendSubmissions call takes (a batch of the ordering engine). */
export const MAX_APPEND_BATCH = 10_000;

/** The most rows one range read returns (readSubmissions, readEntries, patientEntries, listBlobs). */
export const MAX_READ_LIMIT = 10_000;

/**
 * A range read stops early once it has gathered this many bytes (it always returns at least one row), so a
 * read of 10,000 one-MiB entries cannot ask for 10 GiB at once. Callers page on until a read is empty.
 */
export const MAX_READ_BYTES = 16 * 1024 * 1024;

/** The largest blob: 64 MiB, held in memory whole. Streaming in chunks comes later (docs/store.md). */
export const MAX_BLOB_BYTES = 64 * 1024 * 1024;

/** The longest checkpoint text (a C2SP signed note with its cosignatures), in UTF-16 code units. */
export const MAX_CHECKPOINT_CHARS = 64 * 1024;

/** The longest metadata value, in UTF-16 code units. */
export const MAX_META_VALUE_CHARS = 4096;

/** The longest rejection reason code. */
export const MAX_REASON_CHARS = 64;

/** The longest clinical time (a coarse date such as "2024-03" or "2024-03-15"). */
export const MAX_CLINICAL_TIME_CHARS = 32;

/** The largest sequence number, position or node index a store accepts: 2^63 - 1 (a signed 64-bit key). */
export const MAX_STORE_INTEGER = (1n << 63n) - 1n;

/** Metadata keys the store itself owns; setMeta refuses them. */
export const RESERVED_META_KEYS: readonly string[] = ["schema_version"];

/** The schema version this build writes and reads (2: the compact SQLite schema, docs/store.md). */
export const SCHEMA_VERSION = 2;

/** One submission of the ordering engine's durable stream: its sequence number and its bytes. */
export interface Submission {
  readonly seq: bigint;
  readonly bytes: Uint8Array;
}

/** What the validator decided about a submission. */
export type EntryStatus = "accepted" | "rejected";

/** A processed submission as the validator records it (its bytes are the submission's, kept once). */
export interface NewEntry {
  /** Sequence number of the submission it processes: always the next unprocessed one. */
  readonly seq: bigint;
  /** Leaf index in the Merkle log when accepted (always the current tree size); null when rejected. */
  readonly position: bigint | null;
  /** SHA-256 of the submission's bytes (the entry id); the store checks it. */
  readonly id: Uint8Array;
  readonly status: EntryStatus;
  /** A stable rejection code (upper-case letters, digits, underscores) when rejected; null when accepted. */
  readonly reason: string | null;
  /** The 32-byte patient-index key of the patient the entry is about, or null. */
  readonly patient: Uint8Array | null;
  /** Coarse clinical time as the entry states it, or null; ordering by it happens above the store. */
  readonly clinicalTime: string | null;
}

/** A stored entry: the validator's row and the submission's bytes. */
export interface EntryRow extends NewEntry {
  readonly bytes: Uint8Array;
}

/** A stored checkpoint: the tree size it commits to and the signed note text. */
export interface StoredCheckpoint {
  readonly size: bigint;
  readonly note: string;
}

/** A patient's chain as derived from the accepted entries: the id of the last one and their number. */
export interface ChainHead {
  readonly head: Uint8Array;
  readonly length: bigint;
}

/** Everything a node stores. All methods are synchronous; every write outside transaction() is atomic alone. */
export interface LedgerStore {
  /** Which adapter this is ("memory", "sqlite"), for logs and reports. */
  readonly kind: string;

  /**
   * Merkle log nodes: (level, index) -> 32-byte hash, immutable once written. The leaf (level 0) at an
   * accepted position is that entry's RFC 9162 leaf hash, whether or not it was put: putting it is a no-op,
   * putting another hash there INCONSISTENT_TREE (so an adapter need not store leaves it can recompute).
   */
  readonly merkleNodes: MerkleNodeStore;

  /** Patient-index nodes, content-addressed, and the current index root. */
  readonly indexNodes: PatientIndexStore;

  /**
   * Append submissions to the ordering stream, in order, atomically; returns the sequence number of the
   * first (sequence numbers start at 0 and have no gaps). Each is 1 byte to MAX_ENTRY_BYTES.
   */
  appendSubmissions(batch: readonly Uint8Array[]): bigint;

  /** Submissions with seq >= fromSeq, in order: at most `limit` (1..MAX_READ_LIMIT) and MAX_READ_BYTES. */
  readSubmissions(fromSeq: bigint, limit: number): Submission[];

  /** Number of submissions, which is also the next sequence number. */
  submissionCount(): bigint;

  /**
   * Record the validator's decision for the next unprocessed submission. Refuses (CONFLICT) a seq that is
   * not next, a position that is not the current tree size, and an accepted id already accepted.
   */
  putEntry(entry: NewEntry): void;

  /** The entry of a sequence number, or undefined when not processed yet. */
  entryBySeq(seq: bigint): EntryRow | undefined;

  /** The accepted entry at a leaf position, or undefined. */
  entryByPosition(position: bigint): EntryRow | undefined;

  /** The accepted entry with this id or, when none was accepted, the first rejected one; else undefined. */
  entryById(id: Uint8Array): EntryRow | undefined;

  /** Entries with seq >= fromSeq in order (accepted and rejected), bounded like readSubmissions. */
  readEntries(fromSeq: bigint, limit: number): EntryRow[];

  /** Number of processed submissions (entry rows), which is also the next seq to process. */
  entryCount(): bigint;

  /** Number of accepted entries: the Merkle tree size, and the next position. */
  treeSize(): bigint;

  /** A patient's accepted entries with position >= fromPosition, in ledger order, bounded like reads. */
  patientEntries(patient: Uint8Array, fromPosition: bigint, limit: number): EntryRow[];

  /** A patient's chain head and length, derived from the accepted entries; undefined when none. */
  patientHead(patient: Uint8Array): ChainHead | undefined;

  /**
   * Store the checkpoint (signed note) for a tree size no larger than treeSize(). Storing again at the same
   * size replaces the text: witnesses' cosignatures arrive after the checkpoint is first written.
   */
  putCheckpoint(size: bigint, note: string): void;

  /** The checkpoint of the largest size, or undefined. */
  latestCheckpoint(): StoredCheckpoint | undefined;

  /** The checkpoint text at exactly this size, or undefined. */
  checkpointAt(size: bigint): string | undefined;

  /** Store a blob (0 to MAX_BLOB_BYTES) under its SHA-256 and return that hash; storing it again is a no-op. */
  putBlob(bytes: Uint8Array): Uint8Array;

  /** The blob with this SHA-256, or undefined. */
  getBlob(hash: Uint8Array): Uint8Array | undefined;

  /** Whether a blob with this SHA-256 is stored. */
  hasBlob(hash: Uint8Array): boolean;

  /** Delete a blob (erasure); returns whether it was there. */
  deleteBlob(hash: Uint8Array): boolean;

  /** Hashes of stored blobs greater than `after` (null: from the first), in byte order, at most `limit`. */
  listBlobs(after: Uint8Array | null, limit: number): Uint8Array[];

  /** A metadata value, or undefined. */
  getMeta(key: string): string | undefined;

  /** Set a metadata value (keys: lower-case letters, digits, "_", "." and "-"; reserved keys refused). */
  setMeta(key: string, value: string): void;

  /**
   * Run fn as one atomic unit and return its result: everything written inside commits together (durably,
   * for a durable adapter) or not at all. A nested call joins the outer unit; when fn throws, its own writes
   * are undone and the error is rethrown. fn must be synchronous (a returned promise is refused).
   */
  transaction<T>(fn: () => T): T;

  /**
   * Resolves once every transaction committed so far is durable. Immediate for SQLite (a commit returns
   * only after its fsync) and memory; a write-behind adapter awaits its commit here. Acknowledge after it.
   */
  flush(): Promise<void>;

  /** Release the store; later calls fail with CONFLICT. Closing twice is a no-op. */
  close(): void;
}
