/**
 * The one error type of medledger. Every failure the code reports on purpose is a LedgerError with a code
 * from the closed set below; callers branch on `code`, never on message text. The mapping from code to
 * HTTP status (and to CLI exit status) lives in exactly one place per interface.
 */

/** The closed set of error codes. Adding one is a reviewed change: it is part of every API. */
export const ERROR_CODES = [
  // Input that cannot be parsed or is outside its bounds.
  "MALFORMED_INPUT",
  "TOO_LARGE",
  "TOO_DEEP",
  "DUPLICATE_KEY",
  "INVALID_NUMBER",
  "INVALID_STRING",
  "INVALID_ARGUMENT",
  // Cryptography.
  "SIGNATURE_INVALID",
  "DECRYPTION_FAILED",
  "KEY_INVALID",
  "UNSUPPORTED_VERSION",
  "UNSUPPORTED_ALGORITHM",
  "PASSPHRASE_WRONG",
  // Transparency log.
  "PROOF_INVALID",
  "INDEX_OUT_OF_RANGE",
  "CHECKPOINT_INVALID",
  "QUORUM_NOT_MET",
  "ORIGIN_MISMATCH",
  "INCONSISTENT_TREE",
  // Ledger entries (docs/entries.md).
  "ENTRY_INVALID",
  // Access to a node (docs/api.md).
  "NOT_PERMITTED",
  "NOT_FOUND",
  "RATE_LIMITED",
  // HTTP request authentication (docs/http-auth.md).
  "AUTH_REQUIRED",
  "AUTH_INVALID",
  "AUTH_REPLAYED",
  "AUTH_REPLAY_CACHE_FULL",
  "DIGEST_MISMATCH",
  // Storage.
  "CONFLICT",
  "STORE_CORRUPT",
  // Everything else that should never happen.
  "INTERNAL",
] as const;

/** One of the closed set of error codes. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The error type used everywhere in medledger: a stable code, a human message, and an optional cause. */
export class LedgerError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LedgerError";
    this.code = code;
  }
}

/** Narrow an unknown thrown value to a LedgerError with the given code (any code when omitted). */
export function isLedgerError(err: unknown, code?: ErrorCode): err is LedgerError {
  return err instanceof LedgerError && (code === undefined || err.code === code);
}

/** Throw a LedgerError with the code when the condition is false. */
export function ensure(condition: unknown, code: ErrorCode, message: string): asserts condition {
  if (!condition) throw new LedgerError(code, message);
}
