/**
 * The node's HTTP API (docs/api.md), a fastify 5 app over a running LedgerNode. `createServer(deps)`
 * returns the server as a value (STYLE.md, "The app is a value"): the CLI only wires and listens, tests
 * call it over a real socket.
 *
 * Every request goes through the same path: the global in-flight cap; authentication of signed routes
 * (src/server/auth.ts) before anything is read or written for the caller; the caller's token bucket;
 * strict parsing of every input (src/server/input.ts); read rights (src/server/rights.ts); and one error
 * handler that turns any failure into `{"error": {"code", "message"}}` with the status of
 * src/server/errors.ts. Nothing is written before every check passed, so a refused request changes nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Readable } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import { fromBase64, fromHex, fromUtf8, toBase64 } from "../core/encoding/bytes.ts";
import { LedgerError } from "../core/errors.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { decodeEntry } from "../core/ledger/entry.ts";
import { MAX_ENTRY_BYTES } from "../core/ledger/schema.ts";
import { consistencyProofFromNodes, inclusionProofFromNodes } from "../core/merkle/proofs.ts";
import { generateCosignatureKey, parseCosignatureSignerKey } from "../core/note/cosignature.ts";
import { parseNoteVerifierKey, type NoteSigner } from "../core/note/signed-note.ts";
import { readWitnessSigner, witnessKeyName } from "../node/config.ts";
import type { LedgerNode } from "../node/node.ts";
import { Authenticator } from "./auth.ts";
import { HttpError, errorLogLine, errorResponse } from "./errors.ts";
import { buildHistoryPage } from "./history.ts";
import {
  DecimalString,
  HEX32,
  LimitString,
  PATIENT_ID,
  dec,
  decimal,
  mediaType,
  pageLimit,
  parseJsonBody,
  parseQuery,
  pathParam,
  rawBytes,
} from "./input.ts";
import { LedgerView } from "./ledger-view.ts";
import { RateLimiter, rateLimited, resolveLimits, type ServerLimits } from "./limits.ts";
import { LOCAL_STORE_FILE, LocalStore } from "./local-store.ts";
import { openApiDocument } from "./openapi.ts";
import { MAX_QUEUE_NOTE, QUEUE_REJECT_REASONS, ValidationQueue, submitResultJson } from "./queue.ts";
import {
  ACCESS_HEADER,
  checkBlobRelease,
  hasReadBasis,
  ledgerNow,
  requireReadBasis,
  type Caller,
} from "./rights.ts";
import { Witness, WitnessSizeConflict, type WitnessedLog } from "./witness.ts";

/** What createServer needs. */
export interface ServerOptions {
  /** The running node the API serves (the caller opened it and closes it after the server). */
  readonly node: LedgerNode;
  readonly crypto: CryptoSuite;
  /**
   * The node's data folder: the witness key (keys/witness.key, created when missing) and the node-local
   * state (queue.db) live there. Without it both are in memory, gone at close.
   */
  readonly dataDir?: string;
  /** Milliseconds since the epoch (default Date.now): signature windows, ledger now, cosignature times. */
  readonly clock?: () => number;
  /** Bounds (docs/api.md section 1); any subset of ServerLimits. */
  readonly limits?: Partial<ServerLimits>;
  /** Further logs this node witnesses besides its own: origin and C2SP verifier key. */
  readonly witnessLogs?: readonly { readonly origin: string; readonly logKey: string }[];
  /** When given, signed requests must cover @authority naming one of these (host[:port]). */
  readonly authorities?: readonly string[];
  /** Where failures are logged, one line each, never with a message body, secret or stack. */
  readonly log?: (line: string) => void;
}

/** A registered route, in OpenAPI path syntax. */
export interface RouteInfo {
  readonly method: string;
  readonly path: string;
}

/** The running API. */
export interface MedledgerServer {
  /** The fastify instance (tests use inject). */
  readonly app: FastifyInstance;
  /** The node's witness verifier key (C2SP cosignature/v1). */
  readonly witnessKey: string;
  /** Every route the server registered. */
  readonly routes: readonly RouteInfo[];
  /** Listen; resolves with the URL (port 0 picks a free port, and the URL shows it). */
  listen(options?: { readonly host?: string; readonly port?: number }): Promise<string>;
  /** Stop listening, finish the requests in flight, close the local state (not the node). */
  close(): Promise<void>;
}

