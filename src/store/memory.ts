/**
 * The in-memory store: the reference semantics every durable adapter must match (the conformance suite and
 * the differential property test compare them), and the store of tests and short-lived tools.
 *
 * Transactions keep an undo log: each write inside transaction() records how to reverse itself, and a throw
 * replays the log back to where that (possibly nested) call began. Copy-on-write of whole maps would make
 * every batch cost the size of the store.
 */
import { LedgerError } from "../core/errors.ts";
import { bytesEqual, fromHex, toHex } from "../core/encoding/bytes.ts";
import { leafHash } from "../core/merkle/hash.ts";
import type { MerkleNodeStore } from "../core/merkle/tree.ts";
import type { IndexBatch, PatientIndexStore } from "../core/patient-index/store.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import {
  checkBlob,
  checkCheckpoint,
  checkHash,
  checkIndexBatch,
  checkLimit,
  checkMetaKey,
  checkMetaValue,
  checkNewEntry,
  checkStoreInteger,
  checkSubmissions,
  checkSynchronousResult,
} from "./checks.ts";
import { HASH_BYTES, MAX_READ_BYTES, MAX_STORE_INTEGER, SCHEMA_VERSION } from "./types.ts";
import type { ChainHead, EntryRow, LedgerStore, NewEntry, StoredCheckpoint, Submission } from "./types.ts";

/** SHA-256 as the Merkle hashing takes it (a function, not a method). */
const sha256 = (data: Uint8Array): Uint8Array => nodeCrypto.sha256(data);

/** Highest Merkle node level: a tree of at most 2^64 - 1 leaves (as in src/core/merkle/tree.ts). */
const MAX_MERKLE_LEVEL = 63;

function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Copy rows until the limit or the byte budget is reached (always at least one row). */
function bounded<T>(rows: Iterable<T>, limit: number, sizeOf: (row: T) => number): T[] {
  const out: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (out.length >= limit || (out.length > 0 && bytes >= MAX_READ_BYTES)) break;
    out.push(row);
    bytes += sizeOf(row);
  }
  return out;
}

/** The in-memory LedgerStore. */
export class MemoryStore implements LedgerStore {
  readonly kind = "memory";
  readonly merkleNodes: MerkleNodeStore;
  readonly indexNodes: PatientIndexStore;

  readonly #submissions: Uint8Array[] = [];
  /** Entry rows by seq; their bytes are the submission's array, never handed out uncopied. */
  readonly #entries: EntryRow[] = [];
  /** seq (as a number: an in-memory log stays far below 2^53) of each accepted position. */
  readonly #positions: number[] = [];
  readonly #acceptedById = new Map<string, number>();
  readonly #firstRejectedById = new Map<string, number>();
  /** Positions of each patient's accepted entries, ascending. */
  readonly #byPatient = new Map<string, number[]>();
  readonly #merkle = new Map<string, Uint8Array>();
  readonly #indexBodies = new Map<string, Uint8Array>();
  #indexRoot: Uint8Array | undefined;
  readonly #checkpoints = new Map<bigint, string>();
  readonly #blobs = new Map<string, Uint8Array>();
  readonly #meta = new Map<string, string>([["schema_version", String(SCHEMA_VERSION)]]);
  /** The undo log while a transaction runs; null outside one. */
  #undo: (() => void)[] | null = null;
  #closed = false;

