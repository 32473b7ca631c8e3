/**
 * Argument checks shared by every store adapter, so that all of them refuse the same inputs with the same
 * codes (the conformance suite holds them to it). Callers are inside the node, but the values often come
 * from the network one step earlier: every size is bounded and every type is checked at run time.
 */
import { LedgerError } from "../core/errors.ts";
import { bytesEqual } from "../core/encoding/bytes.ts";
import { isWellFormedString } from "../core/encoding/jcs.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import {
  HASH_BYTES,
  MAX_APPEND_BATCH,
  MAX_BLOB_BYTES,
  MAX_CHECKPOINT_CHARS,
  MAX_CLINICAL_TIME_CHARS,
  MAX_ENTRY_BYTES,
  MAX_META_VALUE_CHARS,
  MAX_READ_LIMIT,
  MAX_REASON_CHARS,
  MAX_STORE_INTEGER,
  RESERVED_META_KEYS,
} from "./types.ts";
import type { NewEntry } from "./types.ts";
import type { IndexBatch } from "../core/patient-index/store.ts";
import { LEAF_BODY_SIZE, NODE_BODY_SIZE } from "../core/patient-index/store.ts";

// Fixed patterns (never built from input). A reason is a stable code such as CHAIN_BROKEN.
const REASON_PATTERN = /^[A-Z][A-Z0-9_]*$/;
// Printable ASCII without spaces: coarse times are ISO 8601 fragments, and nothing else belongs here.
const CLINICAL_TIME_PATTERN = /^[\x21-\x7e]+$/;
const META_KEY_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

/** A store integer (sequence number, position, size, node index): a bigint in 0..2^63-1. */
export function checkStoreInteger(value: unknown, what: string): bigint {
  if (typeof value !== "bigint" || value < 0n || value > MAX_STORE_INTEGER) {
    throw new LedgerError("INVALID_ARGUMENT", `${what} must be a bigint in 0..2^63-1`);
  }
  return value;
}

/** A read limit: an integer in 1..MAX_READ_LIMIT. */
export function checkLimit(limit: unknown): number {
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
    throw new LedgerError("INVALID_ARGUMENT", `a read limit must be an integer in 1..${MAX_READ_LIMIT}`);
  }
  return limit;
}

/** A 32-byte hash or key. */
export function checkHash(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== HASH_BYTES) {
    throw new LedgerError("INVALID_ARGUMENT", `${what} must be ${HASH_BYTES} bytes`);
  }
  return value;
}

/** A batch of submissions: 1..MAX_APPEND_BATCH byte arrays of 1..MAX_ENTRY_BYTES bytes. */
export function checkSubmissions(batch: unknown): readonly Uint8Array[] {
  if (!Array.isArray(batch)) throw new LedgerError("INVALID_ARGUMENT", "submissions must be an array");
  if (batch.length === 0 || batch.length > MAX_APPEND_BATCH) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `a batch holds 1..${MAX_APPEND_BATCH} submissions, not ${batch.length}`,
    );
  }
  for (const bytes of batch as unknown[]) {
    if (!(bytes instanceof Uint8Array))
      throw new LedgerError("INVALID_ARGUMENT", "a submission must be bytes");
    if (bytes.length === 0) throw new LedgerError("INVALID_ARGUMENT", "a submission must not be empty");
    if (bytes.length > MAX_ENTRY_BYTES) {
      throw new LedgerError("TOO_LARGE", `a submission is at most ${MAX_ENTRY_BYTES} bytes`);
    }
  }
  return batch as readonly Uint8Array[];
}

/** The shape of a validator's row: types, bounds, and status agreeing with position and reason. */
export function checkNewEntry(entry: unknown): NewEntry {
  if (typeof entry !== "object" || entry === null) {
    throw new LedgerError("INVALID_ARGUMENT", "an entry must be an object");
  }
  const e = entry as Record<string, unknown>;
  checkStoreInteger(e.seq, "an entry's seq");
  checkHash(e.id, "an entry id");
  if (e.status === "accepted") {
    checkStoreInteger(e.position, "an accepted entry's position");
    if (e.reason !== null) throw new LedgerError("INVALID_ARGUMENT", "an accepted entry has no reason");
  } else if (e.status === "rejected") {
    if (e.position !== null) throw new LedgerError("INVALID_ARGUMENT", "a rejected entry has no position");
    if (
      typeof e.reason !== "string" ||
      e.reason.length > MAX_REASON_CHARS ||
      !REASON_PATTERN.test(e.reason)
    ) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        `a rejection reason is a code of A-Z, 0-9 and _ of at most ${MAX_REASON_CHARS} characters`,
      );
    }
  } else {
    throw new LedgerError("INVALID_ARGUMENT", 'an entry status is "accepted" or "rejected"');
  }
  if (e.patient !== null) checkHash(e.patient, "a patient key");
  if (e.clinicalTime !== null) {
    if (
      typeof e.clinicalTime !== "string" ||
      e.clinicalTime.length > MAX_CLINICAL_TIME_CHARS ||
      !CLINICAL_TIME_PATTERN.test(e.clinicalTime)
    ) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        `a clinical time is printable ASCII of 1..${MAX_CLINICAL_TIME_CHARS} characters, or null`,
      );
    }
  }
  return entry as NewEntry;
}

