/**
 * Everything the server reads from a request, checked at the edge (STYLE.md: every outside byte is
 * hostile): JSON bodies through the strict parser of src/core/encoding/jcs.ts and then a zod schema that
 * refuses unknown members; path parameters and query strings against anchored, linear patterns; decimal
 * numbers that may exceed 2^53 as bigints.
 */
import { z } from "zod";
import { LedgerError } from "../core/errors.ts";
import { parseJson } from "../core/encoding/jcs.ts";

/** Nesting depth of every JSON body the API takes (the deepest is 2: `{"entries": [...]}`). */
const MAX_BODY_DEPTH = 4;

/** Lower-case SHA-256 hex: blob hashes, entry ids, queue ids, blinded identifiers. */
export const HEX32 = /^[0-9a-f]{64}$/;
/** A patient id: 16 to 32 random bytes in lower-case hex (docs/entries.md). */
export const PATIENT_ID = /^(?:[0-9a-f]{2}){16,32}$/;
/** A decimal integer without leading zeros, at most 20 digits (a uint64 has 20). */
export const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/;

/** The largest tree size or position we take from outside: 2^63 - 1, like the store. */
const MAX_DECIMAL = (1n << 63n) - 1n;

/** The media type of a request, lower-case, without parameters; undefined when absent. */
export function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  return contentType.split(";", 1)[0]!.trim().toLowerCase();
}

/** Refuse a JSON body whose content-type is not application/json (charset, if any, utf-8). */
function checkJsonContentType(contentType: string | undefined): void {
  const type = mediaType(contentType);
  if (type !== "application/json") {
    throw new LedgerError("MALFORMED_INPUT", "send the body as application/json (UTF-8)");
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType ?? "")?.[1];
  if (charset !== undefined && charset.toLowerCase() !== "utf-8") {
    throw new LedgerError("MALFORMED_INPUT", "JSON bodies must be UTF-8");
  }
}

/** The first schema issue as a short sentence naming its path. */
function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "the body does not match the schema";
  const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  return `${path === "" ? "body" : path.slice(path.startsWith(".") ? 1 : 0)}: ${issue.message}`;
}

/**
 * Parse a JSON request body strictly (UTF-8, no duplicate members, bounded size and depth) and check it
 * against a schema; MALFORMED_INPUT (or the parser's own code) otherwise.
 */
export function parseJsonBody<T>(
  body: unknown,
  contentType: string | undefined,
  schema: z.ZodType<T>,
  maxBytes: number,
): T {
  checkJsonContentType(contentType);
  const bytes = rawBytes(body);
  if (bytes.length === 0) throw new LedgerError("MALFORMED_INPUT", "the request needs a JSON body");
  const value = parseJson(bytes, { maxDepth: MAX_BODY_DEPTH, maxBytes });
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new LedgerError("MALFORMED_INPUT", describeIssue(parsed.error));
  return parsed.data;
}

/** The raw body bytes the catch-all content-type parser kept; empty when there was none. */
export function rawBytes(body: unknown): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  throw new LedgerError("MALFORMED_INPUT", "this endpoint does not take a body of that content-type");
}

/** A path parameter that must match a pattern; NOT_FOUND-free: a bad one is MALFORMED_INPUT. */
export function pathParam(params: unknown, name: string, pattern: RegExp, what: string): string {
  const value = (params as Record<string, unknown> | null)?.[name];
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new LedgerError("MALFORMED_INPUT", `${what} is malformed`);
  }
  return value;
}

/** A decimal parameter as a bigint in 0..2^63-1. */
export function decimal(value: string, what: string): bigint {
  if (!DECIMAL.test(value)) throw new LedgerError("MALFORMED_INPUT", `${what} must be a decimal integer`);
  const n = BigInt(value);
  if (n > MAX_DECIMAL) throw new LedgerError("INVALID_ARGUMENT", `${what} is out of range`);
  return n;
}

/** A query string schema: string values only (a repeated parameter is an array and is refused). */
export function parseQuery<T>(query: unknown, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(query ?? {});
  if (!parsed.success) throw new LedgerError("MALFORMED_INPUT", `query ${describeIssue(parsed.error)}`);
  return parsed.data;
}

/** A decimal query member. */
export const DecimalString = z.string().regex(DECIMAL, "must be a decimal integer");
/** A page size 1..500 as a query member. */
export const LimitString = z.string().regex(/^[1-9][0-9]{0,2}$/, "must be an integer from 1 to 500");

/** Parse a page limit (default and maximum `max`). */
export function pageLimit(value: string | undefined, max: number): number {
  if (value === undefined) return max;
  const n = Number(value);
  if (n < 1 || n > max) throw new LedgerError("INVALID_ARGUMENT", `limit must be from 1 to ${max}`);
  return n;
}

/** A decimal bigint as a JSON string (docs/api.md section 1: numbers that can exceed 2^53). */
export function dec(n: bigint): string {
  return n.toString();
}
