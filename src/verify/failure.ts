/**
 * What an audit reports when something is wrong: the first fault found, where it is (a sequence number, a
 * leaf position, a checkpoint size, a blob hash...), a stable error code from the closed LedgerError set, a
 * stable check name, and a message for people. docs/verify.md lists every check.
 */
import type { ErrorCode } from "../core/errors.ts";

/** Where a fault sits. */
export type FailureKind =
  /** The data folder: node.json, the log key given. */
  | "node"
  /** Store-wide values: metadata, counts, the current patient-index root. */
  | "store"
  /** A sequence number of the ordered stream (a submission and its entry row). */
  | "seq"
  /** A leaf position of the Merkle log (a stored Merkle node names the first leaf it covers). */
  | "position"
  /** A checkpoint, by tree size (its note, and the patient-index nodes of the block it ends). */
  | "checkpoint"
  /** A patient's chain, by patient-index key. */
  | "patient"
  /** A stored blob, by its SHA-256 key. */
  | "blob";

/** The stable names of the checks (docs/verify.md, "Checks"). */
export type CheckName =
  | "node-config"
  | "log-key"
  | "store-meta"
  | "store-read"
  | "stream"
  | "ledger-time"
  | "entry-id"
  | "entry-verdict"
  | "entry-reason"
  | "entry-position"
  | "entry-patient"
  | "entry-clinical-time"
  | "genesis"
  | "merkle-node"
  | "checkpoint-signature"
  | "checkpoint-format"
  | "checkpoint-origin"
  | "checkpoint-size"
  | "checkpoint-root"
  | "checkpoint-index"
  | "checkpoint-missing"
  | "index-node"
  | "index-root"
  | "index-audit"
  | "patient-head"
  | "tree-size"
  | "blob-hash"
  | "internal";

/** The first fault an audit found. */
export interface AuditFailure {
  readonly kind: FailureKind;
  /** The place within its kind, as printed: "17", "size 1000", a hash in hex, "meta log_vkey". */
  readonly where: string;
  /** The sequence number, when the fault is at one. */
  readonly seq?: number;
  /** The leaf position, when the fault is at one. */
  readonly position?: number;
  /** The checkpoint's tree size, when the fault is in a checkpoint or its block. */
  readonly size?: number;
  /** The blob or patient-index key, in hex, when the fault is in a blob or a patient's chain. */
  readonly hash?: string;
  readonly code: ErrorCode;
  readonly check: CheckName;
  readonly message: string;
}

/** Thrown inside an audit to stop at the first fault; never escapes the audit. */
export class AuditStop extends Error {
  readonly failure: AuditFailure;

  constructor(failure: AuditFailure) {
    super(failure.message);
    this.name = "AuditStop";
    this.failure = failure;
  }
}

/** A place in the audit: the kind, its printable name, and the numeric fields of AuditFailure. */
export type Place = Pick<AuditFailure, "kind" | "where" | "seq" | "position" | "size" | "hash">;

/** The place of a sequence number. */
export function atSeq(seq: bigint): Place {
  return { kind: "seq", where: seq.toString(), seq: Number(seq) };
}

/** The place of a leaf position. */
export function atPosition(position: bigint): Place {
  return { kind: "position", where: position.toString(), position: Number(position) };
}

/** The place of the checkpoint at a tree size. */
export function atCheckpoint(size: bigint): Place {
  return { kind: "checkpoint", where: `size ${size}`, size: Number(size) };
}

/** The place of a blob. */
export function atBlob(hashHex: string): Place {
  return { kind: "blob", where: hashHex, hash: hashHex };
}

/** The place of a patient's chain, by patient-index key. */
export function atPatient(keyHex: string): Place {
  return { kind: "patient", where: keyHex, hash: keyHex };
}

/** A store-wide or data-folder place. */
export function atStore(where: string, kind: "store" | "node" = "store"): Place {
  return { kind, where };
}

/** Stop the audit with a fault at a place. */
export function fail(place: Place, code: ErrorCode, check: CheckName, message: string): never {
  throw new AuditStop({ ...place, code, check, message: oneLine(message) });
}

/** The one-line form of a failure: `FAIL CODE: kind where: message`. */
export function formatFailure(failure: AuditFailure): string {
  return `FAIL ${failure.code}: ${failure.kind} ${failure.where}: ${failure.message}`;
}

/** Messages end up on one terminal line: no newlines or other control characters from stored text. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ");
}