/** A checkpoint: a size within the store's range and a non-empty, well-formed note of bounded length. */
export function checkCheckpoint(size: unknown, note: unknown): void {
  checkStoreInteger(size, "a checkpoint size");
  if (typeof note !== "string" || note.length === 0) {
    throw new LedgerError("INVALID_ARGUMENT", "a checkpoint note must be a non-empty string");
  }
  if (note.length > MAX_CHECKPOINT_CHARS) {
    throw new LedgerError("TOO_LARGE", `a checkpoint note is at most ${MAX_CHECKPOINT_CHARS} characters`);
  }
  if (!isWellFormedString(note)) {
    throw new LedgerError("INVALID_STRING", "a checkpoint note holds a lone surrogate");
  }
}

/** A blob: bytes, at most MAX_BLOB_BYTES. */
export function checkBlob(bytes: unknown): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new LedgerError("INVALID_ARGUMENT", "a blob must be bytes");
  if (bytes.length > MAX_BLOB_BYTES) {
    throw new LedgerError("TOO_LARGE", `a blob is at most ${MAX_BLOB_BYTES} bytes`);
  }
  return bytes;
}

/** A metadata key (for reading); `writing` also refuses the keys the store owns. */
export function checkMetaKey(key: unknown, writing: boolean): string {
  if (typeof key !== "string" || !META_KEY_PATTERN.test(key)) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      "a metadata key is 1..64 characters of a-z, 0-9, _, . and -, starting with a letter",
    );
  }
  if (writing && RESERVED_META_KEYS.includes(key)) {
    throw new LedgerError("INVALID_ARGUMENT", `metadata key "${key}" is reserved for the store`);
  }
  return key;
}

/** A metadata value: a well-formed string of bounded length. */
export function checkMetaValue(value: unknown): string {
  if (typeof value !== "string")
    throw new LedgerError("INVALID_ARGUMENT", "a metadata value must be a string");
  if (value.length > MAX_META_VALUE_CHARS) {
    throw new LedgerError("TOO_LARGE", `a metadata value is at most ${MAX_META_VALUE_CHARS} characters`);
  }
  if (!isWellFormedString(value)) {
    throw new LedgerError("INVALID_STRING", "a metadata value holds a lone surrogate");
  }
  return value;
}

/** Refuse a transaction function's promise: its awaited writes would land after the commit. */
export function checkSynchronousResult(result: unknown): void {
  if (
    (typeof result === "object" || typeof result === "function") &&
    result !== null &&
    typeof (result as { then?: unknown }).then === "function"
  ) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      "a transaction function must be synchronous: writes after an await would escape the transaction",
    );
  }
}

/** Compare two byte strings as unsigned bytes (the order of BLOB keys in SQLite and bytea in PostgreSQL). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The checks of a store's index writeBatch, before anything is written: every node well-sized and stored
 * under its own hash (SHA-256 of its body: src/core/patient-index/store.ts), and the root well-sized. A store
 * may then keep a node's hash as a prefix only and recompute the rest from the body (docs/store.md).
 */
export function checkIndexBatch(batch: IndexBatch): void {
  if (typeof batch !== "object" || batch === null || !Array.isArray(batch.nodes)) {
    throw new LedgerError("INVALID_ARGUMENT", "a patient index batch is { nodes, root }");
  }
  for (const node of batch.nodes) {
    const { hash, body } = (node ?? {}) as { hash?: unknown; body?: unknown };
    if (
      !(hash instanceof Uint8Array) ||
      hash.length !== HASH_BYTES ||
      !(body instanceof Uint8Array) ||
      (body.length !== LEAF_BODY_SIZE && body.length !== NODE_BODY_SIZE)
    ) {
      throw new LedgerError("INVALID_ARGUMENT", "patient index node has a wrong hash or body size");
    }
    if (!bytesEqual(nodeCrypto.sha256(body), hash)) {
      throw new LedgerError("INVALID_ARGUMENT", "a patient index node's hash is not the SHA-256 of its body");
    }
  }
  if (!(batch.root instanceof Uint8Array) || batch.root.length !== HASH_BYTES) {
    throw new LedgerError("INVALID_ARGUMENT", "patient index root must be 32 bytes");
  }
}
