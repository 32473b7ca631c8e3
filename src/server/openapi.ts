/**
 * The OpenAPI 3.1 document the node serves at GET /v1/openapi.json (DESIGN.md section 7): every endpoint
 * of docs/api.md, for machines. docs/api.md says what they mean; test/server/api.test.ts checks that this
 * document lists exactly the routes the server registers.
 */
import { ERROR_CODES } from "../core/errors.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const str = (description: string, pattern?: string): Json =>
  pattern === undefined ? { type: "string", description } : { type: "string", pattern, description };
const hex64 = (description: string): Json => str(description, "^[0-9a-f]{64}$");
const decimal = (description: string): Json => str(description, "^(0|[1-9][0-9]{0,19})$");
const obj = (properties: Record<string, Json>, required: string[] = Object.keys(properties)): Json => ({
  type: "object",
  additionalProperties: false,
  required,
  properties,
});

const json = (schema: Json): Json => ({ "application/json": { schema } });
const text = (description: string): Json => ({ "text/plain": { schema: { type: "string", description } } });

/** The error responses a route can give, each `{"error": {"code", "message"}}`. */
function errors(...statuses: number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  const describe: Record<number, string> = {
    400: "malformed or invalid input",
    401: "missing, wrong, stale or replayed signature (AUTH_REQUIRED, AUTH_INVALID, SIGNATURE_INVALID, DIGEST_MISMATCH, AUTH_REPLAYED)",
    403: "NOT_PERMITTED: the caller has no right to this (docs/api.md section 4)",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "TOO_LARGE: the body exceeds the endpoint's bound",
    429: "RATE_LIMITED (with retry-after)",
    500: "INTERNAL: with a request id, no internals",
  };
  for (const status of [...statuses, 429, 500]) {
    out[String(status)] = { description: describe[status] ?? "error", content: json(ref("Error")) };
  }
  return out;
}

const SIGNED: Json = [{ httpMessageSignature: [] }];
const PUBLIC: Json = [];

function op(
  summary: string,
  security: Json,
  responses: Record<string, Json>,
  extra: Record<string, Json> = {},
): Json {
  return { summary, security, responses, ...extra };
}

const pathParam = (name: string, schema: Json): Json => ({ name, in: "path", required: true, schema });
const queryParam = (name: string, schema: Json, required = false): Json => ({
  name,
  in: "query",
  required,
  schema,
});
const patientId: Json = pathParam(
  "id",
  str("patient id: 16 to 32 random bytes in hex", "^([0-9a-f]{2}){16,32}$"),
);
const jsonBody = (schema: Json): Json => ({ required: true, content: json(schema) });

const schemas: Record<string, Json> = {
  Error: {
    type: "object",
    required: ["error"],
    properties: {
      error: obj({
        code: { type: "string", enum: [...ERROR_CODES] },
        message: str("what went wrong and what to do"),
      }),
    },
    description: "Every response with status >= 400. The history's 404 adds indexProof, checkpoint and size.",
  },
  SubmitResult: {
    oneOf: [
      obj({
        seq: decimal("sequence number"),
        id: hex64("entry id"),
        accepted: { const: true },
        position: decimal("leaf position"),
      }),
      obj({
        seq: decimal("sequence number"),
        id: hex64("entry id"),
        accepted: { const: false },
        reason: str("the validator's rejection code (docs/entries.md section 6)"),
        detail: str("for people"),
      }),
    ],
  },
  QueueItem: obj({
    queueId: hex64("entry id of the author-signed bytes"),
    status: { type: "string", enum: ["pending", "attested", "rejected"] },
    author: str("author org"),
    validator: str("validator org"),
    patient: str("patient id"),
    kind: { type: "string", enum: ["record.append", "record.amend"] },
    entry: str("base64 author-signed entry bytes"),
    submittedAt: { type: "integer", description: "Unix seconds" },
    reason: { type: ["string", "null"] },
    note: { type: ["string", "null"] },
    result: { oneOf: [ref("SubmitResult"), { type: "null" }] },
  }),
  IndexProof: {
    type: "object",
    description: "IndexProofJson of src/core/patient-index/proof.ts (membership or non-membership)",
  },
  HistoryPage: obj({
    patient: str("patient id"),
    checkpoint: str("signed note text with cosignatures"),
    size: decimal("tree size of that checkpoint"),
    indexProof: ref("IndexProof"),
    chain: obj({ head: hex64("entry id"), length: { type: "integer" } }),
    entries: {
      type: "array",
      items: obj({
        seq: decimal("sequence number"),
        position: decimal("leaf position"),
        id: hex64("entry id"),
        ledgerTime: { type: "integer", description: "Unix seconds" },
        bytes: str("base64 canonical entry bytes"),
        inclusion: { type: "array", items: str("base64 hash") },
      }),
    },
    next: { type: ["string", "null"], description: "position to pass as after" },
  }),
  Org: obj({
    id: str("org id"),
    roles: { type: "array", items: { type: "string", enum: ["author", "validator"] } },
    signKey: hex64("Ed25519 public key"),
    encKey: hex64("X25519 public key"),
    active: { type: "boolean" },
  }),
};

