/**
 * The SDK's HTTP transport (docs/api.md): every request signed with RFC 9421 and an RFC 9530 digest
 * (src/core/http/request-auth.ts) when a signer is given, every response read up to a bound and parsed
 * strictly (the core's strict JSON parser, then a zod schema) before anything in it is used, and every
 * error body mapped back to a LedgerError with the node's code. Only the global fetch (or one passed in):
 * this runs in Node and in the browser.
 */
import type { z } from "zod";
import { LedgerError } from "../core/errors.ts";
import { fromUtf8, utf8 } from "../core/encoding/bytes.ts";
import { parseJson } from "../core/encoding/jcs.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { signRequest } from "../core/http/request-auth.ts";
import { ErrorBodySchema } from "./api.ts";
import { REJECTION_CODES } from "../core/ledger/rejections.ts";
import { RejectedError, codeOfStatus, knownCode } from "./errors.ts";

/** Bound on a JSON response unless the call names another. */
export const MAX_JSON_RESPONSE = 4 * 1024 * 1024;
/** Bound on a history page (500 entries of typically 2 KiB, with proofs; entries may reach 1 MiB). */
export const MAX_HISTORY_RESPONSE = 64 * 1024 * 1024;
/** Bound on a text response (a checkpoint note with its cosignatures). */
export const MAX_TEXT_RESPONSE = 1024 * 1024;
/** Bound on a blob (MAX_BLOB_BYTES of docs/api.md). */
export const MAX_BLOB_RESPONSE = 64 * 1024 * 1024;
/** Bound on an error body. */
const MAX_ERROR_RESPONSE = 64 * 1024;
const JSON_TYPE = "application/json; charset=utf-8";

/** Who signs a request: a keyid and its Ed25519 seed. */
export interface RequestSigner {
  readonly keyid: string;
  readonly signing: { readonly secretKey: Uint8Array };
}

