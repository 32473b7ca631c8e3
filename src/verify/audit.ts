/**
 * The audit behind `medledger verify` (docs/verify.md): everything a node's store claims, recomputed from
 * its raw rows, trusting nothing in it. Pure over a LedgerStore and a CryptoSuite (no files, no threads;
 * the parallel signature pre-check is handed in), so it audits any adapter.
 *
 * In one pass over the ordered stream, in sequence order: each submission is judged by a fresh validator
 * (applyEntry) at its ledger time and its entry row must agree; each accepted entry's leaf is appended to a
 * recomputed Merkle tree whose every node must equal the stored one; each stored checkpoint must be signed
 * by the log key over the recomputed root and patient-index root at its size, and the index nodes of the
 * block it ends must be stored. Then the store-wide values: counts, the current index root, a full audit of
 * the stored index, every patient's chain head, and every blob against its hash. The audit stops at the
 * first fault and names where it is.
 */
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { bytesEqual, fromBase64, fromHex, toHex } from "../core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../core/errors.ts";
import { LedgerState, MAX_LEDGER_TIME, type Position, type StateChange } from "../core/ledger/state.ts";
import { applyEntry } from "../core/ledger/validator.ts";
import { MerkleTree, type MerkleNodeStore } from "../core/merkle/tree.ts";
import { openCheckpoint } from "../core/note/checkpoint.ts";
import { parseNoteVerifierKey, type NoteVerifier } from "../core/note/signed-note.ts";
import { EMPTY_HASH, patientIndexKey } from "../core/patient-index/hashing.ts";
import type { IndexBatch, PatientIndexStore } from "../core/patient-index/store.ts";
import { PatientIndex } from "../core/patient-index/tree.ts";
import type { EntryRow, LedgerStore } from "../store/types.ts";
import { META_LEDGER_TIME_PREFIX, META_LOG_VKEY, META_ORIGIN, PATIENT_INDEX_EXTENSION } from "./contract.ts";
import {
  AuditStop,
  atBlob,
  atCheckpoint,
  atPatient,
  atPosition,
  atSeq,
  atStore,
  fail,
  oneLine,
  type AuditFailure,
  type CheckName,
  type Place,
} from "./failure.ts";
import {
  VerdictCache,
  binaryKey,
  precheckedCrypto,
  type PrecheckJob,
  type PrecheckVerdicts,
  type SignaturePrechecker,
} from "./precheck.ts";

/** Entries per chunk handed to the pre-checker: small enough to keep every thread busy, large enough to amortise a message. */
export const AUDIT_CHUNK_ENTRIES = 500;
/** Blobs per listing page. */
const BLOB_PAGE = 1000;
/** Patient-index nodes the audit keeps in memory between blocks before starting afresh (about 25 MB). */
const INDEX_CACHE_NODES = 200_000;

/** What to audit and with what. */
export interface AuditOptions {
  readonly store: LedgerStore;
  readonly crypto: CryptoSuite;
  /** The log origin the auditor expects (checkpoint origin line, genesis origin, store meta). */
  readonly origin: string;
  /** The log's C2SP verifier key the auditor trusts (also expected in store meta). */
  readonly logKey: string;
  /** Verifies signatures ahead of the validator, in parallel; without one everything runs inline. */
  readonly precheck?: SignaturePrechecker;
  /** Told how far the audit got, about once per chunk. */
  readonly onProgress?: (progress: AuditProgress) => void;
  /** Milliseconds for the timings (default performance.now). */
  readonly clock?: () => number;
}

/** How far an audit got. */
export interface AuditProgress {
  readonly phase: "entries" | "index" | "patients" | "blobs";
  readonly done: number;
  /** The total when known in advance (entries, patients), else undefined. */
  readonly total: number | undefined;
}