const JSON_TYPE = "application/json; charset=utf-8";
/** The one route whose body is streamed rather than buffered. */
const BLOB_ROUTE = "/v1/blobs/:hash";
const TEXT_TYPE = "text/plain; charset=utf-8";

/** How a route authenticates: public, signed (body verified with the headers), or a streamed upload. */
type AuthMode = "public" | "signed" | "stream";

interface RouteSpec {
  readonly auth: AuthMode;
  /** Bound on a buffered body (default limits.bodyBytes). */
  readonly bodyLimit?: number;
  /** The C2SP tlog-witness statuses for errors. */
  readonly witness?: boolean;
}

type Handler = (request: FastifyRequest, reply: FastifyReply, caller: Caller | null) => Promise<void>;

function sendJson(reply: FastifyReply, status: number, value: unknown): void {
  void reply.code(status).type(JSON_TYPE).send(JSON.stringify(value));
}

function sendText(reply: FastifyReply, status: number, text: string, type = TEXT_TYPE): void {
  void reply.code(status).type(type).send(text);
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" ? value : undefined;
}

/** The node's witness signer: keys/witness.key of the data folder, or a fresh key in memory. */
async function witnessSigner(options: ServerOptions, clockSeconds: () => number): Promise<NoteSigner> {
  const stamp = (): bigint => BigInt(clockSeconds());
  if (options.dataDir !== undefined) {
    return readWitnessSigner(options.crypto, options.dataDir, options.node.origin, stamp);
  }
  const key = await generateCosignatureKey(options.crypto, witnessKeyName(options.node.origin));
  return parseCosignatureSignerKey(options.crypto, key.signerKey, stamp);
}

/**
 * Read a streamed body, hashing it as it comes, and refuse it past `max` bytes without reading further
 * (the 413 goes out with connection: close, so the rest is never read).
 */
function readBlobStream(stream: Readable, max: number): Promise<{ bytes: Uint8Array; hash: string }> {
  return new Promise((resolve, reject) => {
    const hasher = createHash("sha256");
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (): void => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("error", onCut);
      stream.off("close", onCut);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > max) {
        stop();
        stream.pause();
        reject(
          new HttpError("TOO_LARGE", `a blob is at most ${max} bytes`, { headers: { connection: "close" } }),
        );
        return;
      }
      hasher.update(chunk);
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      stop();
      const joined = Buffer.concat(chunks, total);
      resolve({
        bytes: new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength),
        hash: hasher.digest("hex"),
      });
    };
    const onCut = (): void => {
      stop();
      reject(new LedgerError("MALFORMED_INPUT", "the upload was cut short"));
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("error", onCut);
    stream.once("close", onCut);
  });
}

const EntriesBody = (max: number) =>
  z.strictObject({
    entries: z
      .array(z.string().max(Math.ceil(MAX_ENTRY_BYTES / 3) * 4))
      .min(1)
      .max(max),
  });
const QueueBody = z.strictObject({ entry: z.string().max(Math.ceil(MAX_ENTRY_BYTES / 3) * 4) });
const AttestBody = z.strictObject({ signature: z.string().max(128) });
const RejectBody = z.strictObject({
  reason: z.enum(QUEUE_REJECT_REASONS),
  note: z.string().max(MAX_QUEUE_NOTE).nullable().optional(),
});
const LookupBody = z.strictObject({ blinded: z.string().regex(HEX32, "must be 64 lower-case hex digits") });
const QueueQuery = z.strictObject({
  role: z.enum(["validator", "author"]),
  status: z.enum(["pending", "attested", "rejected"]).optional(),
  limit: LimitString.optional(),
  after: z.string().regex(HEX32, "must be a queue id").optional(),
});
const HistoryQuery = z.strictObject({
  limit: LimitString.optional(),
  after: DecimalString.optional(),
  size: DecimalString.optional(),
});
const InclusionQuery = z.strictObject({ position: DecimalString, size: DecimalString });
const ConsistencyQuery = z.strictObject({ from: DecimalString, to: DecimalString });
const NoQuery = z.strictObject({});

