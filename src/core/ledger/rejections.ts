/**
 * The closed set of rejection codes (DESIGN.md section 2, "Validation is deterministic"): every node that
 * validates the same ordered entries rejects the same entries with the same code. The code is consensus;
 * the detail text is for people and may change between versions. docs/entries.md lists when each applies.
 */

/** Every reason an entry can be rejected for, in no particular order. */
export const REJECTION_CODES = [
  "TOO_LARGE",
  "MALFORMED",
  "NOT_CANONICAL",
  "SCHEMA",
  "DUPLICATE_ID",
  "GENESIS_MISPLACED",
  "UNKNOWN_ORG",
  "ORG_EXISTS",
  "ORG_RETIRED",
  "ROLE_MISSING",
  "SELF_ATTESTATION",
  "PATIENT_UNKNOWN",
  "PATIENT_EXISTS",
  "MISSING_SIGNATURE",
  "UNEXPECTED_SIGNATURE",
  "BAD_SIGNATURE",
  "CHAIN_BROKEN",
  "IDENTIFIER_LINKED",
  "IDENTIFIER_UNKNOWN",
  "DUPLICATE_RECORD",
  "RECORD_UNKNOWN",
  "RECORD_ERASED",
  "RECORD_SUPERSEDED",
  "NOT_PERMITTED",
  "ENVELOPE_MISSING",
  "ENVELOPE_FORBIDDEN",
  "GRANT_UNKNOWN",
  "GRANT_INACTIVE",
  "EMERGENCY_UNKNOWN",
  "TIME_INVALID",
] as const;

/** One rejection code. */
export type RejectionCode = (typeof REJECTION_CODES)[number];

/** A refusal: the code every node agrees on and a human-readable detail. */
export interface Rejection {
  readonly accepted: false;
  readonly reason: RejectionCode;
  readonly detail: string;
}

/** Build a rejection. */
export function reject(reason: RejectionCode, detail: string): Rejection {
  return { accepted: false, reason, detail };
}
