/**
 * The node (DESIGN.md sections 2 and 3; docs/node.md): it submits entries to its ordering engine, reads the
 * ordered stream back in batches, and turns each batch into a block. For a batch it judges every entry in
 * order with the deterministic validator, appends the accepted ones to the RFC 9162 Merkle log, updates the
 * patient index for every patient whose chain moved, and signs a C2SP checkpoint over the new tree size with
 * one extension line committing to the patient-index root. Then ONE store transaction writes it all: an
 * entry row per submission (accepted or rejected with its code), the Merkle nodes, the index nodes, the
 * checkpoint. Submitters are answered only after that transaction is durable. Decoding and signature checks
 * depend on an entry's bytes alone, so worker threads (and the main thread when it would otherwise wait)
 * pre-check entries from the moment they are submitted (verifier.ts); the validator uses a pre-check only for
 * the exact bytes it was made for, so the verdicts do not depend on the workers.
 *
 * At start the node rebuilds its in-memory state by replaying the stored accepted entries (signatures are
 * not checked again: `medledger verify` does that), reopens the tree and the index from the store, checks
 * them against the latest checkpoint, and processes whatever the stream holds beyond the last entry row
 * (submissions made durable just before a crash).
 */
import { availableParallelism } from "node:os";
import { LedgerError } from "../core/errors.ts";
import { bytesEqual, fromHex, toBase64, toHex } from "../core/encoding/bytes.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import type { Entry } from "../core/ledger/schema.ts";
import { applyEntry } from "../core/ledger/validator.ts";
import { LedgerState } from "../core/ledger/state.ts";
import { MerkleTree } from "../core/merkle/tree.ts";
import { openCheckpoint, signCheckpoint } from "../core/note/checkpoint.ts";
import { parseNoteVerifierKey, type NoteSigner, type NoteVerifier } from "../core/note/signed-note.ts";
import { PatientIndex } from "../core/patient-index/tree.ts";
import { patientIndexKey } from "../core/patient-index/hashing.ts";
import { openStore } from "../store/index.ts";
import {
  MAX_READ_LIMIT,
  type EntryRow,
  type LedgerStore,
  type NewEntry,
  type StoredCheckpoint,
  type Submission,
} from "../store/types.ts";
import {
  META_LOG_VKEY,
  META_ORIGIN,
  isValidOrigin,
  lockDataDir,
  readLogSigner,
  readNodeConfig,
  storeFilePath,
  type NodeLock,
} from "./config.ts";
import { EmbeddedEngine, checkSubmissionBatch, type OrderingEngine } from "./engine.ts";
import { StagedIndexNodes, StagedMerkleNodes } from "./staging.ts";
import { PrecheckPool, type PrecheckRef, type PrecheckStats } from "./verifier.ts";

/** Pre-check workers by default: every core but the validator's, at most 4. */
export function defaultVerifyWorkers(): number {
  return Math.min(4, Math.max(0, availableParallelism() - 1));
}

/** The most submissions one batch (block) takes by default. */
export const DEFAULT_MAX_BATCH = 1000;

/** The label of the checkpoint extension line that commits to the patient-index root. */
export const PATIENT_INDEX_EXTENSION = "patient-index";

/** Store meta key prefix of ledger times: `ledger_time.<seq>` = Unix seconds from that seq on. */
export const META_LEDGER_TIME_PREFIX = "ledger_time.";

/** The verdict on one submitted entry. */
export type SubmitResult =
  | {
      readonly seq: bigint;
      /** Entry id: SHA-256 of the bytes, lower-case hex. */
      readonly id: string;
      readonly accepted: true;
      /** Leaf index in the Merkle log. */
      readonly position: bigint;
    }
  | {
      readonly seq: bigint;
      readonly id: string;
      readonly accepted: false;
      /** The validator's rejection code (docs/entries.md section 6). */
      readonly reason: string;
      /** For people; empty when the verdict was read back from the store. */
      readonly detail: string;
    };

