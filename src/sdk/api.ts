/**
 * The shapes of the node's HTTP responses (docs/api.md), as zod schemas: every response is parsed with
 * one of these before anything in it is used. Unknown members are dropped, so a newer node may add
 * fields; every string is bounded, every big number is a decimal string turned into a bigint.
 */
import { z } from "zod";
import { fromBase64 } from "../core/encoding/bytes.ts";
import { parseUint64 } from "../core/note/checkpoint.ts";
import {
  HashSchema,
  OrgIdSchema,
  ORG_ROLES,
  PublicKeySchema,
  RandomIdSchema,
} from "../core/ledger/schema.ts";
import { MAX_ENTRY_BYTES } from "../core/ledger/schema.ts";

/** A decimal uint64 string (tree sizes, positions, sequence numbers) as a bigint. */
export const Uint64Schema = z
  .string()
  .max(20)
  .transform((text, ctx) => {
    const value = parseUint64(text);
    if (value === undefined) {
      ctx.addIssue({ code: "custom", message: "must be a decimal uint64 without leading zeros" });
      return z.NEVER;
    }
    return value;
  });

function base64Of(maxBytes: number, exactBytes?: number) {
  return z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4)
    .transform((text, ctx) => {
      try {
        const bytes = fromBase64(text);
        if (exactBytes !== undefined && bytes.length !== exactBytes) {
          ctx.addIssue({ code: "custom", message: `must be ${exactBytes} bytes` });
          return z.NEVER;
        }
        return bytes;
      } catch {
        ctx.addIssue({ code: "custom", message: "must be strict base64" });
        return z.NEVER;
      }
    });
}

/** A 32-byte hash in base64, decoded. */
export const Hash64Schema = base64Of(32, 32);
/** Entry bytes in base64, decoded (at most 1 MiB). */
export const EntryBytesSchema = base64Of(MAX_ENTRY_BYTES);

/** GET /v1/node. */
export const NodeInfoSchema = z.object({
  origin: z.string().min(1).max(255),
  logKey: z.string().min(1).max(4096),
  witnessKey: z.string().min(1).max(4096).nullable(),
  size: Uint64Schema,
});

/** GET /v1/proofs/consistency. */
export const ConsistencyProofSchema = z.object({
  from: Uint64Schema,
  to: Uint64Schema,
  proof: z.array(Hash64Schema).max(65),
});

/** One verdict of POST /v1/entries (and of an attestation). */
export const SubmitResultSchema = z.union([
  z.object({ seq: Uint64Schema, id: HashSchema, accepted: z.literal(true), position: Uint64Schema }),
  z.object({
    seq: Uint64Schema,
    id: HashSchema,
    accepted: z.literal(false),
    reason: z.string().min(1).max(64),
    detail: z.string().max(4096).default(""),
  }),
]);
/** A verdict on a submitted entry. */
export type SubmitResult = z.infer<typeof SubmitResultSchema>;

/** POST /v1/entries. */
export const SubmitResponseSchema = z.object({ results: z.array(SubmitResultSchema).min(1).max(100) });

/** The validation queue's statuses. */
export const QUEUE_STATUSES = ["pending", "attested", "rejected"] as const;

/** A queue item (docs/api.md, "The validation queue"). */
export const QueueItemSchema = z.object({
  queueId: HashSchema,
  status: z.enum(QUEUE_STATUSES),
  author: OrgIdSchema,
  validator: OrgIdSchema,
  patient: RandomIdSchema,
  kind: z.enum(["record.append", "record.amend"]),
  entry: EntryBytesSchema,
  submittedAt: z.number().int().min(0),
  reason: z.string().max(64).nullable(),
  note: z.string().max(500).nullable(),
  result: SubmitResultSchema.nullable(),
});
/** A queue item. */
export type QueueItem = z.infer<typeof QueueItemSchema>;