const paths: Record<string, Json> = {
  "/v1/health": {
    get: op("Liveness and tree size", PUBLIC, {
      "200": { description: "ok", content: json(obj({ ok: { const: true }, size: decimal("tree size") })) },
      ...errors(400),
    }),
  },
  "/v1/openapi.json": {
    get: op("This document", PUBLIC, {
      "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) },
    }),
  },
  "/v1/node": {
    get: op("The log this node serves: origin, log key, witness key, size", PUBLIC, {
      "200": {
        description: "node",
        content: json(
          obj({
            origin: str("log origin"),
            logKey: str("C2SP verifier key of checkpoints"),
            witnessKey: { type: ["string", "null"], description: "C2SP vkey of this node's witness" },
            size: decimal("tree size"),
          }),
        ),
      },
      ...errors(400),
    }),
  },
  "/v1/checkpoint": {
    get: op("The latest checkpoint with its cosignatures (C2SP tlog-checkpoint)", PUBLIC, {
      "200": { description: "signed note", content: text("checkpoint note") },
      ...errors(400, 404),
    }),
  },
  "/v1/checkpoints/{size}": {
    get: op(
      "The stored checkpoint of exactly that tree size",
      PUBLIC,
      { "200": { description: "signed note", content: text("checkpoint note") }, ...errors(400, 404) },
      { parameters: [pathParam("size", decimal("tree size"))] },
    ),
  },
  "/v1/proofs/inclusion": {
    get: op(
      "RFC 9162 inclusion proof",
      PUBLIC,
      {
        "200": {
          description: "proof",
          content: json(
            obj({
              position: decimal("leaf"),
              size: decimal("tree size"),
              proof: { type: "array", items: str("base64 hash") },
            }),
          ),
        },
        ...errors(400),
      },
      {
        parameters: [
          queryParam("position", decimal("leaf"), true),
          queryParam("size", decimal("tree size"), true),
        ],
      },
    ),
  },
  "/v1/proofs/consistency": {
    get: op(
      "RFC 9162 consistency proof",
      PUBLIC,
      {
        "200": {
          description: "proof",
          content: json(
            obj({
              from: decimal("old size"),
              to: decimal("new size"),
              proof: { type: "array", items: str("base64 hash") },
            }),
          ),
        },
        ...errors(400),
      },
      {
        parameters: [
          queryParam("from", decimal("old size"), true),
          queryParam("to", decimal("new size"), true),
        ],
      },
    ),
  },
  "/v1/entries": {
    post: op(
      "Submit 1 to 100 entries the caller signs; answered once durable",
      SIGNED,
      {
        "200": {
          description: "verdicts",
          content: json(obj({ results: { type: "array", items: ref("SubmitResult") } })),
        },
        ...errors(400, 401, 403, 409, 413),
      },
      {
        requestBody: jsonBody(
          obj({ entries: { type: "array", minItems: 1, maxItems: 100, items: str("base64 entry bytes") } }),
        ),
      },
    ),
  },
  "/v1/entries/{id}": {
    get: op(
      "An entry by id, accepted or rejected",
      SIGNED,
      {
        "200": {
          description: "entry",
          content: json(
            obj({
              seq: decimal("sequence number"),
              position: { type: ["string", "null"] },
              status: { type: "string", enum: ["accepted", "rejected"] },
              reason: { type: ["string", "null"] },
              bytes: str("base64 entry bytes"),
            }),
          ),
        },
        ...errors(400, 401, 403, 404),
      },
      { parameters: [pathParam("id", hex64("entry id"))] },
    ),
  },
  "/v1/queue": {
    post: op(
      "Queue an author-signed record for its validator",
      SIGNED,
      {
        "201": {
          description: "queued",
          content: json(obj({ queueId: hex64("queue id"), status: str("pending") })),
        },
        "200": {
          description: "already queued",
          content: json(obj({ queueId: hex64("queue id"), status: str("status") })),
        },
        ...errors(400, 401, 403, 413),
      },
      { requestBody: jsonBody(obj({ entry: str("base64 entry bytes, author signature only") })) },
    ),
    get: op(
      "Queue items naming the caller as validator or author",
      SIGNED,
      {
        "200": {
          description: "page",
          content: json(
            obj({ items: { type: "array", items: ref("QueueItem") }, next: { type: ["string", "null"] } }),
          ),
        },
        ...errors(400, 401, 403, 404),
      },
      {
        parameters: [
          queryParam("role", { type: "string", enum: ["validator", "author"] }, true),
          queryParam("status", { type: "string", enum: ["pending", "attested", "rejected"] }),
          queryParam("limit", { type: "string", pattern: "^[1-9][0-9]{0,2}$" }),
          queryParam("after", hex64("queue id")),
        ],
      },
    ),
  },
  "/v1/queue/{queueId}": {
    get: op(
      "One queue item, to its author or validator",
      SIGNED,
      { "200": { description: "item", content: json(ref("QueueItem")) }, ...errors(400, 401, 403, 404) },
      { parameters: [pathParam("queueId", hex64("queue id"))] },
    ),
  },
  "/v1/queue/{queueId}/attest": {
    post: op(
      "The validator attests; the node submits the record to the ledger",
      SIGNED,
      {
        "200": {
          description: "the ledger's verdict",
          content: json({
            oneOf: [
              obj({ status: { const: "attested" }, result: ref("SubmitResult") }),
              obj({
                status: { const: "rejected" },
                reason: str("ledger rejection code"),
                result: ref("SubmitResult"),
              }),
            ],
          }),
        },
        ...errors(400, 401, 403, 404, 409),
      },
      {
        parameters: [pathParam("queueId", hex64("queue id"))],
        requestBody: jsonBody(obj({ signature: str("base64 Ed25519 signature in role validator") })),
      },
    ),
  },
  "/v1/queue/{queueId}/reject": {
    post: op(
      "The validator rejects with a reason the author sees",
      SIGNED,
      {
        "200": { description: "rejected", content: json(obj({ status: { const: "rejected" } })) },
        ...errors(400, 401, 403, 404, 409),
      },
      {
        parameters: [pathParam("queueId", hex64("queue id"))],
        requestBody: jsonBody(
          obj(
            {
              reason: {
                type: "string",
                enum: ["FHIR_INVALID", "PATIENT_MISMATCH", "DATE_IMPLAUSIBLE", "AUTHOR_UNKNOWN", "OTHER"],
              },
              note: { type: ["string", "null"], maxLength: 500 },
            },
            ["reason"],
          ),
        ),
      },
    ),
  },
  "/v1/blobs/{hash}": {
    put: op(
      "Upload ciphertext, streamed, at most 64 MiB; its SHA-256 must be the path",
      SIGNED,
      {
        "201": {
          description: "stored",
          content: json(obj({ hash: hex64("sha256"), size: { type: "integer" } })),
        },
        "200": {
          description: "already stored",
          content: json(obj({ hash: hex64("sha256"), size: { type: "integer" } })),
        },
        ...errors(400, 401, 403, 413),
      },
      {
        parameters: [pathParam("hash", hex64("SHA-256 of the body"))],
        requestBody: {
          required: true,
          content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
        },
      },
    ),
    get: op(
      "Download ciphertext, when the caller may read its record (docs/api.md section 4)",
      SIGNED,
      {
        "200": {
          description: "bytes",
          content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
        },
        ...errors(400, 401, 403, 404),
      },
      {
        parameters: [
          pathParam("hash", hex64("SHA-256")),
          {
            name: "medledger-access",
            in: "header",
            required: false,
            schema: hex64("access.event entry id (orgs)"),
          },
        ],
      },
    ),
  },
  "/v1/patients/{id}": {
    get: op(
      "A patient's keys, chain head, grants (with encrypted scopes) and the orgs",
      SIGNED,
      { "200": { description: "patient", content: json({ type: "object" }) }, ...errors(400, 401, 403, 404) },
      { parameters: [patientId] },
    ),
  },
  "/v1/orgs": {
    get: op("Every admitted org", SIGNED, {
      "200": { description: "orgs", content: json(obj({ orgs: { type: "array", items: ref("Org") } })) },
      ...errors(400, 401, 403),
    }),
  },
  "/v1/lookup": {
    post: op(
      "Find a patient by the caller org's blinded identifier",
      SIGNED,
      {
        "200": { description: "found", content: json(obj({ patient: str("patient id") })) },
        ...errors(400, 401, 403, 404),
      },
      {
        requestBody: jsonBody(obj({ blinded: hex64("HMAC of the identifier under the org's blinding key") })),
      },
    ),
  },
  "/v1/patients/{id}/history": {
    get: op(
      "One page of a patient's whole history with proofs",
      SIGNED,
      { "200": { description: "page", content: json(ref("HistoryPage")) }, ...errors(400, 401, 403, 404) },
      {
        parameters: [
          patientId,
          queryParam("limit", { type: "string", pattern: "^[1-9][0-9]{0,2}$" }),
          queryParam("after", decimal("position")),
          queryParam("size", decimal("tree size of the first page's checkpoint")),
        ],
      },
    ),
  },
  "/v1/patients/{id}/access-log": {
    get: op(
      "Who obtained the patient's records, and emergency declarations (the patient only)",
      SIGNED,
      { "200": { description: "log", content: json({ type: "object" }) }, ...errors(400, 401, 403) },
      { parameters: [patientId] },
    ),
  },
  "/v1/witness/add-checkpoint": {
    post: op(
      "C2SP tlog-witness add-checkpoint: old size, consistency proof, checkpoint; returns cosignature lines",
      PUBLIC,
      {
        "200": { description: "cosignature note signature lines", content: text("— <name> <base64>") },
        "400": { description: "malformed", content: json(ref("Error")) },
        "403": { description: "checkpoint signature does not verify", content: json(ref("Error")) },
        "404": { description: "unknown origin", content: json(ref("Error")) },
        "409": {
          description: "old size is not the latest cosigned size",
          content: {
            "text/x.tlog.size": { schema: { type: "string" } },
            "application/json": { schema: ref("Error") },
          },
        },
        "422": { description: "consistency proof does not verify", content: json(ref("Error")) },
      },
      { requestBody: { required: true, content: text("add-checkpoint request") } },
    ),
  },
};

/** The OpenAPI 3.1 document of the node's API. */
export function openApiDocument(): Json {
  return {
    openapi: "3.1.0",
    info: {
      title: "medledger node API",
      version: "1",
      description:
        "The node HTTP API of docs/api.md. Signed requests use RFC 9421 with RFC 9530 Content-Digest.",
    },
    paths,
    components: {
      schemas,
      securitySchemes: {
        httpMessageSignature: {
          type: "apiKey",
          in: "header",
          name: "Signature",
          description:
            "RFC 9421 signature labelled sig1 over @method, @path, @query, content-digest; keyid org:<id>, patient:<id> or consortium:<hex>; created and nonce (docs/api.md section 2)",
        },
      },
    },
  };
}
