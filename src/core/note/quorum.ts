/**
 * Witness quorum policy: "at least k of these n keys signed". Clients accept a checkpoint only with a
 * quorum of known cosignatures (c2sp.org/tlog-cosignature, introduction; DESIGN.md section 2). The policy
 * is a pure function over the verifiers that a note verification reported, so it composes with any
 * signature type.
 */
import { LedgerError } from "../errors.ts";
import { sameVerifier, type NoteVerifier } from "./signed-note.ts";

/** A k-of-n policy over a set of keys. */
export interface QuorumPolicy {
  /** The trusted keys (duplicates count once). */
  readonly keys: readonly NoteVerifier[];
  /** How many distinct keys must have signed: 0 <= threshold <= distinct keys. */
  readonly threshold: number;
}

/** The outcome of a satisfied quorum check. */
export interface QuorumResult {
  /** Distinct policy keys that signed. */
  readonly signed: readonly NoteVerifier[];
  /** Number of distinct policy keys. */
  readonly total: number;
  readonly threshold: number;
}

function distinct(keys: readonly NoteVerifier[]): NoteVerifier[] {
  const out: NoteVerifier[] = [];
  for (const k of keys) if (!out.some((o) => sameVerifier(o, k))) out.push(k);
  return out;
}

/**
 * Check that at least `threshold` distinct keys of the policy appear in `signedBy` (the verified signers
 * of a note); keys outside the policy and repeats are not counted. Throws QUORUM_NOT_MET when short, and
 * INVALID_ARGUMENT for a threshold that is negative, not an integer or above the number of distinct keys.
 */
export function checkQuorum(policy: QuorumPolicy, signedBy: readonly NoteVerifier[]): QuorumResult {
  const keys = distinct(policy.keys);
  const { threshold } = policy;
  if (!Number.isSafeInteger(threshold) || threshold < 0) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `quorum threshold must be a non-negative integer, got ${threshold}`,
    );
  }
  if (threshold > keys.length) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `quorum threshold ${threshold} exceeds the ${keys.length} distinct keys given`,
    );
  }
  const signed = keys.filter((k) => signedBy.some((s) => sameVerifier(s, k)));
  if (signed.length < threshold) {
    throw new LedgerError(
      "QUORUM_NOT_MET",
      `${signed.length} of ${keys.length} witnesses signed, ${threshold} required`,
    );
  }
  return { signed, total: keys.length, threshold };
}
