/**
 * The node's witness (C2SP tlog-witness, add-checkpoint; DESIGN.md section 2, "Checkpoints and
 * witnesses"): it cosigns (C2SP tlog-cosignature, cosignature/v1) a checkpoint of a log it is configured
 * to witness, once the log's signature verifies and a consistency proof shows the checkpoint extends the
 * latest one it cosigned for that origin. That record (size and root per origin) is durable in the
 * node-local store, checked and moved atomically: requests are handled one at a time, so two concurrent
 * requests can never roll the record back (tlog-witness, the race of "add-checkpoint").
 *
 * The node witnesses its own log by default and cosigns its own checkpoints through the same checks
 * (`cosignOwn`), adding the cosignature to the stored checkpoint that GET /v1/checkpoint serves.
 */
import { bytesEqual, fromBase64, fromUtf8, toBase64, utf8 } from "../core/encoding/bytes.ts";
import { LedgerError, isLedgerError } from "../core/errors.ts";
import { emptyTreeHash } from "../core/merkle/hash.ts";
import { consistencyProofFromNodes, verifyConsistency } from "../core/merkle/proofs.ts";
import { parseCheckpoint, parseUint64, type Checkpoint } from "../core/note/checkpoint.ts";
import {
  formatNote,
  formatSignatureLine,
  openNote,
  parseNote,
  type NoteSigner,
  type NoteVerifier,
} from "../core/note/signed-note.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import type { LedgerNode } from "../node/node.ts";
import type { LedgerStore } from "../store/types.ts";
import type { LocalStore, WitnessRecord } from "./local-store.ts";

/** The most consistency proof lines a client may send (c2sp.org/tlog-witness, add-checkpoint). */
export const MAX_PROOF_LINES = 63;

/** A log this node witnesses: its origin and checkpoint key, and its store when it is the node's own. */
export interface WitnessedLog {
  readonly origin: string;
  readonly logKey: NoteVerifier;
  /** The store whose checkpoints receive the cosignature (the node's own log). */
  readonly store?: LedgerStore;
}

/** A 409 answer of add-checkpoint: the old size is not the latest cosigned size, which is `size`. */
export class WitnessSizeConflict extends LedgerError {
  readonly size: bigint;

  constructor(size: bigint) {
    super("CONFLICT", `the latest checkpoint cosigned for this origin has size ${size}`);
    this.size = size;
  }
}

/** A parsed add-checkpoint request body. */
export interface AddCheckpointRequest {
  readonly old: bigint;
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly note: string;
}

function malformed(message: string): never {
  throw new LedgerError("MALFORMED_INPUT", `add-checkpoint: ${message}`);
}

/**
 * Parse an add-checkpoint body (c2sp.org/tlog-witness): `old <size>`, at most 63 base64 hashes, an empty
 * line, then the checkpoint note; every line ends in a newline. MALFORMED_INPUT otherwise.
 */
export function parseAddCheckpoint(body: Uint8Array): AddCheckpointRequest {
  const text = fromUtf8(body);
  let at = text.indexOf("\n");
  if (at < 0) malformed("the body must start with an old size line");
  const first = text.slice(0, at);
  if (!first.startsWith("old ")) malformed('the first line must be "old <size>"');
  const old = parseUint64(first.slice(4));
  if (old === undefined) malformed("the old size must be a decimal without leading zeros");
  const proof: Uint8Array[] = [];
  for (;;) {
    const start = at + 1;
    at = text.indexOf("\n", start);
    if (at < 0) malformed("the proof lines must end with an empty line");
    const line = text.slice(start, at);
    if (line === "") break;
    if (proof.length === MAX_PROOF_LINES) malformed(`more than ${MAX_PROOF_LINES} proof lines`);
    let hash: Uint8Array;
    try {
      hash = fromBase64(line);
    } catch {
      malformed(`proof line ${proof.length + 1} is not base64`);
    }
    if (hash.length !== 32) malformed(`proof line ${proof.length + 1} is not a 32-byte hash`);
    proof.push(hash);
  }
  return { old, proof, note: text.slice(at + 1) };
}

/** Format an add-checkpoint body. */
export function formatAddCheckpoint(old: bigint, proof: readonly Uint8Array[], note: string): string {
  const lines = proof.map((h) => `${toBase64(h)}\n`).join("");
  return `old ${old}\n${lines}\n${note}`;
}

/** The result of a cosigning: the cosignature's note signature line (with its newline). */
export interface Cosigned {
  readonly line: string;
  readonly checkpoint: Checkpoint;
}

/** The node's witness. */
export class Witness {
  readonly #crypto: CryptoSuite;
  readonly #signer: NoteSigner;
  readonly #local: LocalStore;
  readonly #logs = new Map<string, WitnessedLog>();
  #turn: Promise<unknown> = Promise.resolve();

  constructor(crypto: CryptoSuite, signer: NoteSigner, local: LocalStore, logs: readonly WitnessedLog[]) {
    this.#crypto = crypto;
    this.#signer = signer;
    this.#local = local;
    for (const log of logs) this.#logs.set(log.origin, log);
  }

  /** The witness's C2SP verifier key (cosignature/v1). */
  get verifierKey(): string {
    return this.#signer.verifier.verifierKey;
  }

  /** Run one request at a time: the check and the update of a record must not interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(fn, fn);
    this.#turn = run.catch(() => undefined);
    return run;
  }

  /** Handle an add-checkpoint body: the cosignature line, or a LedgerError for the endpoint's status. */
  addCheckpoint(body: Uint8Array): Promise<Cosigned> {
    const request = parseAddCheckpoint(body);
    return this.#serial(() => this.#add(request));
  }

