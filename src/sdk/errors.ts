/**
 * The SDK's errors: every method throws a LedgerError (docs/errors.md) with a stable code. A ledger or
 * queue rejection is a RejectedError, a LedgerError with code ENTRY_INVALID whose `reason` holds the
 * rejection code of docs/entries.md section 6 (or the validator's queue reason of docs/api.md), so a caller
 * can branch on it (for CHAIN_BROKEN: build the entry again on the new chain head).
 */
import { ERROR_CODES, LedgerError, type ErrorCode } from "../core/errors.ts";

/** A ledger rejection (POST /v1/entries, attest) or a queue rejection (reject), with its reason code. */
export class RejectedError extends LedgerError {
  /** The rejection code: docs/entries.md section 6, or a queue reason such as FHIR_INVALID. */
  readonly reason: string;
  /** For people: what the validator said. */
  readonly detail: string;

  constructor(reason: string, detail: string, options?: { cause?: unknown }) {
    super("ENTRY_INVALID", `${reason}${detail === "" ? "" : `: ${detail}`}`, options);
    this.name = "RejectedError";
    this.reason = reason;
    this.detail = detail;
  }
}

/** True when the value is a RejectedError (with the given reason, when one is named). */
export function isRejected(err: unknown, reason?: string): err is RejectedError {
  return err instanceof RejectedError && (reason === undefined || err.reason === reason);
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** The closed-set code of a server's error body, or undefined when the server named none we know. */
export function knownCode(code: unknown): ErrorCode | undefined {
  return typeof code === "string" && KNOWN_CODES.has(code) ? (code as ErrorCode) : undefined;
}

/** The code a status implies when the body names no known code (docs/api.md section 1). */
export function codeOfStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "AUTH_INVALID";
    case 403:
      return "NOT_PERMITTED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "CONFLICT";
    case 413:
      return "TOO_LARGE";
    case 429:
      return "RATE_LIMITED";
    default:
      return "INTERNAL";
  }
}