/** Tuning and test hooks shared by both ways of creating a node. */
export interface NodeOptions {
  /** Most submissions per batch, 1..10,000 (default 1,000). */
  readonly maxBatch?: number;
  /** The clock: Unix seconds (default: the system clock). Ledger time never goes back, whatever it says. */
  readonly now?: () => number;
  /** Told about a batch that failed (its submitters get the error too). */
  readonly onBatchError?: (err: unknown) => void;
  /** The ordering engine (default: the embedded engine over the store). */
  readonly engine?: OrderingEngine;
  /**
   * Worker threads that pre-check entries, decoding them and verifying their signatures ahead of the
   * validator (default: defaultVerifyWorkers(); 0: none, everything on the main thread).
   */
  readonly verifyWorkers?: number;
}

/** Open the node of a data folder (node.json, keys/log.key, the store it names). */
export interface DirNodeInput extends NodeOptions {
  readonly dir: string;
  readonly crypto: CryptoSuite;
}

/** Run a node over a store the caller opened (and closes). */
export interface StoreNodeInput extends NodeOptions {
  readonly store: LedgerStore;
  readonly config: { readonly origin: string; readonly logKey: string };
  readonly logSigner: NoteSigner;
  readonly crypto: CryptoSuite;
}

/** A running node. */
export interface LedgerNode {
  /** The log origin (checkpoint origin line, genesis origin). */
  readonly origin: string;
  /** The checkpoint verifier key. */
  readonly logKey: NoteVerifier;
  readonly store: LedgerStore;
  readonly engine: OrderingEngine;
  /** The ledger state after the last committed batch (a new object after a failed batch). */
  readonly state: LedgerState;
  /** Merkle tree size after the last committed batch. */
  readonly size: bigint;
  /** Merkle root after the last committed batch. */
  root(): Uint8Array;
  /** Patient-index root after the last committed batch. */
  indexRoot(): Uint8Array;
  /** How many chunks of entries workers and the main thread pre-checked so far (docs/node.md). */
  readonly prechecks: Readonly<PrecheckStats>;
  /** Submit entries in order; resolves with one verdict each once they are durable (docs/node.md). */
  submit(entries: readonly Uint8Array[]): Promise<SubmitResult[]>;
  /** The latest stored checkpoint, or undefined before genesis. */
  checkpoint(): StoredCheckpoint | undefined;
  /** Resolves when every submission durable so far has been processed. */
  idle(): Promise<void>;
  /** Process what was submitted, then release the engine, the store (when the node opened it) and the lock. */
  close(): Promise<void>;
}

/** Create a node from a data folder or from a store and its configuration. */
export async function createNode(input: DirNodeInput | StoreNodeInput): Promise<LedgerNode> {
  if ("dir" in input) {
    const { dir, crypto } = input;
    const config = await readNodeConfig(crypto, dir);
    const logSigner = await readLogSigner(crypto, dir, config);
    const lock = await lockDataDir(dir);
    let store: LedgerStore | undefined;
    try {
      store = await openStore(`sqlite:${storeFilePath(dir, config.store)}`);
      return await Node.start({ ...input, store, config, logSigner }, { store, lock });
    } catch (err) {
      store?.close();
      await lock.release();
      throw err;
    }
  }
  return Node.start(input, null);
}

/** A submit() call waiting for its verdicts. */
interface Ticket {
  readonly first: bigint;
  readonly results: (SubmitResult | undefined)[];
  filled: number;
  readonly resolve: (results: SubmitResult[]) => void;
  readonly reject: (err: unknown) => void;
}

/** What the node owns and releases at close. */
interface Owned {
  readonly store: LedgerStore;
  readonly lock: NodeLock;
}

const KINDS_WITH_CLINICAL_TIME = new Set(["record.append", "record.amend"]);