  async #add(request: AddCheckpointRequest): Promise<Cosigned> {
    // The order of checks is the order of c2sp.org/tlog-witness, "add-checkpoint".
    const note = parseNote(request.note);
    const checkpoint = parseCheckpoint(note.text);
    const log = this.#logs.get(checkpoint.origin);
    if (log === undefined) throw new LedgerError("NOT_FOUND", "this witness does not witness that origin");
    // "MUST verify the checkpoint signature against the public key(s) it trusts ... MUST ignore
    // signatures from unknown keys": openNote refuses a note with no verified signature from a known key
    // and a note whose known-key signature fails (SIGNATURE_INVALID, answered 403).
    await openNote(request.note, [log.logKey]);
    const { old, proof } = request;
    if (old > checkpoint.size) {
      throw new LedgerError("MALFORMED_INPUT", "the old size is larger than the checkpoint's size");
    }
    const record = this.#local.witnessRecord(log.origin);
    const latest = record?.size ?? 0n;
    if (old !== latest) throw new WitnessSizeConflict(latest);
    this.#checkConsistency(record, checkpoint, proof);
    const next: WitnessRecord = { size: checkpoint.size, root: checkpoint.rootHash };
    if (!this.#local.updateWitnessRecord(log.origin, record, next)) {
      throw new LedgerError("CONFLICT", "the witness record moved; ask again");
    }
    const signature = await this.#signer.sign(utf8(note.text));
    const cosignature = { name: this.#signer.name, keyId: this.#signer.keyId, signature };
    if (log.store !== undefined) {
      // Our own log: gather the cosignature into the stored checkpoint, when it is this very checkpoint.
      const stored = log.store.checkpointAt(checkpoint.size);
      if (stored !== undefined) {
        const parsed = parseNote(stored);
        if (parsed.text === note.text) {
          const others = parsed.signatures.filter(
            (s) => !(s.name === cosignature.name && s.keyId === cosignature.keyId),
          );
          log.store.putCheckpoint(
            checkpoint.size,
            formatNote({ text: parsed.text, signatures: [...others, cosignature] }),
          );
        }
      }
    }
    return { line: formatSignatureLine(cosignature), checkpoint };
  }

  /** The consistency checks of add-checkpoint: 422 PROOF_INVALID, or 409 CONFLICT for a same-size fork. */
  #checkConsistency(
    record: WitnessRecord | undefined,
    checkpoint: Checkpoint,
    proof: readonly Uint8Array[],
  ): void {
    const sha = (data: Uint8Array): Uint8Array => this.#crypto.sha256(data);
    const old = record?.size ?? 0n;
    if (old === 0n) {
      // "The proof MUST be empty if the old size is zero"; an empty tree has exactly one root.
      if (proof.length !== 0) throw new LedgerError("PROOF_INVALID", "the proof must be empty from size 0");
      if (checkpoint.size === 0n && !bytesEqual(checkpoint.rootHash, emptyTreeHash(sha))) {
        throw new LedgerError("PROOF_INVALID", "a checkpoint of size 0 must carry the empty tree's root");
      }
      return;
    }
    if (old === checkpoint.size) {
      if (proof.length !== 0)
        throw new LedgerError("PROOF_INVALID", "the proof must be empty for equal sizes");
      if (!bytesEqual(record!.root, checkpoint.rootHash)) {
        throw new LedgerError("CONFLICT", "a different root for the size this witness cosigned last");
      }
      return;
    }
    try {
      verifyConsistency(sha, {
        size1: old,
        size2: checkpoint.size,
        root1: record!.root,
        root2: checkpoint.rootHash,
        proof,
      });
    } catch (err) {
      if (isLedgerError(err)) {
        throw new LedgerError("PROOF_INVALID", `the consistency proof does not verify: ${err.message}`);
      }
      throw err;
    }
  }

  /**
   * Cosign the node's latest checkpoint of its own log when it has not been yet, through the same checks
   * as any add-checkpoint request (the consistency proof is the node's own). Returns its stored text.
   */
  async cosignOwn(node: LedgerNode): Promise<string | undefined> {
    const latest = node.checkpoint();
    if (latest === undefined) return undefined;
    const signed = parseNote(latest.note).signatures.some(
      (s) => s.name === this.#signer.name && s.keyId === this.#signer.keyId,
    );
    const record = this.#local.witnessRecord(node.origin);
    if (signed && record?.size === latest.size) return latest.note;
    const old = record?.size ?? 0n;
    if (old > latest.size) {
      throw new LedgerError(
        "INCONSISTENT_TREE",
        "the witness cosigned a larger tree of this log than it holds",
      );
    }
    const sha = (data: Uint8Array): Uint8Array => this.#crypto.sha256(data);
    const proof =
      old > 0n && old < latest.size
        ? consistencyProofFromNodes(sha, node.store.merkleNodes, old, latest.size)
        : [];
    await this.#serial(() => this.#add({ old, proof, note: latest.note }).catch(ignoreStale));
    return node.store.checkpointAt(latest.size) ?? latest.note;
  }
}

/** A record moved on while this cosigning waited its turn: a later one covers it. */
function ignoreStale(err: unknown): undefined {
  if (err instanceof WitnessSizeConflict) return undefined;
  throw err;
}