/** GET /v1/queue. */
export const QueueListSchema = z.object({
  items: z.array(QueueItemSchema).max(500),
  next: HashSchema.nullable(),
});

/** POST /v1/queue. */
export const QueueCreatedSchema = z.object({ queueId: HashSchema, status: z.enum(QUEUE_STATUSES) });

/** POST /v1/queue/{id}/attest. */
export const AttestResponseSchema = z.union([
  z.object({ status: z.literal("attested"), result: SubmitResultSchema }),
  z.object({ status: z.literal("rejected"), reason: z.string().min(1).max(64) }),
]);

/** POST /v1/queue/{id}/reject. */
export const RejectResponseSchema = z.object({ status: z.literal("rejected") });

/** PUT /v1/blobs/{hash}. */
export const BlobStoredSchema = z.object({ hash: HashSchema, size: z.number().int().min(0) });

const EnvelopeRefSchema = z.object({ to: z.string().max(128), env: z.string().max(2048) });

/** An org as the node lists it. */
export const OrgInfoSchema = z.object({
  id: OrgIdSchema,
  roles: z.array(z.enum(ORG_ROLES)).max(ORG_ROLES.length),
  signKey: PublicKeySchema,
  encKey: PublicKeySchema,
  active: z.boolean(),
});
/** An org as the node lists it. */
export type OrgInfo = z.infer<typeof OrgInfoSchema>;

/** GET /v1/orgs. */
export const OrgsResponseSchema = z.object({ orgs: z.array(OrgInfoSchema).max(10_000) });

/** GET /v1/patients/{id}. */
export const PatientInfoSchema = z.object({
  id: RandomIdSchema,
  signKey: PublicKeySchema,
  encKey: PublicKeySchema,
  enrolledBy: OrgIdSchema,
  chain: z.object({ head: HashSchema, length: z.number().int().min(1) }),
  grants: z
    .array(
      z.object({
        id: HashSchema,
        grantee: OrgIdSchema,
        expires: z.string().max(10),
        revoked: z.boolean(),
        active: z.boolean(),
        scope: z.object({ ct: z.string().max(8192), envelopes: z.array(EnvelopeRefSchema).max(64) }),
        scopeHash: HashSchema,
      }),
    )
    .max(10_000),
  orgs: z
    .array(
      z.object({
        id: OrgIdSchema,
        roles: z.array(z.enum(ORG_ROLES)).max(2),
        encKey: PublicKeySchema,
        active: z.boolean(),
      }),
    )
    .max(10_000),
});
/** What the node says about a patient (unverified: used to build entries the ledger then judges). */
export type PatientInfo = z.infer<typeof PatientInfoSchema>;

/** POST /v1/lookup. */
export const LookupResponseSchema = z.object({ patient: RandomIdSchema });

/** One entry of a history page. */
export const HistoryEntrySchema = z.object({
  seq: Uint64Schema,
  position: Uint64Schema,
  id: HashSchema,
  ledgerTime: z.number().int().min(0).max(253_402_300_799),
  bytes: EntryBytesSchema,
  inclusion: z.array(Hash64Schema).max(64),
});

/** GET /v1/patients/{id}/history: one page. */
export const HistoryPageSchema = z.object({
  patient: RandomIdSchema,
  checkpoint: z
    .string()
    .min(1)
    .max(64 * 1024),
  size: Uint64Schema,
  indexProof: z.unknown(),
  chain: z.object({ head: HashSchema, length: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
  entries: z.array(HistoryEntrySchema).max(500),
  next: Uint64Schema.nullable(),
});
/** A parsed history page. */
export type HistoryPage = z.infer<typeof HistoryPageSchema>;

/** The error body of every status >= 400; a history 404 adds the proof of absence. */
export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string().max(64), message: z.string().max(4096) }),
  indexProof: z.unknown().optional(),
  checkpoint: z
    .string()
    .max(64 * 1024)
    .optional(),
  size: z.string().max(20).optional(),
});