/** The outcome of an audit: the counts verified, and the first fault (null when there is none). */
export interface AuditReport {
  readonly ok: boolean;
  /** Entry rows checked (one per submission), accepted and rejected. */
  readonly entries: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly checkpoints: number;
  readonly blobs: number;
  readonly patients: number;
  /** The recomputed Merkle tree size and root (hex), as far as the audit got. */
  readonly size: number;
  readonly root: string;
  /** The recomputed patient-index root (hex). */
  readonly indexRoot: string;
  readonly failure: AuditFailure | null;
  /** True when the store grew while it was audited (a running node): end-of-log checks were skipped. */
  readonly live: boolean;
  /** Threads that pre-checked signatures (0: all inline) and how signatures were answered. */
  readonly threads: number;
  readonly signatures: { readonly prechecked: number; readonly inline: number };
  /** Milliseconds per phase and in total. */
  readonly timings: {
    readonly entriesMs: number;
    readonly indexMs: number;
    readonly patientsMs: number;
    readonly blobsMs: number;
    readonly totalMs: number;
  };
}

/**
 * A ledger state that remembers what the last accepted entry changed, so the audit learns the entry's
 * patient and clinical time from the validator's own reading of it instead of decoding it a second time.
 */
class ObservedState extends LedgerState {
  lastCommit: { readonly chain: string | null; readonly changes: readonly StateChange[] } | null = null;

  override commit(
    id: string,
    position: Position,
    chain: string | null,
    changes: readonly StateChange[],
  ): void {
    this.lastCommit = { chain, changes };
    super.commit(id, position, chain, changes);
  }
}

/**
 * The Merkle node store of the recomputed tree: it keeps nothing, and checks every node the tree completes
 * against the stored one at the same (level, index). The tree never reads nodes while appending.
 */
class CheckedMerkleNodes implements MerkleNodeStore {
  readonly #stored: MerkleNodeStore;

  constructor(stored: MerkleNodeStore) {
    this.#stored = stored;
  }

  get(): Uint8Array | undefined {
    return undefined;
  }

  put(level: number, index: bigint, hash: Uint8Array): void {
    // A node of level L at index i covers leaves [i * 2^L, (i + 1) * 2^L): name its first leaf.
    const place = atPosition(index << BigInt(level));
    let stored: Uint8Array | undefined;
    try {
      stored = this.#stored.get(level, index);
    } catch (err) {
      fail(
        place,
        codeOf(err, "STORE_CORRUPT"),
        "merkle-node",
        `stored Merkle node (level ${level}, index ${index}) cannot be read: ${messageOf(err)}`,
      );
    }
    if (stored === undefined) {
      fail(
        place,
        "INCONSISTENT_TREE",
        "merkle-node",
        `Merkle node (level ${level}, index ${index}) is missing from the store`,
      );
    }
    if (!bytesEqual(stored, hash)) {
      fail(
        place,
        "INCONSISTENT_TREE",
        "merkle-node",
        `stored Merkle node (level ${level}, index ${index}) is ${toHex(stored)}, recomputed ${toHex(hash)}`,
      );
    }
  }
}

/**
 * The node store of the recomputed patient index. Every node the index writes must already be stored
 * with the same body (the node wrote it when it committed the block); the nodes it reads are ones it wrote
 * earlier, served from a bounded cache or read back from the store and re-hashed, so a changed row can
 * never feed the recomputation.
 */
class CheckedIndexNodes implements PatientIndexStore {
  readonly #stored: PatientIndexStore;
  readonly #sha: (data: Uint8Array) => Uint8Array;
  readonly #cache = new Map<string, Uint8Array>();
  #root: Uint8Array | undefined;
  /** The checkpoint whose block is being indexed, for fault reports. */
  place: Place = atStore("patient index");

  constructor(stored: PatientIndexStore, sha: (data: Uint8Array) => Uint8Array) {
    this.#stored = stored;
    this.#sha = sha;
  }