  /** A new, empty store. */
  constructor() {
    this.merkleNodes = {
      get: (level, index) => this.#merkleGet(level, index),
      put: (level, index, hash) => this.transaction(() => this.#merklePut(level, index, hash)),
    };
    this.indexNodes = {
      get: (hash) => this.#indexGet(hash),
      writeBatch: (batch) => this.transaction(() => this.#indexWrite(batch)),
      currentRoot: () => {
        this.#open();
        return this.#indexRoot === undefined ? undefined : copy(this.#indexRoot);
      },
    };
  }

  appendSubmissions(batch: readonly Uint8Array[]): bigint {
    this.#open();
    checkSubmissions(batch);
    return this.transaction(() => {
      const first = this.#submissions.length;
      for (const bytes of batch) this.#submissions.push(copy(bytes));
      this.#log(() => (this.#submissions.length = first));
      return BigInt(first);
    });
  }

  readSubmissions(fromSeq: bigint, limit: number): Submission[] {
    this.#open();
    checkStoreInteger(fromSeq, "fromSeq");
    checkLimit(limit);
    const rows = function* (list: readonly Uint8Array[]): Generator<Submission> {
      for (let seq = Number(fromSeq); seq < list.length; seq++) {
        yield { seq: BigInt(seq), bytes: copy(list[seq]!) };
      }
    };
    return bounded(
      rows(fromSeq < BigInt(this.#submissions.length) ? this.#submissions : []),
      limit,
      (s) => s.bytes.length,
    );
  }

  submissionCount(): bigint {
    this.#open();
    return BigInt(this.#submissions.length);
  }

  putEntry(entry: NewEntry): void {
    this.#open();
    checkNewEntry(entry);
    const seq = this.#entries.length;
    if (entry.seq !== BigInt(seq)) {
      throw new LedgerError("CONFLICT", `the next entry to record is seq ${seq}, not ${entry.seq}`);
    }
    const bytes = this.#submissions[seq];
    if (bytes === undefined) throw new LedgerError("CONFLICT", `there is no submission with seq ${seq}`);
    if (!bytesEqual(nodeCrypto.sha256(bytes), entry.id)) {
      throw new LedgerError("INVALID_ARGUMENT", `entry id is not the SHA-256 of submission ${seq}`);
    }
    const id = toHex(entry.id);
    if (entry.status === "accepted") {
      if (entry.position !== BigInt(this.#positions.length)) {
        throw new LedgerError(
          "CONFLICT",
          `an accepted entry takes position ${this.#positions.length}, not ${entry.position}`,
        );
      }
      if (this.#acceptedById.has(id)) {
        throw new LedgerError("CONFLICT", `entry ${id} is already accepted`);
      }
    }
    this.transaction(() => {
      const row: EntryRow = {
        seq: entry.seq,
        position: entry.position,
        id: copy(entry.id),
        status: entry.status,
        reason: entry.reason,
        patient: entry.patient === null ? null : copy(entry.patient),
        clinicalTime: entry.clinicalTime,
        bytes,
      };
      this.#entries.push(row);
      this.#log(() => this.#entries.pop());
      if (entry.status === "accepted") {
        const position = this.#positions.length;
        this.#positions.push(seq);
        this.#acceptedById.set(id, seq);
        this.#log(() => {
          this.#positions.pop();
          this.#acceptedById.delete(id);
        });
        if (row.patient !== null) {
          const key = toHex(row.patient);
          let list = this.#byPatient.get(key);
          if (list === undefined) {
            list = [];
            this.#byPatient.set(key, list);
          }
          list.push(position);
          this.#log(() => {
            list.pop();
            if (list.length === 0) this.#byPatient.delete(key);
          });
        }
      } else if (!this.#firstRejectedById.has(id)) {
        this.#firstRejectedById.set(id, seq);
        this.#log(() => this.#firstRejectedById.delete(id));
      }
    });
  }

  entryBySeq(seq: bigint): EntryRow | undefined {
    this.#open();
    checkStoreInteger(seq, "seq");
    return seq < BigInt(this.#entries.length) ? this.#row(Number(seq)) : undefined;
  }

  entryByPosition(position: bigint): EntryRow | undefined {
    this.#open();
    checkStoreInteger(position, "position");
    if (position >= BigInt(this.#positions.length)) return undefined;
    return this.#row(this.#positions[Number(position)]!);
  }

  entryById(id: Uint8Array): EntryRow | undefined {
    this.#open();
    const key = toHex(checkHash(id, "an entry id"));
    const seq = this.#acceptedById.get(key) ?? this.#firstRejectedById.get(key);
    return seq === undefined ? undefined : this.#row(seq);
  }

  readEntries(fromSeq: bigint, limit: number): EntryRow[] {
    this.#open();
    checkStoreInteger(fromSeq, "fromSeq");
    checkLimit(limit);
    const count = this.#entries.length;
    const rows = function* (self: MemoryStore): Generator<EntryRow> {
      for (let seq = Number(fromSeq); seq < count; seq++) yield self.#row(seq);
    };
    return fromSeq < BigInt(count) ? bounded(rows(this), limit, (e) => e.bytes.length) : [];
  }

  entryCount(): bigint {
    this.#open();
    return BigInt(this.#entries.length);
  }

  treeSize(): bigint {
    this.#open();
    return BigInt(this.#positions.length);
  }

  patientEntries(patient: Uint8Array, fromPosition: bigint, limit: number): EntryRow[] {
    this.#open();
    const positions = this.#byPatient.get(toHex(checkHash(patient, "a patient key"))) ?? [];
    checkStoreInteger(fromPosition, "fromPosition");
    checkLimit(limit);
    // Binary search for the first of the patient's positions >= fromPosition.
    let lo = 0;
    let hi = positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (BigInt(positions[mid]!) < fromPosition) lo = mid + 1;
      else hi = mid;
    }
    const rows = function* (self: MemoryStore): Generator<EntryRow> {
      for (let i = lo; i < positions.length; i++) yield self.#row(self.#positions[positions[i]!]!);
    };
    return bounded(rows(this), limit, (e) => e.bytes.length);
  }

  patientHead(patient: Uint8Array): ChainHead | undefined {
    this.#open();
    const positions = this.#byPatient.get(toHex(checkHash(patient, "a patient key")));
    if (positions === undefined) return undefined;
    const last = this.#entries[this.#positions[positions[positions.length - 1]!]!]!;
    return { head: copy(last.id), length: BigInt(positions.length) };
  }

  putCheckpoint(size: bigint, note: string): void {
    this.#open();
    checkCheckpoint(size, note);
    if (size > BigInt(this.#positions.length)) {
      throw new LedgerError(
        "CONFLICT",
        `a checkpoint of size ${size} is beyond the tree size ${this.#positions.length}`,
      );
    }
    this.transaction(() => {
      const before = this.#checkpoints.get(size);
      this.#checkpoints.set(size, note);
      this.#log(() => {
        if (before === undefined) this.#checkpoints.delete(size);
        else this.#checkpoints.set(size, before);
      });
    });
  }

  latestCheckpoint(): StoredCheckpoint | undefined {
    this.#open();
    let latest: StoredCheckpoint | undefined;
    for (const [size, note] of this.#checkpoints) {
      if (latest === undefined || size > latest.size) latest = { size, note };
    }
    return latest;
  }

  checkpointAt(size: bigint): string | undefined {
    this.#open();
    checkStoreInteger(size, "a checkpoint size");
    return this.#checkpoints.get(size);
  }

  putBlob(bytes: Uint8Array): Uint8Array {
    this.#open();
    checkBlob(bytes);
    const hash = nodeCrypto.sha256(bytes);
    const key = toHex(hash);
    if (!this.#blobs.has(key)) {
      this.transaction(() => {
        this.#blobs.set(key, copy(bytes));
        this.#log(() => this.#blobs.delete(key));
      });
    }
    return copy(hash);
  }

  getBlob(hash: Uint8Array): Uint8Array | undefined {
    this.#open();
    const blob = this.#blobs.get(toHex(checkHash(hash, "a blob hash")));
    return blob === undefined ? undefined : copy(blob);
  }

  hasBlob(hash: Uint8Array): boolean {
    this.#open();
    return this.#blobs.has(toHex(checkHash(hash, "a blob hash")));
  }

  deleteBlob(hash: Uint8Array): boolean {
    this.#open();
    const key = toHex(checkHash(hash, "a blob hash"));
    const blob = this.#blobs.get(key);
    if (blob === undefined) return false;
    this.transaction(() => {
      this.#blobs.delete(key);
      this.#log(() => this.#blobs.set(key, blob));
    });
    return true;
  }

  listBlobs(after: Uint8Array | null, limit: number): Uint8Array[] {
    this.#open();
    // Lower-case hex sorts exactly as the bytes do.
    const from = after === null ? "" : toHex(checkHash(after, "a blob hash"));
    checkLimit(limit);
    return [...this.#blobs.keys()]
      .filter((key) => key > from)
      .sort()
      .slice(0, limit)
      .map((key) => fromHex(key));
  }

  getMeta(key: string): string | undefined {
    this.#open();
    return this.#meta.get(checkMetaKey(key, false));
  }

  setMeta(key: string, value: string): void {
    this.#open();
    checkMetaKey(key, true);
    checkMetaValue(value);
    this.transaction(() => {
      const before = this.#meta.get(key);
      this.#meta.set(key, value);
      this.#log(() => {
        if (before === undefined) this.#meta.delete(key);
        else this.#meta.set(key, before);
      });
    });
  }

  transaction<T>(fn: () => T): T {
    this.#open();
    if (typeof fn !== "function") throw new LedgerError("INVALID_ARGUMENT", "a transaction needs a function");
    const outermost = this.#undo === null;
    const log = (this.#undo ??= []);
    const mark = log.length;
    try {
      const result = fn();
      checkSynchronousResult(result);
      if (outermost) this.#undo = null;
      return result;
    } catch (err) {
      while (log.length > mark) log.pop()!();
      if (outermost) this.#undo = null;
      throw err;
    }
  }

  async flush(): Promise<void> {
    this.#open();
  }

  close(): void {
    if (this.#undo !== null) throw new LedgerError("CONFLICT", "the store cannot close inside a transaction");
    this.#closed = true;
  }

  /** Record how to undo a write (writes always run inside transaction(), so the log exists). */
  #log(undo: () => void): void {
    if (this.#undo === null) throw new LedgerError("INTERNAL", "memory store write outside a transaction");
    this.#undo.push(undo);
  }

  #open(): void {
    if (this.#closed) throw new LedgerError("CONFLICT", "the store is closed");
  }

  #row(seq: number): EntryRow {
    const e = this.#entries[seq]!;
    return {
      seq: e.seq,
      position: e.position,
      id: copy(e.id),
      status: e.status,
      reason: e.reason,
      patient: e.patient === null ? null : copy(e.patient),
      clinicalTime: e.clinicalTime,
      bytes: copy(e.bytes),
    };
  }

  #merkleGet(level: number, index: bigint): Uint8Array | undefined {
    this.#open();
    if (!Number.isInteger(level) || typeof index !== "bigint") return undefined;
    const hash = this.#merkle.get(`${level}/${index}`);
    if (hash !== undefined) return copy(hash);
    return level === 0 ? this.#leafHash(index) : undefined;
  }

  /** The RFC 9162 leaf hash of the accepted entry at `position`, or undefined when there is none. */
  #leafHash(position: bigint): Uint8Array | undefined {
    if (position < 0n || position >= BigInt(this.#positions.length)) return undefined;
    return leafHash(sha256, this.#submissions[this.#positions[Number(position)]!]!);
  }

  #merklePut(level: number, index: bigint, hash: Uint8Array): void {
    if (!Number.isInteger(level) || level < 0 || level > MAX_MERKLE_LEVEL) {
      throw new LedgerError("INVALID_ARGUMENT", `node level must be an integer in 0..${MAX_MERKLE_LEVEL}`);
    }
    if (typeof index !== "bigint" || index < 0n || index > MAX_STORE_INTEGER) {
      throw new LedgerError("INVALID_ARGUMENT", "node index must be a bigint in 0..2^63-1");
    }
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
      throw new LedgerError("MALFORMED_INPUT", `a node hash must be ${HASH_BYTES} bytes`);
    }
    const key = `${level}/${index}`;
    const stored = this.#merkle.get(key) ?? (level === 0 ? this.#leafHash(index) : undefined);
    if (stored !== undefined) {
      if (!bytesEqual(stored, hash)) {
        throw new LedgerError("INCONSISTENT_TREE", `node (level ${level}, index ${index}) is already stored`);
      }
      return;
    }
    this.#merkle.set(key, copy(hash));
    this.#log(() => this.#merkle.delete(key));
  }

  #indexGet(hash: Uint8Array): Uint8Array | undefined {
    this.#open();
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) return undefined;
    const body = this.#indexBodies.get(toHex(hash));
    return body === undefined ? undefined : copy(body);
  }

  #indexWrite(batch: IndexBatch): void {
    checkIndexBatch(batch);
    for (const { hash, body } of batch.nodes) {
      const key = toHex(hash);
      if (this.#indexBodies.has(key)) continue;
      this.#indexBodies.set(key, copy(body));
      this.#log(() => this.#indexBodies.delete(key));
    }
    const before = this.#indexRoot;
    this.#indexRoot = copy(batch.root);
    this.#log(() => (this.#indexRoot = before));
  }
}