/** One request. */
export interface RequestSpec {
  readonly method: "GET" | "POST" | "PUT";
  /** Path under the base URL, starting with /v1/. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | bigint | undefined>>;
  /** A JSON value, or raw bytes (sent as application/octet-stream). */
  readonly body?: unknown;
  /** The signer; omitted for the node's public endpoints. */
  readonly signer?: RequestSigner | undefined;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A failed request whose error body carried more than the code (a history 404's proof of absence). */
export class NodeError extends LedgerError {
  /** The HTTP status. */
  readonly status: number;
  /** The parsed error body. */
  readonly body: z.infer<typeof ErrorBodySchema> | null;

  constructor(
    status: number,
    code: LedgerError["code"],
    message: string,
    body: z.infer<typeof ErrorBodySchema> | null,
  ) {
    super(code, message);
    this.name = "LedgerError";
    this.status = status;
    this.body = body;
  }
}

/** The transport's configuration. */
export interface TransportOptions {
  readonly baseUrl: string;
  readonly crypto: CryptoSuite;
  readonly fetch: typeof fetch;
  /** The clock, Unix milliseconds (signature `created`). */
  readonly now: () => number;
}

/** Signed, bounded, validated HTTP against one node. */
export class Transport {
  readonly #base: URL;
  readonly #crypto: CryptoSuite;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;

  constructor(options: TransportOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch (cause) {
      throw new LedgerError("INVALID_ARGUMENT", "the node URL is not a URL", { cause });
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new LedgerError("INVALID_ARGUMENT", "the node URL must be http: or https:");
    }
    this.#base = base;
    this.#crypto = options.crypto;
    this.#fetch = options.fetch;
    this.#now = options.now;
  }

  /** Send a request and return the response with its body read up to `maxBytes`; errors become LedgerErrors. */
  async send(
    spec: RequestSpec,
    maxBytes: number,
  ): Promise<{ status: number; body: Uint8Array; type: string }> {
    const url = new URL(
      spec.path.replace(/^\//, ""),
      this.#base.href.endsWith("/") ? this.#base : `${this.#base.href}/`,
    );
    for (const [name, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = {
      accept: "application/json, text/plain, application/octet-stream",
    };
    let body: Uint8Array | undefined;
    if (spec.body instanceof Uint8Array) {
      body = spec.body;
      headers["content-type"] = "application/octet-stream";
    } else if (spec.body !== undefined) {
      body = utf8(JSON.stringify(spec.body));
      headers["content-type"] = JSON_TYPE;
    }
    Object.assign(headers, spec.headers ?? {});
    if (spec.signer !== undefined) {
      const signed = await signRequest(
        this.#crypto,
        { method: spec.method, url: url.href, headers, body },
        { keyid: spec.signer.keyid, secretKey: spec.signer.signing.secretKey, clock: this.#now },
      );
      Object.assign(headers, signed);
    }
    let response: Response;
    try {
      response = await this.#fetch(url.href, {
        method: spec.method,
        headers,
        // Our byte arrays are never backed by a SharedArrayBuffer.
        ...(body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> }),
        redirect: "error",
      });
    } catch (cause) {
      throw new LedgerError(
        "INTERNAL",
        `cannot reach the node at ${this.#base.origin}: check the URL and the network`,
        {
          cause,
        },
      );
    }
    const type = response.headers.get("content-type") ?? "";
    if (response.status >= 400) {
      const bytes = await readBounded(response, MAX_ERROR_RESPONSE).catch(() => new Uint8Array(0));
      throw errorOf(response.status, bytes);
    }
    return { status: response.status, body: await readBounded(response, maxBytes), type };
  }

  /** A JSON request whose response is parsed strictly and validated with `schema`. */
  async json<S extends z.ZodType>(
    spec: RequestSpec,
    schema: S,
    maxBytes = MAX_JSON_RESPONSE,
  ): Promise<z.infer<S>> {
    const { body } = await this.send(spec, maxBytes);
    return parseResponse(body, schema, `${spec.method} ${spec.path}`, maxBytes);
  }

  /** A request whose response is UTF-8 text (checkpoints). */
  async text(spec: RequestSpec, maxBytes = MAX_TEXT_RESPONSE): Promise<string> {
    const { body } = await this.send(spec, maxBytes);
    try {
      return fromUtf8(body);
    } catch (cause) {
      throw new LedgerError("MALFORMED_INPUT", `${spec.method} ${spec.path}: the response is not UTF-8`, {
        cause,
      });
    }
  }

  /** A request whose response is raw bytes (blobs). */
  async bytes(spec: RequestSpec, maxBytes = MAX_BLOB_RESPONSE): Promise<Uint8Array> {
    return (await this.send(spec, maxBytes)).body;
  }
}

/** Parse a JSON response body strictly and validate it (MALFORMED_INPUT when it does not fit). */
export function parseResponse<S extends z.ZodType>(
  body: Uint8Array,
  schema: S,
  what: string,
  maxBytes: number,
): z.infer<S> {
  let value: unknown;
  try {
    value = parseJson(body, { maxDepth: 32, maxBytes });
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", `${what}: the node's response is not strict JSON`, { cause });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.map(String).join(".") ?? "";
    throw new LedgerError(
      "MALFORMED_INPUT",
      `${what}: the node's response does not match the API (${path === "" ? "" : `${path}: `}${issue?.message ?? ""})`,
    );
  }
  return parsed.data;
}

/** Read a response body, refusing more than `maxBytes` (TOO_LARGE) without buffering the excess. */
export async function readBounded(response: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = response.headers.get("content-length");
  if (declared !== null && /^[0-9]{1,16}$/.test(declared) && Number(declared) > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new LedgerError("TOO_LARGE", `the node's response is ${declared} bytes; the limit is ${maxBytes}`);
  }
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new LedgerError("TOO_LARGE", `the node's response exceeds ${maxBytes} bytes`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The LedgerError of an error response: the node's code when it is one of ours, else one from the status.
 * An ENTRY_INVALID (an entry the node refused before the ledger saw it, or a queue refusal) is a
 * RejectedError whose reason is the rejection code the message starts with (docs/entries.md section 6).
 */
function errorOf(status: number, bytes: Uint8Array): LedgerError {
  let body: z.infer<typeof ErrorBodySchema> | null = null;
  try {
    const parsed = ErrorBodySchema.safeParse(
      parseJson(bytes, { maxDepth: 32, maxBytes: MAX_ERROR_RESPONSE }),
    );
    if (parsed.success) body = parsed.data;
  } catch {
    body = null;
  }
  const code = knownCode(body?.error.code) ?? codeOfStatus(status);
  const message = body === null ? `the node answered ${status}` : `${body.error.message} (HTTP ${status})`;
  if (code === "ENTRY_INVALID") {
    const text = body?.error.message ?? "";
    const reason = REJECTION_CODES.find((r) => text.startsWith(`${r}: `) || text.includes(`: ${r}: `));
    return new RejectedError(reason ?? "SCHEMA", message);
  }
  return new NodeError(status, code, message, body);
}