  get(hash: Uint8Array): Uint8Array | undefined {
    const key = binaryKey(hash);
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const body = this.#read(hash);
    if (!bytesEqual(this.#sha(body), hash)) {
      fail(
        this.place,
        "INCONSISTENT_TREE",
        "index-node",
        `stored patient-index node ${toHex(hash)} does not hash to its key`,
      );
    }
    this.#remember(key, body);
    return body;
  }

  writeBatch(batch: IndexBatch): void {
    for (const { hash, body } of batch.nodes) {
      const stored = this.#read(hash);
      if (!bytesEqual(stored, body)) {
        fail(
          this.place,
          "INCONSISTENT_TREE",
          "index-node",
          `stored patient-index node ${toHex(hash)} differs from the recomputed node`,
        );
      }
      // The index may reuse the body's buffer: keep a copy.
      this.#remember(binaryKey(hash), body.slice());
    }
    this.#root = batch.root.slice();
  }

  currentRoot(): Uint8Array | undefined {
    return this.#root?.slice();
  }

  #read(hash: Uint8Array): Uint8Array {
    let body: Uint8Array | undefined;
    try {
      body = this.#stored.get(hash);
    } catch (err) {
      fail(
        this.place,
        codeOf(err, "STORE_CORRUPT"),
        "index-node",
        `patient-index node ${toHex(hash)} cannot be read: ${messageOf(err)}`,
      );
    }
    if (body === undefined) {
      fail(
        this.place,
        "INCONSISTENT_TREE",
        "index-node",
        `patient-index node ${toHex(hash)} of this block is missing from the store`,
      );
    }
    return body;
  }

  #remember(key: string, body: Uint8Array): void {
    // Bounded: every version of every path is written once, and only the recent ones are read again.
    if (this.#cache.size >= INDEX_CACHE_NODES) this.#cache.clear();
    this.#cache.set(key, body);
  }
}

/** A chunk of the stream read ahead of the validator, with its signatures being pre-checked. */
interface Chunk {
  readonly rows: EntryRow[];
  /** A row that could not be read: the audit stops there once the rows before it are checked. */
  readonly fault: { readonly seq: bigint; readonly error: unknown } | undefined;
  /** Checkpoint notes probed while reading ahead, by tree size (null: none stored at that size). */
  readonly notes: Map<bigint, string | null>;
  readonly verdicts: Promise<PrecheckVerdicts | null>;
}

function codeOf(err: unknown, fallback: ErrorCode): ErrorCode {
  return isLedgerError(err) ? err.code : fallback;
}

function messageOf(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : "unexpected error");
}

function bytesOrNullEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a === null || b === null ? a === b : bytesEqual(a, b);
}

function describeKey(key: Uint8Array | null): string {
  return key === null ? "none" : toHex(key);
}

/** One audit run; `run()` is called once. */
class Audit {
  readonly #o: AuditOptions;
  readonly #store: LedgerStore;
  readonly #sha: (data: Uint8Array) => Uint8Array;
  readonly #cache = new VerdictCache();
  readonly #crypto: CryptoSuite;
  readonly #state: ObservedState;
  #logKey: NoteVerifier | undefined;
  readonly #merkle: MerkleTree;
  readonly #indexNodes: CheckedIndexNodes;
  readonly #index: PatientIndex;
  readonly #clock: () => number;
  /** Where the audit is, for faults raised by code that does not know (a store read, the validator). */
  #place: Place = atStore("meta");
  #check: CheckName = "store-read";
  #entries = 0;
  #accepted = 0;
  #rejected = 0;
  #checkpoints = 0;
  #blobs = 0;
  #size = 0n;
  #lastCheckpoint = 0n;
  #time = -1;
  #live = false;
  /** Patients whose chain moved since the last checkpoint: index key (hex) -> patient id. */
  readonly #moved = new Map<string, string>();
  readonly #timings = { entriesMs: 0, indexMs: 0, patientsMs: 0, blobsMs: 0, totalMs: 0 };

  constructor(options: AuditOptions) {
    this.#o = options;
    this.#store = options.store;
    this.#sha = (data) => options.crypto.sha256(data);
    this.#crypto = precheckedCrypto(options.crypto, this.#cache);
    this.#state = new ObservedState(this.#crypto);
    this.#merkle = MerkleTree.create(this.#sha, new CheckedMerkleNodes(options.store.merkleNodes));
    this.#indexNodes = new CheckedIndexNodes(options.store.indexNodes, this.#sha);
    this.#index = new PatientIndex(this.#sha, this.#indexNodes);
    this.#clock = options.clock ?? (() => performance.now());
  }