/** The patient an accepted entry is about, and its clinical month (record versions only). */
function describe(entry: Entry): { patient: string | null; clinicalTime: string | null } {
  const body = entry.body as Record<string, unknown>;
  const patient = typeof body.patient === "string" ? body.patient : null;
  const month = body.month;
  const clinicalTime = KINDS_WITH_CLINICAL_TIME.has(entry.kind) && typeof month === "string" ? month : null;
  return { patient, clinicalTime };
}

/** Resolve after the event loop has run once (timers, I/O and setImmediate callbacks already queued). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function corrupt(message: string): never {
  throw new LedgerError("STORE_CORRUPT", message);
}

function defaultNow(): number {
  return Math.floor(Date.now() / 1000);
}

/** The verdict an entry row records. */
function resultOfRow(row: EntryRow): SubmitResult {
  const id = toHex(row.id);
  if (row.status === "accepted" && row.position !== null) {
    return { seq: row.seq, id, accepted: true, position: row.position };
  }
  return { seq: row.seq, id, accepted: false, reason: row.reason ?? "", detail: "" };
}

class Node implements LedgerNode {
  readonly origin: string;
  readonly logKey: NoteVerifier;
  readonly store: LedgerStore;
  readonly engine: OrderingEngine;
  readonly #crypto: CryptoSuite;
  readonly #sha: (data: Uint8Array) => Uint8Array;
  readonly #signer: NoteSigner;
  readonly #owned: Owned | null;
  readonly #maxBatch: number;
  readonly #now: () => number;
  readonly #onBatchError: (err: unknown) => void;
  readonly #merkleNodes: StagedMerkleNodes;
  readonly #indexNodes: StagedIndexNodes;
  readonly #tickets = new Set<Ticket>();
  readonly #prechecks: PrecheckPool;
  /**
   * Pre-checks started at submit() time, by the seq the ordering engine gave each entry (as a number: exact
   * below 2^53, and a number key costs a fraction of a bigint one).
   */
  readonly #early = new Map<number, PrecheckRef>();
  // While true, the replay crypto accepts every signature: stored accepted entries were checked when they
  // were first appended, and `medledger verify` checks them again from scratch.
  #trusting = false;
  #state!: LedgerState;
  #tree!: MerkleTree;
  #index!: PatientIndex;
  /** Next sequence number to process (the number of entry rows). */
  #nextSeq = 0n;
  /** Ledger time of the last processed batch, -1 before the first. */
  #lastTime = -1;
  #draining: Promise<void> | null = null;
  #rerun = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Set when memory could not be rebuilt from the store after a failed batch: the node stops. */
  #broken: unknown = null;
  #unsubscribe: () => void = () => undefined;