/** Create the HTTP API of a node. */
export async function createServer(options: ServerOptions): Promise<MedledgerServer> {
  const { node, crypto } = options;
  const limits = resolveLimits(options.limits);
  const clock = options.clock ?? Date.now;
  const clockSeconds = (): number => Math.floor(clock() / 1000);
  const log = options.log ?? ((): void => undefined);
  const local = new LocalStore(
    options.dataDir === undefined ? null : join(options.dataDir, LOCAL_STORE_FILE),
  );
  /** The one way an error is answered (docs/api.md section 1), also for the router's own errors. */
  const replyError = (err: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const config = request.routeOptions.config as { witness?: boolean } | undefined;
    const response = errorResponse(err, request.id, config?.witness === true);
    if (response.internal) {
      log(errorLogLine(err, request.id, request.method, request.routeOptions.url ?? "?", response.status));
    }
    void reply
      .code(response.status)
      .headers(response.headers)
      .type(JSON_TYPE)
      .send(JSON.stringify(response.body));
  };
  let app: FastifyInstance;
  let witness: Witness;
  try {
    const logs: WitnessedLog[] = [{ origin: node.origin, logKey: node.logKey, store: node.store }];
    for (const extra of options.witnessLogs ?? []) {
      if (extra.origin === node.origin) {
        throw new LedgerError("INVALID_ARGUMENT", "the node's own log is witnessed already");
      }
      logs.push({ origin: extra.origin, logKey: parseNoteVerifierKey(crypto, extra.logKey) });
    }
    witness = new Witness(crypto, await witnessSigner(options, clockSeconds), local, logs);
    app = Fastify({
      logger: false,
      bodyLimit: limits.bodyBytes,
      exposeHeadRoutes: false,
      return503OnClosing: false,
      forceCloseConnections: "idle",
      routerOptions: { maxParamLength: 200 },
      genReqId: () => randomBytes(8).toString("hex"),
      // A URL the router cannot decode, a parameter past its length: our error format too.
      frameworkErrors: (err, request, reply) => replyError(err, request, reply),
      clientErrorHandler: (err, socket) => {
        // A request that is not even HTTP: answer in our format, never with the parser's details.
        const overflow = (err as { code?: unknown }).code === "HPE_HEADER_OVERFLOW";
        const response = errorResponse(
          overflow
            ? new LedgerError("TOO_LARGE", "the request's header fields exceed the server's bound (16 KiB)")
            : new LedgerError("MALFORMED_INPUT", "the request is not valid HTTP/1.1"),
          "-",
        );
        // An answer to HEAD has no body (RFC 9110 section 9.3.2), even this one.
        const raw = (err as { rawPacket?: unknown }).rawPacket;
        const head = Buffer.isBuffer(raw) && raw.subarray(0, 5).toString("latin1") === "HEAD ";
        const body = head ? "" : JSON.stringify(response.body);
        if (socket.writable) {
          socket.end(
            `HTTP/1.1 ${response.status} ${response.status === 413 ? "Content Too Large" : "Bad Request"}\r\n` +
              `content-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
          );
        } else socket.destroy();
      },
    });
  } catch (err) {
    local.close();
    throw err;
  }

  const view = new LedgerView(node);
  const auth = new Authenticator({
    crypto,
    node,
    clock,
    skewSeconds: limits.skewSeconds,
    replayCacheEntries: limits.replayCacheEntries,
    ...(options.authorities === undefined ? {} : { authorities: options.authorities }),
    // Requests signed before this server started may have been accepted by its previous run.
    notBefore: clockSeconds(),
  });
  const rate = new RateLimiter(limits.ratePerSecond, limits.rateBurst, limits.maxBuckets, clock);
  const queue = new ValidationQueue(node, local, crypto, clockSeconds);
  const routes: RouteInfo[] = [];
  let inFlight = 0;

  /** The ledger view up to date, and ledger now. */
  const fresh = (): number => {
    view.catchUp();
    return ledgerNow(view, clockSeconds());
  };

  /** Cosign our latest checkpoint if needed; a failure is logged and the checkpoint served without it. */
  const latestCheckpoint = async (): Promise<string | undefined> => {
    try {
      return await witness.cosignOwn(node);
    } catch (err) {
      log(errorLogLine(err, "-", "WITNESS", "own checkpoint", 500));
      return node.checkpoint()?.note;
    }
  };

  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      routes.push({ method: String(method), path: route.url.replace(/:([A-Za-z]+)/g, "{$1}") });
    }
  });

  app.removeAllContentTypeParsers();
  // Blobs are streamed by their route (hashed and bounded as they come); everything else is buffered up to
  // the route's body limit and parsed by the route, strictly.
  app.addContentTypeParser("application/octet-stream", (request, payload, done) => {
    if (request.method === "PUT" && request.routeOptions.url === BLOB_ROUTE) {
      done(null, payload);
      return;
    }
    // Any other endpoint refuses the body at once, and the connection closes so the rest is never read.
    done(
      new HttpError("MALFORMED_INPUT", "this endpoint does not take application/octet-stream", {
        headers: { connection: "close" },
      }),
      undefined,
    );
  });
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  app.addHook("onRequest", async (_request, reply) => {
    if (inFlight >= limits.maxInFlight) throw rateLimited("the node is busy: too many requests in flight", 1);
    inFlight++;
    let counted = true;
    reply.raw.once("close", () => {
      if (counted) inFlight--;
      counted = false;
    });
  });

  app.setErrorHandler(replyError);

  app.setNotFoundHandler((request, reply) => {
    rate.take(`ip:${request.ip}`);
    sendJson(reply, 404, {
      error: { code: "NOT_FOUND", message: "no such endpoint: see GET /v1/openapi.json" },
    });
  });

  /** Register a route: authentication and rate limit first, then the handler. */
  const route = (method: "GET" | "POST" | "PUT", url: string, spec: RouteSpec, handler: Handler): void => {
    app.route({
      method,
      url,
      bodyLimit: spec.bodyLimit ?? limits.bodyBytes,
      config: { witness: spec.witness === true },
      handler: async (request, reply) => {
        let caller: Caller | null = null;
        if (spec.auth === "signed") {
          const body = rawBytes(request.body);
          try {
            caller = await auth.authenticate({
              method: request.raw.method ?? request.method,
              target: request.raw.url ?? request.url,
              headers: request.raw.headers,
              body: body.length === 0 ? undefined : body,
            });
          } catch (err) {
            // Failed attempts spend the sender's address's tokens, so forging is rate-limited too.
            rate.take(`ip:${request.ip}`);
            throw err;
          }
          rate.take(caller.keyid);
        } else if (spec.auth === "public") {
          rate.take(`ip:${request.ip}`);
        }
        await handler(request, reply, caller);
      },
    });
  };

  const signed = (caller: Caller | null): Caller => {
    if (caller === null) throw new LedgerError("AUTH_REQUIRED", "this endpoint needs a signed request");
    return caller;
  };
  const orgOnly = (caller: Caller | null, what: string): Caller => {
    const c = signed(caller);
    if (c.kind !== "org") throw new LedgerError("NOT_PERMITTED", `only an org may ${what}`);
    return c;
  };
  const notConsortium = (caller: Caller | null): Caller => {
    const c = signed(caller);
    if (c.kind === "consortium") {
      throw new LedgerError("NOT_PERMITTED", "a consortium key may only submit entries");
    }
    return c;
  };

  // ---------------------------------------------------------------------------------------------------
  // Node and checkpoints (public)
  // ---------------------------------------------------------------------------------------------------

  route("GET", "/v1/health", { auth: "public" }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    sendJson(reply, 200, { ok: true, size: dec(node.size) });
  });

  route("GET", "/v1/openapi.json", { auth: "public" }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    sendJson(reply, 200, openApiDocument());
  });

  route("GET", "/v1/node", { auth: "public" }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    sendJson(reply, 200, {
      origin: node.origin,
      logKey: node.logKey.verifierKey,
      witnessKey: witness.verifierKey,
      size: dec(node.size),
    });
  });

  route("GET", "/v1/checkpoint", { auth: "public" }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    const note = await latestCheckpoint();
    if (note === undefined) throw new LedgerError("NOT_FOUND", "the node has no checkpoint yet");
    sendText(reply, 200, note);
  });

  route("GET", "/v1/checkpoints/:size", { auth: "public" }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    const size = decimal(pathParam(request.params, "size", /^[0-9]{1,20}$/, "the size"), "size");
    const note = size <= node.size ? node.store.checkpointAt(size) : undefined;
    if (note === undefined) throw new LedgerError("NOT_FOUND", `no checkpoint of tree size ${size}`);
    sendText(reply, 200, note);
  });

  route("GET", "/v1/proofs/inclusion", { auth: "public" }, async (request, reply) => {
    const query = parseQuery(request.query, InclusionQuery);
    const position = decimal(query.position, "position");
    const size = decimal(query.size, "size");
    if (size > node.size)
      throw new LedgerError("INDEX_OUT_OF_RANGE", `size ${size} is beyond the tree size ${node.size}`);
    if (position >= size) throw new LedgerError("INDEX_OUT_OF_RANGE", "position must be below size");
    const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);
    const proof = inclusionProofFromNodes(sha, node.store.merkleNodes, position, size);
    sendJson(reply, 200, { position: dec(position), size: dec(size), proof: proof.map((h) => toBase64(h)) });
  });

  route("GET", "/v1/proofs/consistency", { auth: "public" }, async (request, reply) => {
    const query = parseQuery(request.query, ConsistencyQuery);
    const from = decimal(query.from, "from");
    const to = decimal(query.to, "to");
    if (to > node.size)
      throw new LedgerError("INDEX_OUT_OF_RANGE", `to ${to} is beyond the tree size ${node.size}`);
    if (from > to) throw new LedgerError("INVALID_ARGUMENT", "from must not exceed to");
    const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);
    const proof =
      from === 0n || from === to ? [] : consistencyProofFromNodes(sha, node.store.merkleNodes, from, to);
    sendJson(reply, 200, { from: dec(from), to: dec(to), proof: proof.map((h) => toBase64(h)) });
  });

  // ---------------------------------------------------------------------------------------------------
  // Entries
  // ---------------------------------------------------------------------------------------------------

  route(
    "POST",
    "/v1/entries",
    { auth: "signed", bodyLimit: limits.entriesBodyBytes },
    async (request, reply, caller) => {
      const who = signed(caller);
      parseQuery(request.query, NoQuery);
      const body = parseJsonBody(
        request.body,
        header(request, "content-type"),
        EntriesBody(limits.entriesPerSubmission),
        limits.entriesBodyBytes,
      );
      // Every entry is decoded before any is submitted: a malformed one refuses the request, and the
      // ordered stream never holds bytes no caller can be held to.
      const entries = body.entries.map((text, i) => {
        let bytes: Uint8Array;
        try {
          bytes = fromBase64(text);
        } catch {
          throw new LedgerError("MALFORMED_INPUT", `entries[${i}] is not strict base64`);
        }
        const decoded = decodeEntry(bytes);
        if (!decoded.ok)
          throw new LedgerError("ENTRY_INVALID", `entries[${i}]: ${decoded.reason}: ${decoded.detail}`);
        if (!decoded.entry.sigs.some((s) => s.key === who.signKey)) {
          throw new LedgerError(
            "NOT_PERMITTED",
            `entries[${i}] is not signed by you: submit only entries you sign`,
          );
        }
        return bytes;
      });
      const results = await node.submit(entries);
      sendJson(reply, 200, { results: results.map(submitResultJson) });
    },
  );

  route("GET", "/v1/entries/:id", { auth: "signed" }, async (request, reply, caller) => {
    const who = notConsortium(caller);
    parseQuery(request.query, NoQuery);
    const id = pathParam(request.params, "id", HEX32, "the entry id");
    const row = node.store.entryById(fromHex(id));
    if (row === undefined) throw new LedgerError("NOT_FOUND", "no such entry");
    const now = fresh();
    const decoded = decodeEntry(row.bytes);
    const signer = decoded.ok && decoded.entry.sigs.some((s) => s.key === who.signKey);
    const patient = decoded.ok ? (decoded.entry.body as { patient?: unknown }).patient : undefined;
    let allowed = signer;
    if (!allowed && typeof patient === "string") {
      allowed = hasReadBasis(node.state, view, who, patient, now);
    } else if (!allowed) {
      allowed = who.kind === "org";
    }
    if (!allowed)
      throw new LedgerError("NOT_PERMITTED", "you may not read this entry (docs/api.md section 4)");
    sendJson(reply, 200, {
      seq: dec(row.seq),
      position: row.position === null ? null : dec(row.position),
      status: row.status,
      reason: row.reason,
      bytes: toBase64(row.bytes),
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // The validation queue
  // ---------------------------------------------------------------------------------------------------

  route(
    "POST",
    "/v1/queue",
    { auth: "signed", bodyLimit: limits.entriesBodyBytes },
    async (request, reply, caller) => {
      const who = orgOnly(caller, "queue a record");
      parseQuery(request.query, NoQuery);
      const body = parseJsonBody(
        request.body,
        header(request, "content-type"),
        QueueBody,
        limits.entriesBodyBytes,
      );
      let bytes: Uint8Array;
      try {
        bytes = fromBase64(body.entry);
      } catch {
        throw new LedgerError("MALFORMED_INPUT", "entry is not strict base64");
      }
      const { item, created } = await queue.submit(who, bytes);
      sendJson(reply, created ? 201 : 200, { queueId: item.queueId, status: item.status });
    },
  );

  route("GET", "/v1/queue", { auth: "signed" }, async (request, reply, caller) => {
    const who = orgOnly(caller, "read the queue");
    const query = parseQuery(request.query, QueueQuery);
    const limit = pageLimit(query.limit, limits.pageItems);
    sendJson(reply, 200, queue.list(who, query.role, query.status, query.after, limit));
  });

  route("GET", "/v1/queue/:queueId", { auth: "signed" }, async (request, reply, caller) => {
    const who = notConsortium(caller);
    parseQuery(request.query, NoQuery);
    sendJson(reply, 200, queue.get(who, pathParam(request.params, "queueId", HEX32, "the queue id")));
  });

  route("POST", "/v1/queue/:queueId/attest", { auth: "signed" }, async (request, reply, caller) => {
    const who = orgOnly(caller, "attest a record");
    parseQuery(request.query, NoQuery);
    const queueId = pathParam(request.params, "queueId", HEX32, "the queue id");
    const body = parseJsonBody(request.body, header(request, "content-type"), AttestBody, limits.bodyBytes);
    sendJson(reply, 200, await queue.attest(who, queueId, body.signature));
  });

  route("POST", "/v1/queue/:queueId/reject", { auth: "signed" }, async (request, reply, caller) => {
    const who = orgOnly(caller, "reject a record");
    parseQuery(request.query, NoQuery);
    const queueId = pathParam(request.params, "queueId", HEX32, "the queue id");
    const body = parseJsonBody(request.body, header(request, "content-type"), RejectBody, limits.bodyBytes);
    queue.reject(who, queueId, body.reason, body.note ?? null);
    sendJson(reply, 200, { status: "rejected" });
  });

  // ---------------------------------------------------------------------------------------------------
  // Blobs
  // ---------------------------------------------------------------------------------------------------

  route("PUT", BLOB_ROUTE, { auth: "stream" }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    const hash = pathParam(request.params, "hash", HEX32, "the blob hash");
    const incoming = {
      method: request.raw.method ?? request.method,
      target: request.raw.url ?? request.url,
      headers: request.raw.headers,
    };
    // Refuse an unsigned upload, or one from no known caller, before reading a byte of its body.
    try {
      auth.claimedCaller(incoming);
    } catch (err) {
      rate.take(`ip:${request.ip}`);
      throw err;
    }
    if (mediaType(header(request, "content-type")) !== "application/octet-stream") {
      throw new LedgerError("MALFORMED_INPUT", "send the blob as application/octet-stream");
    }
    const declared = header(request, "content-length");
    if (declared !== undefined && /^[0-9]+$/.test(declared) && Number(declared) > limits.blobBytes) {
      throw new HttpError("TOO_LARGE", `a blob is at most ${limits.blobBytes} bytes`, {
        headers: { connection: "close" },
      });
    }
    const { bytes, hash: actual } = await readBlobStream(request.body as Readable, limits.blobBytes);
    let who: Caller;
    try {
      who = await auth.authenticate({ ...incoming, body: bytes.length === 0 ? undefined : bytes });
    } catch (err) {
      rate.take(`ip:${request.ip}`);
      throw err;
    }
    rate.take(who.keyid);
    if (who.kind !== "org") throw new LedgerError("NOT_PERMITTED", "only an org uploads blobs");
    if (actual !== hash) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        "the body's SHA-256 is not the hash in the path: nothing was stored",
      );
    }
    const stored = node.store.hasBlob(fromHex(hash));
    if (!stored) node.store.putBlob(bytes);
    sendJson(reply, stored ? 200 : 201, { hash, size: bytes.length });
  });

  route("GET", BLOB_ROUTE, { auth: "signed" }, async (request, reply, caller) => {
    const who = notConsortium(caller);
    parseQuery(request.query, NoQuery);
    const hash = pathParam(request.params, "hash", HEX32, "the blob hash");
    const access = header(request, ACCESS_HEADER);
    if (access !== undefined && !HEX32.test(access)) {
      throw new LedgerError(
        "MALFORMED_INPUT",
        `${ACCESS_HEADER} must be an access.event entry id (64 hex digits)`,
      );
    }
    const key = fromHex(hash);
    if (!node.store.hasBlob(key)) throw new LedgerError("NOT_FOUND", "the node has no such blob");
    const now = fresh();
    checkBlobRelease({
      state: node.state,
      view,
      store: node.store,
      local,
      caller: who,
      hash,
      accessEvent: access,
      now,
    });
    const bytes = node.store.getBlob(key);
    if (bytes === undefined) throw new LedgerError("NOT_FOUND", "the node has no such blob");
    void reply
      .code(200)
      .type("application/octet-stream")
      .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  // ---------------------------------------------------------------------------------------------------
  // Patients, orgs, identifiers
  // ---------------------------------------------------------------------------------------------------

  route("GET", "/v1/patients/:id", { auth: "signed" }, async (request, reply, caller) => {
    const who = notConsortium(caller);
    parseQuery(request.query, NoQuery);
    const id = pathParam(request.params, "id", PATIENT_ID, "the patient id");
    const state = node.state;
    const patient = state.patients.get(id);
    if (patient === undefined) throw new LedgerError("NOT_FOUND", "no such patient");
    const now = fresh();
    // An author needs the patient's keys, chain head and grants to write a first record (docs/api.md):
    // ledger data that every org's node replicates anyway. Anyone else needs a read basis.
    const author = who.kind === "org" && state.orgs.get(who.id)?.roles.includes("author") === true;
    if (!author) requireReadBasis(state, view, who, id, now);
    const grants = (view.patient(id)?.grants ?? []).map((grantId) => {
      const grant = state.grants.get(grantId)!;
      const row = node.store.entryById(fromHex(grantId));
      if (row === undefined) throw new LedgerError("STORE_CORRUPT", "a grant's entry is missing");
      const body = (JSON.parse(fromUtf8(row.bytes)) as { body: { scope: unknown; scopeHash: string } }).body;
      return {
        id: grant.id,
        grantee: grant.grantee,
        expires: grant.expires,
        revoked: grant.revoked,
        active: state.isGrantActive(grant, now),
        scope: body.scope,
        scopeHash: body.scopeHash,
      };
    });
    const orgs = [...state.orgs.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((o) => ({ id: o.id, roles: o.roles, encKey: o.encKey, active: o.retiredAt === null }));
    sendJson(reply, 200, {
      id,
      signKey: patient.signKey,
      encKey: patient.encKey,
      enrolledBy: patient.enrolledBy,
      chain: { head: patient.head, length: patient.length },
      grants,
      orgs,
    });
  });

  route("GET", "/v1/orgs", { auth: "signed" }, async (request, reply, caller) => {
    notConsortium(caller);
    parseQuery(request.query, NoQuery);
    const orgs = [...node.state.orgs.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((o) => ({
        id: o.id,
        roles: o.roles,
        signKey: o.signKey,
        encKey: o.encKey,
        active: o.retiredAt === null,
      }));
    sendJson(reply, 200, { orgs });
  });

  route("POST", "/v1/lookup", { auth: "signed" }, async (request, reply, caller) => {
    const who = orgOnly(caller, "look a patient up");
    parseQuery(request.query, NoQuery);
    const body = parseJsonBody(request.body, header(request, "content-type"), LookupBody, limits.bodyBytes);
    const patient = node.state.identifierOwner(who.id, body.blinded);
    if (patient === undefined)
      throw new LedgerError("NOT_FOUND", "no active link of your org has this identifier");
    sendJson(reply, 200, { patient });
  });

  // ---------------------------------------------------------------------------------------------------
  // History and access log
  // ---------------------------------------------------------------------------------------------------

  route("GET", "/v1/patients/:id/history", { auth: "signed" }, async (request, reply, caller) => {
    const who = notConsortium(caller);
    const id = pathParam(request.params, "id", PATIENT_ID, "the patient id");
    const query = parseQuery(request.query, HistoryQuery);
    const now = fresh();
    // An unknown patient has no read basis to check: its absence is answered with a proof.
    if (node.state.patients.has(id)) requireReadBasis(node.state, view, who, id, now);
    if (query.size === undefined) await latestCheckpoint();
    const page = buildHistoryPage(
      node,
      id,
      {
        limit: pageLimit(query.limit, Math.min(limits.pageItems, 500)),
        ...(query.after === undefined ? {} : { after: decimal(query.after, "after") }),
        ...(query.size === undefined ? {} : { size: decimal(query.size, "size") }),
      },
      { ledgerTime: (seq) => view.timeAt(seq) },
    );
    sendJson(reply, 200, page);
  });

  route("GET", "/v1/patients/:id/access-log", { auth: "signed" }, async (request, reply, caller) => {
    const who = signed(caller);
    parseQuery(request.query, NoQuery);
    const id = pathParam(request.params, "id", PATIENT_ID, "the patient id");
    if (who.kind !== "patient" || who.id !== id) {
      throw new LedgerError("NOT_PERMITTED", "only the patient reads the access log");
    }
    fresh();
    const known = view.patient(id);
    sendJson(reply, 200, {
      events: (known?.accessEvents ?? []).map((e) => ({
        entry: e.entry,
        position: dec(e.position),
        ledgerTime: e.time,
        org: e.org,
        records: e.records,
        basis: e.basis,
      })),
      emergencies: (known?.emergencies ?? []).map((e) => ({
        entry: e.entry,
        org: e.org,
        reason: e.reason,
        ledgerTime: e.time,
      })),
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // Witness (C2SP tlog-witness)
  // ---------------------------------------------------------------------------------------------------

  route("POST", "/v1/witness/add-checkpoint", { auth: "public", witness: true }, async (request, reply) => {
    parseQuery(request.query, NoQuery);
    try {
      const { line } = await witness.addCheckpoint(rawBytes(request.body));
      sendText(reply, 200, line);
    } catch (err) {
      if (!(err instanceof WitnessSizeConflict)) throw err;
      // c2sp.org/tlog-witness: 409, the latest cosigned size in decimal and a newline, text/x.tlog.size.
      sendText(reply, 409, `${err.size}\n`, "text/x.tlog.size");
    }
  });

  // Settle what a crash left half-done, and cosign our own latest checkpoint, before serving anyone.
  await node.idle();
  view.catchUp();
  queue.recover();
  await latestCheckpoint();
  await app.ready();

  let closed: Promise<void> | null = null;
  return {
    app,
    witnessKey: witness.verifierKey,
    routes,
    async listen(listenOptions = {}) {
      return app.listen({ host: listenOptions.host ?? "127.0.0.1", port: listenOptions.port ?? 8470 });
    },
    close() {
      closed ??= app.close().finally(() => local.close());
      return closed;
    },
  };
}
