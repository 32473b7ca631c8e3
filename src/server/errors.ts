/**
 * The one place where error codes (src/core/errors.ts, docs/errors.md) become HTTP statuses, and where any
 * failure becomes the body every error response carries: `{"error": {"code", "message"}}` (docs/api.md
 * section 1). An error this module does not recognise is a bug: it becomes 500 INTERNAL with a request id,
 * and nothing of it (no message, no stack) reaches the response.
 */
import { LedgerError, isLedgerError, type ErrorCode } from "../core/errors.ts";

/** HTTP status of each code (docs/api.md section 1). */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  MALFORMED_INPUT: 400,
  TOO_LARGE: 413,
  TOO_DEEP: 400,
  DUPLICATE_KEY: 400,
  INVALID_NUMBER: 400,
  INVALID_STRING: 400,
  INVALID_ARGUMENT: 400,
  // A signature over a request is authentication (401); signatures inside bodies are refused with other
  // codes by the routes (ENTRY_INVALID for an entry, 403 for a witness checkpoint: see WITNESS_STATUS).
  SIGNATURE_INVALID: 401,
  DECRYPTION_FAILED: 400,
  KEY_INVALID: 400,
  UNSUPPORTED_VERSION: 400,
  UNSUPPORTED_ALGORITHM: 400,
  PASSPHRASE_WRONG: 400,
  PROOF_INVALID: 400,
  INDEX_OUT_OF_RANGE: 400,
  CHECKPOINT_INVALID: 400,
  QUORUM_NOT_MET: 400,
  ORIGIN_MISMATCH: 400,
  // The node's own tree disagrees with its store: never the caller's fault.
  INCONSISTENT_TREE: 500,
  ENTRY_INVALID: 400,
  NOT_PERMITTED: 403,
  NOT_FOUND: 404,
  RATE_LIMITED: 429,
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  AUTH_REPLAYED: 401,
  // The node cannot take more signed requests right now (docs/http-auth.md): like a rate limit.
  AUTH_REPLAY_CACHE_FULL: 429,
  DIGEST_MISMATCH: 401,
  CONFLICT: 409,
  STORE_CORRUPT: 500,
  INTERNAL: 500,
};

/**
 * The C2SP tlog-witness add-checkpoint endpoint fixes its own statuses (c2sp.org/tlog-witness): 403 for a
 * checkpoint signature that does not verify, 422 for a consistency proof that does not, 404 for an unknown
 * origin, 409 for a stale old size. The body is still our JSON error, except the 409 size answer.
 */
export const WITNESS_STATUS: Readonly<Partial<Record<ErrorCode, number>>> = {
  SIGNATURE_INVALID: 403,
  PROOF_INVALID: 422,
  NOT_FOUND: 404,
  CONFLICT: 409,
  CHECKPOINT_INVALID: 400,
};

/** Codes that mean "the request's authentication failed": every one answers 401. */
export const AUTH_CODES: ReadonlySet<ErrorCode> = new Set([
  "AUTH_REQUIRED",
  "AUTH_INVALID",
  "AUTH_REPLAYED",
  "SIGNATURE_INVALID",
  "DIGEST_MISMATCH",
]);

/** A LedgerError with what the HTTP answer needs besides the code: extra body members, extra headers. */
export class HttpError extends LedgerError {
  /** Members added to the error body next to `error` (the history's non-membership proof). */
  readonly extra: Readonly<Record<string, unknown>>;
  /** Response headers (retry-after). */
  readonly headers: Readonly<Record<string, string>>;
  /** A status other than the code's (only the witness endpoint uses it). */
  readonly status: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      extra?: Record<string, unknown>;
      headers?: Record<string, string>;
      status?: number;
      cause?: unknown;
    } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
    this.status = options.status;
  }
}

/** What an error response is made of. */
export interface ErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: { readonly code: ErrorCode; readonly message: string } } & Record<
    string,
    unknown
  >;
  /** True when the failure is ours (5xx): to be logged. */
  readonly internal: boolean;
}

/** Fastify's own errors carry a code like FST_ERR_CTP_BODY_TOO_LARGE and a statusCode. */
interface FrameworkError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
}

/** Map a framework error (body parsing, URL, headers) to our code, or undefined for anything else. */
function frameworkCode(err: unknown): { code: ErrorCode; message: string } | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { code, statusCode } = err as FrameworkError;
  if (typeof code !== "string" || !code.startsWith("FST_ERR")) return undefined;
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return { code: "TOO_LARGE", message: "the request body exceeds this endpoint's bound" };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_TYPE":
      return { code: "MALFORMED_INPUT", message: "the request body or its content-type is not acceptable" };
    case "FST_ERR_BAD_URL":
    case "FST_ERR_MAX_PARAM_LENGTH":
    case "FST_ERR_ASYNC_CONSTRAINT":
      return { code: "MALFORMED_INPUT", message: "the request URL is malformed" };
    default:
      if (typeof statusCode === "number" && statusCode === 413) {
        return { code: "TOO_LARGE", message: "the request is too large" };
      }
      if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
        return { code: "MALFORMED_INPUT", message: "the request is malformed" };
      }
      return undefined;
  }
}

/**
 * The response for any thrown value. `witness` selects the C2SP tlog-witness statuses. A non-LedgerError
 * from our own code, or a 5xx code, is internal: the message then says only that, with the request id.
 */
export function errorResponse(err: unknown, requestId: string, witness = false): ErrorResponse {
  let code: ErrorCode;
  let message: string;
  let extra: Readonly<Record<string, unknown>> = {};
  let headers: Readonly<Record<string, string>> = {};
  let status: number | undefined;
  if (isLedgerError(err)) {
    code = err.code;
    message = err.message;
    if (err instanceof HttpError) {
      extra = err.extra;
      headers = err.headers;
      status = err.status;
    }
  } else {
    const framework = frameworkCode(err);
    if (framework === undefined) {
      code = "INTERNAL";
      message = "";
    } else {
      ({ code, message } = framework);
    }
  }
  status ??= (witness ? WITNESS_STATUS[code] : undefined) ?? HTTP_STATUS[code];
  const internal = status >= 500;
  if (internal) {
    // Never internals in a response: the code and the request id to quote to the operator.
    message = `the node failed to answer (request ${requestId}); the operator's log has the details`;
    extra = {};
  }
  return { status, headers, body: { ...extra, error: { code, message } }, internal };
}

/** A log line for a failure: the request id, method, route and code; never a message, stack or body. */
export function errorLogLine(
  err: unknown,
  requestId: string,
  method: string,
  route: string,
  status: number,
): string {
  const code = isLedgerError(err) ? err.code : "INTERNAL";
  const kind = err instanceof Error ? err.name : typeof err;
  const cause = isLedgerError(err) && err.cause instanceof Error ? ` cause ${err.cause.name}` : "";
  return `ERROR request ${requestId} ${method} ${route}: ${status} ${code} (${kind}${cause})`;
}