  private constructor(input: StoreNodeInput, owned: Owned | null) {
    this.store = input.store;
    this.origin = input.config.origin;
    this.logKey = parseNoteVerifierKey(input.crypto, input.config.logKey);
    this.#crypto = input.crypto;
    this.#sha = (data) => input.crypto.sha256(data);
    this.#signer = input.logSigner;
    this.#owned = owned;
    const maxBatch = input.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_READ_LIMIT) {
      throw new LedgerError("INVALID_ARGUMENT", `maxBatch must be an integer in 1..${MAX_READ_LIMIT}`);
    }
    this.#maxBatch = maxBatch;
    this.#now = input.now ?? defaultNow;
    this.#onBatchError = input.onBatchError ?? (() => undefined);
    this.engine = input.engine ?? new EmbeddedEngine(input.store);
    this.#merkleNodes = new StagedMerkleNodes(input.store.merkleNodes);
    this.#indexNodes = new StagedIndexNodes(input.store.indexNodes);
    const workers = input.verifyWorkers ?? defaultVerifyWorkers();
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
      throw new LedgerError("INVALID_ARGUMENT", "verifyWorkers must be an integer in 0..64");
    }
    this.#prechecks = new PrecheckPool(workers, input.crypto);
  }

  /** Check the configuration against the store, rebuild, and start processing the stream. */
  static async start(input: StoreNodeInput, owned: Owned | null): Promise<Node> {
    if (!isValidOrigin(input.config.origin)) {
      throw new LedgerError("INVALID_ARGUMENT", "the origin must be printable ASCII without space or '+'");
    }
    const node = new Node(input, owned);
    try {
      if (node.#signer.verifier.verifierKey !== input.config.logKey) {
        throw new LedgerError("KEY_INVALID", "the log signer does not match the configured log key");
      }
      node.#bindStore(input.config);
      await node.#rebuild();
      await node.#prechecks.ready();
    } catch (err) {
      await node.#prechecks.close();
      throw err;
    }
    node.#unsubscribe = node.engine.onAppended(() => node.#schedule());
    // Submissions made durable before a crash and never processed: process them now.
    if ((await node.engine.length()) > node.#nextSeq) node.#schedule();
    return node;
  }

  get state(): LedgerState {
    return this.#state;
  }

  get size(): bigint {
    return this.#tree.size;
  }

  root(): Uint8Array {
    return this.#tree.root();
  }

  indexRoot(): Uint8Array {
    return this.#index.root;
  }

  get prechecks(): Readonly<PrecheckStats> {
    return { ...this.#prechecks.stats };
  }

  checkpoint(): StoredCheckpoint | undefined {
    return this.store.latestCheckpoint();
  }

  async submit(entries: readonly Uint8Array[]): Promise<SubmitResult[]> {
    if (this.#closed) throw new LedgerError("CONFLICT", "the node is closed");
    if (this.#broken !== null) {
      throw new LedgerError("CONFLICT", "the node stopped after a store failure; restart it", {
        cause: this.#broken,
      });
    }
    const checked = checkSubmissionBatch(entries);
    // Decoding and signatures depend on the bytes alone: workers start on them now, while the engine makes
    // them durable and the node finishes the batch in progress (src/node/verifier.ts).
    const refs = this.#prechecks.submitted(checked);
    const first = await this.engine.submit(checked);
    // Only for entries still to be judged (#process forgets those of each batch it ends).
    if (refs !== undefined && first + BigInt(refs.length) > this.#nextSeq) {
      const from = Number(first);
      const next = Number(this.#nextSeq);
      refs.forEach((ref, i) => {
        if (from + i >= next) this.#early.set(from + i, ref);
      });
    }
    return new Promise<SubmitResult[]>((resolve, reject) => {
      const ticket: Ticket = {
        first,
        results: new Array<SubmitResult | undefined>(checked.length),
        filled: 0,
        resolve,
        reject,
      };
      // The batch that processes these seqs may already have committed before this continuation ran.
      const end = first + BigInt(checked.length);
      const done = end < this.#nextSeq ? end : this.#nextSeq;
      for (let seq = first; seq < done; seq++) {
        const row = this.store.entryBySeq(seq);
        if (row === undefined) corrupt(`entry row ${seq} is missing`);
        ticket.results[Number(seq - first)] = resultOfRow(row);
        ticket.filled++;
      }
      if (ticket.filled === checked.length) resolve(ticket.results as SubmitResult[]);
      else this.#tickets.add(ticket);
    });
  }

  async idle(): Promise<void> {
    while (this.#draining !== null) await this.#draining;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // The engine commits what is queued and tells us; we process it before letting go of the store.
    await this.engine.close();
    await this.idle();
    this.#unsubscribe();
    for (const ticket of this.#tickets) {
      ticket.reject(new LedgerError("CONFLICT", "the node closed before processing the submission"));
    }
    this.#tickets.clear();
    this.#early.clear();
    await this.#prechecks.close();
    if (this.#owned !== null) {
      this.#owned.store.close();
      await this.#owned.lock.release();
    }
  }

  /** Record the origin and log key in a new store, or check them against an existing one. */
  #bindStore(config: { readonly origin: string; readonly logKey: string }): void {
    const origin = this.store.getMeta(META_ORIGIN);
    const vkey = this.store.getMeta(META_LOG_VKEY);
    if (origin === undefined && vkey === undefined && this.store.submissionCount() === 0n) {
      this.store.transaction(() => {
        this.store.setMeta(META_ORIGIN, config.origin);
        this.store.setMeta(META_LOG_VKEY, config.logKey);
      });
      return;
    }
    if (origin !== config.origin || vkey !== config.logKey) {
      throw new LedgerError("CONFLICT", "the store belongs to another log (origin or log key differ)");
    }
  }

  /**
   * The validator's crypto suite: the real one, except that signature checks are skipped while replaying
   * stored accepted entries.
   */
  #validatorCrypto(): CryptoSuite {
    const real = this.#crypto;
    const suite = Object.create(real) as CryptoSuite & { ed25519Verify: CryptoSuite["ed25519Verify"] };
    suite.ed25519Verify = (key, message, signature) =>
      this.#trusting ? Promise.resolve(true) : real.ed25519Verify(key, message, signature);
    return suite;
  }

  /**
   * Rebuild the state, the tree and the index from the store alone: at start, and after a failed batch
   * (the store rolled back; memory did not).
   */
  async #rebuild(): Promise<void> {
    this.#merkleNodes.discard();
    this.#indexNodes.discard();
    const state = new LedgerState(this.#validatorCrypto());
    let time = -1;
    let seq = 0n;
    this.#trusting = true;
    try {
      for (;;) {
        const rows = this.store.readEntries(seq, MAX_READ_LIMIT);
        if (rows.length === 0) break;
        for (const row of rows) {
          if (row.seq !== seq) corrupt(`entry rows jump from ${seq} to ${row.seq}`);
          time = this.#timeAt(row.seq, time);
          if (row.status === "accepted") {
            const verdict = await applyEntry(state, row.bytes, { seq: Number(row.seq), time });
            if (!verdict.accepted || verdict.id !== toHex(row.id)) {
              corrupt(`the accepted entry at seq ${row.seq} does not replay`);
            }
          }
          seq++;
        }
      }
    } finally {
      this.#trusting = false;
    }
    const size = this.store.treeSize();
    if (size !== BigInt(state.accepted)) corrupt(`tree size ${size} but ${state.accepted} accepted entries`);
    const tree = MerkleTree.open(this.#sha, this.#merkleNodes, size);
    const index = new PatientIndex(this.#sha, this.#indexNodes);
    if (state.origin !== null && state.origin !== this.origin) {
      corrupt(
        `genesis names origin ${JSON.stringify(state.origin)}, the node ${JSON.stringify(this.origin)}`,
      );
    }
    await this.#checkLatestCheckpoint(size, tree.root(), index.root);
    this.#state = state;
    this.#tree = tree;
    this.#index = index;
    this.#nextSeq = seq;
    this.#lastTime = time;
  }

  /** The ledger time in force at a seq: the `ledger_time.<seq>` meta value when there is one. */
  #timeAt(seq: bigint, previous: number): number {
    const text = this.store.getMeta(`${META_LEDGER_TIME_PREFIX}${seq}`);
    if (text === undefined) {
      if (previous < 0) corrupt(`no ledger time recorded for seq ${seq}`);
      return previous;
    }
    if (!/^(0|[1-9][0-9]{0,14})$/.test(text) || Number(text) < previous) {
      corrupt(`invalid ledger time at seq ${seq}`);
    }
    return Number(text);
  }

  /** The latest checkpoint must be for the current size, signed by our key, over our roots. */
  async #checkLatestCheckpoint(size: bigint, root: Uint8Array, indexRoot: Uint8Array): Promise<void> {
    const latest = this.store.latestCheckpoint();
    if (size === 0n && latest === undefined) return;
    if (latest === undefined || latest.size !== size) corrupt(`no checkpoint for the tree size ${size}`);
    let opened;
    try {
      opened = await openCheckpoint(latest.note, this.origin, this.logKey);
    } catch (cause) {
      throw new LedgerError("STORE_CORRUPT", `the checkpoint of size ${size} does not verify`, { cause });
    }
    const { checkpoint } = opened;
    const extension = `${PATIENT_INDEX_EXTENSION} ${toBase64(indexRoot)}`;
    if (
      checkpoint.size !== size ||
      !bytesEqual(checkpoint.rootHash, root) ||
      checkpoint.extensions.length !== 1 ||
      checkpoint.extensions[0] !== extension
    ) {
      corrupt(`the checkpoint of size ${size} does not match the stored tree and patient index`);
    }
  }

  /** Start draining the stream, or ask the running drain to look again. */
  #schedule(): void {
    if (this.#broken !== null) return;
    if (this.#draining !== null) {
      this.#rerun = true;
      return;
    }
    this.#draining = this.#drain().finally(() => {
      this.#draining = null;
    });
  }

  async #drain(): Promise<void> {
    // Let the submit() calls whose entries just became durable record their pre-checks first.
    await yieldToEventLoop();
    do {
      this.#rerun = false;
      for (;;) {
        let batch: Submission[];
        try {
          batch = await this.engine.read(this.#nextSeq, this.#maxBatch);
        } catch (err) {
          this.#onBatchError(err);
          return;
        }
        if (batch.length === 0) break;
        // A failed batch stops the drain until the next submission, so a broken disk is not spun on.
        if (!(await this.#process(batch))) return;
        // Let the engine make the submissions that arrived meanwhile durable: they join the next batch.
        await yieldToEventLoop();
      }
    } while (this.#rerun);
  }

  /** Process one batch; false when it failed (its submitters were told, memory was rebuilt). */
  async #process(batch: readonly Submission[]): Promise<boolean> {
    const first = batch[0]!.seq;
    try {
      const results = await this.#commitBatch(batch);
      this.#settle(first, results);
      return true;
    } catch (err) {
      this.#onBatchError(err);
      this.#fail(first, BigInt(batch.length), err);
      try {
        await this.#rebuild();
      } catch (rebuildError) {
        // Memory may now be ahead of the store: stop rather than judge with it.
        this.#broken = rebuildError;
        this.#onBatchError(rebuildError);
      }
      return false;
    } finally {
      // A pre-check recorded while the batch ran (after it looked) is of no more use.
      for (const submission of batch) this.#early.delete(Number(submission.seq));
    }
  }

  /** Judge, append, index, sign, and commit one batch in one store transaction. */
  async #commitBatch(batch: readonly Submission[]): Promise<SubmitResult[]> {
    const first = batch[0]!.seq;
    if (first !== this.#nextSeq)
      throw new LedgerError("INTERNAL", `batch starts at ${first}, not ${this.#nextSeq}`);
    // Ledger time of the batch: the clock, but never before the previous batch (docs/entries.md section 7).
    const clock = this.#now();
    if (!Number.isSafeInteger(clock) || clock < 0)
      throw new LedgerError("INTERNAL", "the clock gave no time");
    const time = Math.max(clock, this.#lastTime);
    const rows: NewEntry[] = [];
    const results: SubmitResult[] = [];
    /** Patients whose chain moved, with their patient-index key. */
    const moved = new Map<string, Uint8Array>();
    const refs = this.#precheckRefs(batch);
    for (const [i, submission] of batch.entries()) {
      const seq = first + BigInt(i);
      if (submission.seq !== seq) throw new LedgerError("INTERNAL", `the stream skipped seq ${seq}`);
      let precheck;
      const ref = refs[i];
      if (ref !== undefined) {
        const job = ref.group.job();
        if (!job.isReady(ref.index)) await job.ready(ref.index);
        precheck = job.get(ref.index);
      }
      const verdict = await applyEntry(this.#state, submission.bytes, { seq: Number(seq), time }, precheck);
      if (verdict.accepted) {
        const position = this.#tree.append(submission.bytes);
        const { patient, clinicalTime } = describe(verdict.entry);
        let key: Uint8Array | null = null;
        if (patient !== null) {
          key = moved.get(patient) ?? patientIndexKey(this.#sha, patient);
          moved.set(patient, key);
        }
        rows.push({
          seq,
          position,
          id: fromHex(verdict.id),
          status: "accepted",
          reason: null,
          patient: key,
          clinicalTime,
        });
        results.push({ seq, id: verdict.id, accepted: true, position });
      } else {
        const id = this.#crypto.sha256(submission.bytes);
        // A rejected entry is not about anyone as far as the ledger knows: patient and time stay null.
        rows.push({
          seq,
          position: null,
          id,
          status: "rejected",
          reason: verdict.reason,
          patient: null,
          clinicalTime: null,
        });
        results.push({ seq, id: toHex(id), accepted: false, reason: verdict.reason, detail: verdict.detail });
      }
    }
    let note: string | null = null;
    if (results.some((r) => r.accepted)) {
      if (moved.size > 0) {
        this.#index.update(
          [...moved].map(([patient, key]) => {
            const head = this.#state.chainHead(patient);
            if (head === undefined) throw new LedgerError("INTERNAL", "a moved patient has no chain");
            return { key, value: head };
          }),
        );
      }
      note = await signCheckpoint(
        {
          origin: this.origin,
          size: this.#tree.size,
          rootHash: this.#tree.root(),
          extensions: [`${PATIENT_INDEX_EXTENSION} ${toBase64(this.#index.root)}`],
        },
        [this.#signer],
      );
    }
    const size = this.#tree.size;
    this.store.transaction(() => {
      for (const row of rows) this.store.putEntry(row);
      this.#merkleNodes.commit();
      this.#indexNodes.commit();
      if (note !== null) this.store.putCheckpoint(size, note);
      if (time !== this.#lastTime) this.store.setMeta(`${META_LEDGER_TIME_PREFIX}${first}`, String(time));
    });
    this.#indexNodes.confirm();
    await this.store.flush();
    this.#nextSeq = first + BigInt(batch.length);
    this.#lastTime = time;
    return results;
  }

  /**
   * Where each entry of a batch finds its pre-check: the one started when it was submitted to this node,
   * else one started now for all those without (when there are enough of them to be worth a worker).
   */
  #precheckRefs(batch: readonly Submission[]): (PrecheckRef | undefined)[] {
    const refs: (PrecheckRef | undefined)[] = [];
    const missing: number[] = [];
    for (const [i, submission] of batch.entries()) {
      const seq = Number(submission.seq);
      const ref = this.#early.get(seq);
      if (ref !== undefined) this.#early.delete(seq);
      else missing.push(i);
      refs.push(ref);
    }
    const group = this.#prechecks.batch(missing.map((i) => batch[i]!.bytes));
    if (group !== undefined) missing.forEach((i, index) => (refs[i] = { group, index }));
    return refs;
  }

  /** Hand a committed batch's verdicts to the submit() calls waiting for them. */
  #settle(first: bigint, results: readonly SubmitResult[]): void {
    const end = first + BigInt(results.length);
    for (const ticket of this.#tickets) {
      const ticketEnd = ticket.first + BigInt(ticket.results.length);
      const from = ticket.first > first ? ticket.first : first;
      const to = ticketEnd < end ? ticketEnd : end;
      for (let seq = from; seq < to; seq++) {
        ticket.results[Number(seq - ticket.first)] = results[Number(seq - first)];
        ticket.filled++;
      }
      if (ticket.filled === ticket.results.length) {
        this.#tickets.delete(ticket);
        ticket.resolve(ticket.results as SubmitResult[]);
      }
    }
  }

  /** Reject every submit() call with a submission in the failed batch. */
  #fail(first: bigint, count: bigint, err: unknown): void {
    const end = first + count;
    for (const ticket of this.#tickets) {
      const ticketEnd = ticket.first + BigInt(ticket.results.length);
      if (ticket.first < end && ticketEnd > first) {
        this.#tickets.delete(ticket);
        ticket.reject(err);
      }
    }
  }
}