  async run(): Promise<AuditReport> {
    const start = this.#clock();
    let failure: AuditFailure | null = null;
    try {
      this.#at(atStore("log key", "node"), "log-key");
      this.#logKey = parseNoteVerifierKey(this.#crypto, this.#o.logKey);
      this.#checkMeta();
      this.#at(atStore("entry count"));
      const count = this.#store.entryCount();
      let phase = this.#clock();
      await this.#checkStream(count);
      this.#timings.entriesMs = this.#clock() - phase;
      this.#checkEnd(count);
      phase = this.#clock();
      this.#checkIndex();
      this.#timings.indexMs = this.#clock() - phase;
      phase = this.#clock();
      this.#checkPatients();
      this.#timings.patientsMs = this.#clock() - phase;
      phase = this.#clock();
      this.#checkBlobs();
      this.#timings.blobsMs = this.#clock() - phase;
    } catch (err) {
      failure =
        err instanceof AuditStop
          ? err.failure
          : {
              ...this.#place,
              code: codeOf(err, "INTERNAL"),
              check: isLedgerError(err) ? this.#check : "internal",
              message: messageOf(err),
            };
    }
    this.#timings.totalMs = this.#clock() - start;
    return {
      ok: failure === null,
      entries: this.#entries,
      accepted: this.#accepted,
      rejected: this.#rejected,
      checkpoints: this.#checkpoints,
      blobs: this.#blobs,
      patients: this.#state.patients.size,
      size: Number(this.#size),
      root: toHex(this.#merkle.root()),
      indexRoot: toHex(this.#index.root),
      failure,
      live: this.#live,
      threads: this.#o.precheck?.threads ?? 0,
      signatures: { prechecked: this.#cache.hits, inline: this.#cache.misses },
      timings: { ...this.#timings },
    };
  }

  /** Say where the audit is: an error thrown by code that does not know (a store read) is reported there. */
  #at(place: Place, check: CheckName = "store-read"): void {
    this.#place = place;
    this.#check = check;
  }

  /** The store must say it is this log: the origin and the log key the auditor trusts. */
  #checkMeta(): void {
    this.#at(atStore(`meta ${META_ORIGIN}`), "store-meta");
    const origin = this.#store.getMeta(META_ORIGIN);
    if (origin !== this.#o.origin) {
      fail(
        this.#place,
        "ORIGIN_MISMATCH",
        "store-meta",
        `the store names origin ${JSON.stringify(origin ?? null)}, the node ${JSON.stringify(this.#o.origin)}`,
      );
    }
    this.#at(atStore(`meta ${META_LOG_VKEY}`), "store-meta");
    const vkey = this.#store.getMeta(META_LOG_VKEY);
    if (vkey !== this.#o.logKey) {
      fail(this.#place, "KEY_INVALID", "log-key", "the store's log key is not the log key the audit trusts");
    }
  }

  /** The ordered stream, seq 0 to count - 1, read ahead in chunks whose signatures are pre-checked. */
  async #checkStream(count: bigint): Promise<void> {
    const precheck = this.#o.precheck;
    const depth = Math.max(2, (precheck?.threads ?? 0) * 3);
    const queue: Chunk[] = [];
    let next = 0n;
    let exhausted = count === 0n;
    const fill = (): void => {
      while (!exhausted && queue.length < depth) {
        const chunk = this.#readChunk(next, count);
        queue.push(chunk);
        const last = chunk.rows[chunk.rows.length - 1];
        if (chunk.fault !== undefined || last === undefined || last.seq + 1n >= count) exhausted = true;
        else next = last.seq + 1n;
      }
    };
    this.#at(atSeq(0n));
    // A checkpoint of the empty tree is not part of the contract, but if one is stored it must be right.
    const empty = this.#store.checkpointAt(0n);
    if (empty !== undefined) await this.#checkCheckpoint(0n, empty);
    let expected = 0n;
    fill();
    while (queue.length > 0) {
      const chunk = queue.shift()!;
      fill();
      const verdicts = await chunk.verdicts;
      if (verdicts !== null) this.#cache.add(verdicts);
      for (const row of chunk.rows) {
        this.#expectRow(expected, row.seq);
        await this.#checkRow(row, chunk.notes);
        expected = row.seq + 1n;
        this.#entries++;
      }
      this.#cache.clear();
      if (chunk.fault !== undefined) {
        this.#expectRow(expected, chunk.fault.seq);
        const err = chunk.fault.error;
        fail(
          atSeq(chunk.fault.seq),
          codeOf(err, "STORE_CORRUPT"),
          "store-read",
          `the entry row cannot be read: ${messageOf(err)}`,
        );
      }
      this.#o.onProgress?.({ phase: "entries", done: this.#entries, total: Number(count) });
    }
    this.#expectRow(expected, count);
  }

  /** Rows must come with every sequence number in turn: a skipped one lacks its row or its submission. */
  #expectRow(expected: bigint, seq: bigint): void {
    if (seq === expected) return;
    this.#at(atSeq(expected), "stream");
    const submission = this.#store.readSubmissions(expected, 1)[0];
    const what =
      submission === undefined || submission.seq !== expected
        ? "there is no submission with this sequence number"
        : "the submission has no entry row";
    fail(this.#place, "STORE_CORRUPT", "stream", what);
  }

  /** Read the next chunk of rows (below `count`), isolating an unreadable row, and start its pre-check. */
  #readChunk(from: bigint, count: bigint): Chunk {
    const limit = Number(
      count - from < BigInt(AUDIT_CHUNK_ENTRIES) ? count - from : BigInt(AUDIT_CHUNK_ENTRIES),
    );
    let rows: EntryRow[];
    let fault: Chunk["fault"];
    try {
      rows = this.#store.readEntries(from, limit).filter((row) => row.seq < count);
    } catch {
      // One row of the page is malformed: read row by row to find which, keeping those before it.
      rows = [];
      let seq = from;
      while (rows.length < limit) {
        try {
          const row = this.#store.readEntries(seq, 1)[0];
          if (row === undefined || row.seq >= count) break;
          rows.push(row);
          seq = row.seq + 1n;
        } catch (error) {
          fault = { seq, error };
          break;
        }
      }
    }
    const notes = new Map<bigint, string | null>();
    for (const row of rows) {
      if (row.status !== "accepted" || row.position === null) continue;
      const size = row.position + 1n;
      try {
        notes.set(size, this.#store.checkpointAt(size) ?? null);
      } catch {
        // Read again in order, where its fault is reported at the right place.
      }
    }
    const precheck = this.#o.precheck;
    let verdicts: Promise<PrecheckVerdicts | null> = Promise.resolve(null);
    if (precheck !== undefined && rows.length > 0) {
      let total = 0;
      for (const row of rows) total += row.bytes.length;
      const data = new Uint8Array(total);
      const ends = new Uint32Array(rows.length);
      let at = 0;
      rows.forEach((row, i) => {
        data.set(row.bytes, at);
        at += row.bytes.length;
        ends[i] = at;
      });
      const job: PrecheckJob = { data, ends, notes: [...notes.values()].filter((n) => n !== null) };
      // A failed pre-check costs time, not correctness: the validator then verifies inline.
      verdicts = precheck.check(job).catch(() => null);
    }
    return { rows, fault, notes, verdicts };
  }

  /** The ledger time in force at a seq: `ledger_time.<seq>` when stored, else the previous one. */
  #timeAt(seq: bigint): number {
    const text = this.#store.getMeta(`${META_LEDGER_TIME_PREFIX}${seq}`);
    if (text === undefined) {
      if (this.#time < 0)
        fail(atSeq(seq), "STORE_CORRUPT", "ledger-time", "no ledger time is recorded for the first batch");
      return this.#time;
    }
    if (!/^(0|[1-9][0-9]{0,14})$/.test(text) || Number(text) > MAX_LEDGER_TIME) {
      fail(
        atSeq(seq),
        "STORE_CORRUPT",
        "ledger-time",
        `the recorded ledger time ${JSON.stringify(text)} is not Unix seconds`,
      );
    }
    const time = Number(text);
    if (time < this.#time) {
      fail(atSeq(seq), "STORE_CORRUPT", "ledger-time", `ledger time goes back from ${this.#time} to ${time}`);
    }
    this.#time = time;
    return time;
  }

  /** One submission: the validator's verdict, the row's agreement, then the log and its checkpoint. */
  async #checkRow(row: EntryRow, notes: ReadonlyMap<bigint, string | null>): Promise<void> {
    const seq = row.seq;
    const place = atSeq(seq);
    this.#at(place);
    const time = this.#timeAt(seq);
    this.#at(place, "entry-verdict");
    this.#state.lastCommit = null;
    const verdict = await applyEntry(this.#state, row.bytes, { seq: Number(seq), time });
    // An accepted entry's id is the validator's SHA-256 of its bytes; a rejected one may not have been hashed.
    const id = verdict.accepted ? verdict.id : toHex(this.#sha(row.bytes));
    const rowId = toHex(row.id);
    if (rowId !== id) {
      fail(
        place,
        "STORE_CORRUPT",
        "entry-id",
        `the row's id ${rowId} is not the SHA-256 of the submission, ${id}`,
      );
    }
    if (seq === 0n && !(verdict.accepted && this.#state.origin !== null)) {
      fail(place, "STORE_CORRUPT", "genesis", "seq 0 is not an accepted genesis entry");
    }
    if (!verdict.accepted) {
      this.#rejected++;
      if (row.status !== "rejected") {
        fail(
          place,
          "STORE_CORRUPT",
          "entry-verdict",
          `the row says accepted; the validator rejects it: ${verdict.reason} (${verdict.detail})`,
        );
      }
      if (row.reason !== verdict.reason) {
        fail(
          place,
          "STORE_CORRUPT",
          "entry-reason",
          `the row's rejection reason is ${JSON.stringify(row.reason)}, the validator's ${verdict.reason}`,
        );
      }
      // A rejected entry is about nobody as far as the ledger knows (the node records no patient or time).
      if (row.patient !== null)
        fail(place, "STORE_CORRUPT", "entry-patient", "a rejected entry's row names a patient");
      if (row.clinicalTime !== null) {
        fail(place, "STORE_CORRUPT", "entry-clinical-time", "a rejected entry's row has a clinical time");
      }
      return;
    }
    this.#accepted++;
    if (row.status !== "accepted") {
      fail(
        place,
        "STORE_CORRUPT",
        "entry-verdict",
        `the row says rejected (${row.reason ?? ""}); the validator accepts it`,
      );
    }
    if (seq === 0n && this.#state.origin !== this.#o.origin) {
      fail(
        place,
        "ORIGIN_MISMATCH",
        "genesis",
        `genesis names origin ${JSON.stringify(this.#state.origin)}, the node ${JSON.stringify(this.#o.origin)}`,
      );
    }
    if (row.position !== this.#size) {
      fail(
        place,
        "STORE_CORRUPT",
        "entry-position",
        `the row's position is ${row.position ?? "none"}; the next leaf is ${this.#size}`,
      );
    }
    const { patient, clinicalTime } = this.#describe(verdict.id);
    const key = patient === null ? null : patientIndexKey(this.#sha, patient);
    if (!bytesOrNullEqual(row.patient, key)) {
      fail(
        place,
        "STORE_CORRUPT",
        "entry-patient",
        `the row's patient key is ${describeKey(row.patient)}, expected ${describeKey(key)}`,
      );
    }
    if (row.clinicalTime !== clinicalTime) {
      fail(
        place,
        "STORE_CORRUPT",
        "entry-clinical-time",
        `the row's clinical time is ${JSON.stringify(row.clinicalTime)}, the entry's ${JSON.stringify(clinicalTime)}`,
      );
    }
    if (key !== null) this.#moved.set(toHex(key), patient!);
    this.#at(atPosition(this.#size), "merkle-node");
    this.#merkle.append(row.bytes);
    this.#size++;
    const size = this.#size;
    this.#at(atCheckpoint(size));
    const note = notes.has(size) ? notes.get(size)! : this.#store.checkpointAt(size);
    if (note !== undefined && note !== null) await this.#checkCheckpoint(size, note);
  }

  /** The patient an accepted entry moved and its clinical time, from what the validator committed. */
  #describe(id: string): { patient: string | null; clinicalTime: string | null } {
    const commit = this.#state.lastCommit;
    if (commit === null) return { patient: null, clinicalTime: null };
    let patient = commit.chain;
    let clinicalTime: string | null = null;
    for (const change of commit.changes) {
      // An enrolment starts a chain rather than extending one: its patient is the one it creates.
      if (patient === null && change.type === "patient") patient = change.patient.id;
      // A record version made by this entry (append or amend) carries the clinical month.
      if (change.type === "record" && change.record.entry === id) clinicalTime = change.record.month;
    }
    return { patient, clinicalTime };
  }

  /**
   * A checkpoint at a tree size the recomputed tree has just reached: it ends a block, so first index the
   * block (checking its index nodes are stored), then check the note against the recomputed roots.
   */
  async #checkCheckpoint(size: bigint, note: string): Promise<void> {
    const place = atCheckpoint(size);
    this.#at(place, "index-node");
    if (this.#moved.size > 0) {
      this.#indexNodes.place = place;
      const changes = [...this.#moved].map(([key, patient]) => {
        const head = this.#state.chainHead(patient)!;
        return { key: fromHex(key), value: head };
      });
      this.#index.update(changes);
      this.#moved.clear();
    }
    this.#at(place, "checkpoint-signature");
    let opened;
    try {
      opened = await openCheckpoint(note, this.#o.origin, this.#logKey!);
    } catch (err) {
      const code = codeOf(err, "CHECKPOINT_INVALID");
      const check: CheckName =
        code === "SIGNATURE_INVALID"
          ? "checkpoint-signature"
          : code === "ORIGIN_MISMATCH"
            ? "checkpoint-origin"
            : "checkpoint-format";
      fail(place, code, check, messageOf(err));
    }
    // Today only the log signs; a line by any other key is something the audit cannot vouch for.
    if (opened.note.unknown.length > 0) {
      fail(
        place,
        "SIGNATURE_INVALID",
        "checkpoint-signature",
        "the checkpoint carries a signature by a key other than the log key",
      );
    }
    const checkpoint = opened.checkpoint;
    if (checkpoint.size !== size) {
      fail(
        place,
        "CHECKPOINT_INVALID",
        "checkpoint-size",
        `the checkpoint stored at size ${size} is for size ${checkpoint.size}`,
      );
    }
    const root = this.#merkle.root();
    if (!bytesEqual(checkpoint.rootHash, root)) {
      fail(
        place,
        "INCONSISTENT_TREE",
        "checkpoint-root",
        `the checkpoint's root is ${toHex(checkpoint.rootHash)}, the recomputed root ${toHex(root)}`,
      );
    }
    const [extension, ...more] = checkpoint.extensions;
    const prefix = `${PATIENT_INDEX_EXTENSION} `;
    if (extension === undefined || more.length > 0 || !extension.startsWith(prefix)) {
      fail(
        place,
        "CHECKPOINT_INVALID",
        "checkpoint-index",
        `a checkpoint has exactly one extension line "${prefix}<base64 root>"`,
      );
    }
    let committed: Uint8Array;
    try {
      committed = fromBase64(extension.slice(prefix.length));
    } catch {
      fail(place, "CHECKPOINT_INVALID", "checkpoint-index", "the patient-index root is not strict base64");
    }
    const indexRoot = this.#index.root;
    if (!bytesEqual(committed, indexRoot)) {
      fail(
        place,
        "INCONSISTENT_TREE",
        "checkpoint-index",
        `the checkpoint's patient-index root is ${toHex(committed)}, the recomputed root ${toHex(indexRoot)}`,
      );
    }
    this.#checkpoints++;
    this.#lastCheckpoint = size;
  }

  /** After the stream: every submission had its row, every block its checkpoint, and the counts agree. */
  #checkEnd(count: bigint): void {
    this.#at(atSeq(count), "stream");
    const submissions = this.#store.submissionCount();
    const now = this.#store.entryCount();
    // A running node appends while we read: what is past the rows counted at the start is not audited.
    this.#live = now !== count;
    if (!this.#live && submissions !== count) {
      fail(
        this.#place,
        "STORE_CORRUPT",
        "stream",
        `${submissions - count} submission(s) from this seq on have no entry row`,
      );
    }
    if (this.#size > this.#lastCheckpoint) {
      fail(
        atPosition(this.#lastCheckpoint),
        "CHECKPOINT_INVALID",
        "checkpoint-missing",
        `the accepted entries from this position to size ${this.#size} are covered by no checkpoint`,
      );
    }
    if (this.#live) return;
    this.#at(atStore("tree size"), "tree-size");
    const treeSize = this.#store.treeSize();
    if (treeSize !== this.#size) {
      fail(
        this.#place,
        "STORE_CORRUPT",
        "tree-size",
        `the store's tree size is ${treeSize}, the recomputed ${this.#size}`,
      );
    }
    this.#at(atStore("latest checkpoint"), "checkpoint-size");
    const latest = this.#store.latestCheckpoint();
    const latestSize = latest?.size ?? 0n;
    if (latestSize !== this.#lastCheckpoint) {
      fail(
        atCheckpoint(latestSize),
        "CHECKPOINT_INVALID",
        "checkpoint-size",
        `the latest stored checkpoint is for size ${latestSize}; the log ends at ${this.#size}`,
      );
    }
  }

  /** The stored index: its current root is the recomputed one, and the whole stored tree audits clean. */
  #checkIndex(): void {
    if (this.#live) return;
    this.#at(atStore("index root"), "index-root");
    const stored = this.#store.indexNodes.currentRoot() ?? EMPTY_HASH;
    const mine = this.#index.root;
    if (!bytesEqual(stored, mine)) {
      fail(
        this.#place,
        "INCONSISTENT_TREE",
        "index-root",
        `the store's patient-index root is ${toHex(stored)}, the recomputed ${toHex(mine)}`,
      );
    }
    this.#o.onProgress?.({ phase: "index", done: 0, total: undefined });
    this.#at(atStore("index root"), "index-audit");
    let count: number;
    try {
      count = new PatientIndex(this.#sha, this.#store.indexNodes).audit(stored);
    } catch (err) {
      fail(
        this.#place,
        codeOf(err, "INCONSISTENT_TREE"),
        "index-audit",
        `the stored patient index does not audit: ${messageOf(err)}`,
      );
    }
    if (count !== this.#state.patients.size) {
      fail(
        this.#place,
        "INCONSISTENT_TREE",
        "index-audit",
        `the stored patient index holds ${count} patients, the log ${this.#state.patients.size}`,
      );
    }
  }

  /** Every patient's chain head and length as the store derives them from its rows. */
  #checkPatients(): void {
    if (this.#live) return;
    const total = this.#state.patients.size;
    let done = 0;
    for (const id of this.#state.patients.keys()) {
      const key = patientIndexKey(this.#sha, id);
      const keyHex = toHex(key);
      this.#at(atPatient(keyHex), "patient-head");
      const mine = this.#state.chainHead(id)!;
      const stored = this.#store.patientHead(key);
      if (
        stored === undefined ||
        !bytesEqual(stored.head, mine.head) ||
        stored.length !== BigInt(mine.length)
      ) {
        const theirs = stored === undefined ? "none" : `${toHex(stored.head)} (length ${stored.length})`;
        fail(
          this.#place,
          "STORE_CORRUPT",
          "patient-head",
          `the store's chain head is ${theirs}, the recomputed ${toHex(mine.head)} (length ${mine.length})`,
        );
      }
      if (++done % 10_000 === 0) this.#o.onProgress?.({ phase: "patients", done, total });
    }
  }

  /** Every stored blob must hash to the key it is stored under (content addressing, DESIGN.md section 8). */
  #checkBlobs(): void {
    let after: Uint8Array | null = null;
    this.#at(atStore("blobs"), "blob-hash");
    for (;;) {
      const page: Uint8Array[] = this.#store.listBlobs(after, BLOB_PAGE);
      if (page.length === 0) break;
      for (const hash of page) {
        const hex = toHex(hash);
        this.#at(atBlob(hex), "blob-hash");
        const bytes = this.#store.getBlob(hash);
        if (bytes === undefined) {
          // Deleted (erased) between the listing and the read: a running node may do that.
          if (this.#live) continue;
          fail(this.#place, "STORE_CORRUPT", "blob-hash", "the blob is listed but cannot be read");
        }
        const actual = this.#sha(bytes);
        if (!bytesEqual(actual, hash)) {
          fail(this.#place, "STORE_CORRUPT", "blob-hash", `the blob's SHA-256 is ${toHex(actual)}`);
        }
        this.#blobs++;
      }
      after = page[page.length - 1]!;
      this.#o.onProgress?.({ phase: "blobs", done: this.#blobs, total: undefined });
    }
  }
}

/** Audit a store from scratch (docs/verify.md). Never throws on what the store holds: faults are reported. */
export async function auditStore(options: AuditOptions): Promise<AuditReport> {
  return new Audit(options).run();
}
