/**
 * Record payloads and their encryption (docs/records.md sections 1 to 3; DESIGN.md sections 4 and 5).
 *
 * A record version is the RFC 8785 JSON of its payload (type, sensitivity, clinical date, title, one FHIR
 * R4 resource, attachment descriptions), encrypted with AES-256-GCM under a fresh 256-bit data key with the
 * record's header bound as associated data. Attachments (images, PDFs) are cut into 1 MiB chunks, each
 * encrypted under the same key with its position in the aad, so a chunk cannot be reordered, moved to
 * another attachment or record, or dropped from the end. The data key is wrapped with HPKE for each reader
 * (src/core/crypto/envelope.ts), bound to the reader's name (info) and to the header (aad).
 *
 * Pure: no I/O; every primitive through the CryptoSuite, so this runs in Node and in the browser.
 */
import { z } from "zod";
import { LedgerError } from "../core/errors.ts";
import { concatBytes, fromBase64, toBase64, toHex, utf8 } from "../core/encoding/bytes.ts";
import { canonicalBytes, isWellFormedString, parseJson, type JsonLimits } from "../core/encoding/jcs.ts";
import {
  DATA_KEY_LENGTH,
  decodeEnvelope,
  encodeEnvelope,
  openEnvelope,
  sealEnvelope,
} from "../core/crypto/envelope.ts";
import type { CryptoSuite, KeyPair } from "../core/crypto/suite.ts";
import { DaySchema, HashSchema, MAX_BLOBS } from "../core/ledger/schema.ts";

/** The record categories (docs/records.md section 1). */
export const RECORD_TYPES = [
  "consultation",
  "laboratory-result",
  "image",
  "prescription",
  "operation",
  "clinical-note",
] as const;
/** A record category. */
export type RecordType = (typeof RECORD_TYPES)[number];

/** The restricted sensitivity categories, which only a grant naming them covers. */
export const RESTRICTED_CATEGORIES = [
  "hiv",
  "mental-health",
  "reproductive-health",
  "substance-use",
] as const;
/** A restricted sensitivity category. */
export type RestrictedCategory = (typeof RESTRICTED_CATEGORIES)[number];

/** Every sensitivity label: normal, a restricted category, or a psychotherapy note (author only). */
export const SENSITIVITIES = ["normal", ...RESTRICTED_CATEGORIES, "psychotherapy-note"] as const;
/** A sensitivity label. */
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** Payload format version. */
export const RECORD_PAYLOAD_VERSION = 1;
/** Domain-separation prefix of a record's associated data. */
export const RECORD_AAD_PREFIX = "medledger/record/v1\n";
/** Attachments are encrypted in chunks of 1 MiB (the last one shorter). */
export const ATTACHMENT_CHUNK_BYTES = 1024 * 1024;
/** At most 16 attachments per record. */
export const MAX_ATTACHMENTS = 16;
/** A title has at most 200 characters. */
export const MAX_TITLE_LENGTH = 200;
/** The payload JSON (without attachments) is at most 16 MiB. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** AES-GCM nonce length. */
const NONCE_BYTES = 12;
/** AES-GCM tag length. */
const TAG_BYTES = 16;
const AEAD = "AES-256-GCM";
const PAYLOAD_JSON_LIMITS: JsonLimits = { maxDepth: 64, maxBytes: MAX_PAYLOAD_BYTES };

/** The clear header a record's ciphertext and envelopes are bound to (the entry's fields). */
export interface RecordHeader {
  readonly patient: string;
  readonly record: string;
  readonly author: string;
  readonly month: string;
}

// A name is 1 to 255 characters without C0 controls or DEL (checked without a control-character RegExp).
function isFileName(name: string): boolean {
  if (name.length === 0 || name.length > 255 || !isWellFormedString(name)) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}
const CONTENT_TYPE = /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/;

/** How an attachment is described inside the payload. */
export const AttachmentMetaSchema = z
  .strictObject({
    name: z.string().refine(isFileName, "must be 1 to 255 characters without control characters"),
    contentType: z.string().max(255).regex(CONTENT_TYPE, "must be a media type"),
    size: z
      .number()
      .int()
      .min(0)
      .max(MAX_BLOBS * ATTACHMENT_CHUNK_BYTES),
    chunks: z.array(HashSchema).max(MAX_BLOBS),
  })
  .refine((a) => a.chunks.length === chunkCount(a.size), "chunks must number ceil(size / 1 MiB)");
/** An attachment as the payload describes it. */
export type AttachmentMeta = z.infer<typeof AttachmentMetaSchema>;

/** The decrypted payload of a record version (docs/records.md section 1). */
export const RecordPayloadSchema = z
  .strictObject({
    v: z.literal(RECORD_PAYLOAD_VERSION),
    type: z.enum(RECORD_TYPES),
    sensitivity: z.enum(SENSITIVITIES),
    date: DaySchema,
    title: z.string().min(1).max(MAX_TITLE_LENGTH).refine(isWellFormedString, "must be well-formed"),
    resource: z.record(z.string(), z.unknown()),
    attachments: z.array(AttachmentMetaSchema).max(MAX_ATTACHMENTS),
  })
  .refine(
    (p) => p.attachments.reduce((n, a) => n + a.chunks.length, 0) <= MAX_BLOBS,
    `at most ${MAX_BLOBS} attachment chunks in all`,
  );
/** A record's payload. */
export type RecordPayload = z.infer<typeof RecordPayloadSchema>;

/** A file to attach, in clear. */
export interface AttachmentInput {
  readonly name: string;
  readonly contentType: string;
  readonly bytes: Uint8Array;
}

/** The clinical content of a record, in clear, as the author gives it. */
export interface RecordContent {
  readonly type: RecordType;
  readonly sensitivity: Sensitivity;
  /** The clinical date, YYYY-MM-DD; its month becomes the entry's month. */
  readonly date: string;
  readonly title: string;
  /** One FHIR R4 resource as JSON. */
  readonly resource: Record<string, unknown>;
  readonly attachments?: readonly AttachmentInput[];
}

/** A record encrypted and ready to upload: the blobs, the entry's object list, the key to wrap. */
export interface EncryptedRecord {
  readonly header: RecordHeader;
  readonly aad: Uint8Array;
  /** The 256-bit data key: wrap it for the readers, then zero it. */
  readonly dataKey: Uint8Array;
  readonly payload: RecordPayload;
  /** The payload blob: nonce || AES-256-GCM(payload) || tag. */
  readonly ciphertext: Uint8Array;
  /** The encrypted chunks of each attachment, in order. */
  readonly chunks: readonly (readonly Uint8Array[])[];
  /** The entry's `ciphertext`: SHA-256 and size of the payload blob. */
  readonly ciphertextRef: { readonly hash: string; readonly size: number };
  /** The entry's `blobs`: every chunk's SHA-256 and size, sorted by hash. */
  readonly blobs: readonly { readonly hash: string; readonly size: number }[];
}

/** Number of chunks of a file of `size` bytes (0 for an empty file). */
export function chunkCount(size: number): number {
  return Math.ceil(size / ATTACHMENT_CHUNK_BYTES);
}

/** The clinical month of a day. */
export function monthOf(day: string): string {
  return day.slice(0, 7);
}

/** `"medledger/record/v1\n" || JCS({author, month, patient, record})`: the header every ciphertext is bound to. */
export function recordAad(header: RecordHeader): Uint8Array {
  const { patient, record, author, month } = header;
  return concatBytes(utf8(RECORD_AAD_PREFIX), canonicalBytes({ author, month, patient, record }));
}

/** The aad of chunk j (from 0) of n of attachment i (from 0): the record's aad and the chunk's place. */
export function chunkAad(aad: Uint8Array, attachment: number, chunk: number, count: number): Uint8Array {
  return concatBytes(aad, utf8(`\nattachment ${attachment} chunk ${chunk} of ${count}`));
}

/** nonce || AES-256-GCM(key, nonce, aad, plaintext). */
async function seal(
  crypto: CryptoSuite,
  key: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  const nonce = crypto.randomBytes(NONCE_BYTES);
  return concatBytes(nonce, await crypto.aeadSeal(AEAD, key, nonce, aad, plaintext));
}

/** Open nonce || ciphertext || tag; DECRYPTION_FAILED when anything was changed. */
async function open(
  crypto: CryptoSuite,
  key: Uint8Array,
  aad: Uint8Array,
  blob: Uint8Array,
): Promise<Uint8Array> {
  if (!(blob instanceof Uint8Array) || blob.length < NONCE_BYTES + TAG_BYTES) {
    throw new LedgerError("DECRYPTION_FAILED", "ciphertext is shorter than a nonce and a tag");
  }
  return crypto.aeadOpen(AEAD, key, blob.subarray(0, NONCE_BYTES), aad, blob.subarray(NONCE_BYTES));
}

/** Encrypt chunk j of n of attachment i. */
export function sealChunk(
  crypto: CryptoSuite,
  dataKey: Uint8Array,
  aad: Uint8Array,
  attachment: number,
  chunk: number,
  count: number,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  return seal(crypto, dataKey, chunkAad(aad, attachment, chunk, count), plaintext);
}

/** Decrypt chunk j of n of attachment i; DECRYPTION_FAILED when it is another chunk or was changed. */
export function openChunk(
  crypto: CryptoSuite,
  dataKey: Uint8Array,
  aad: Uint8Array,
  attachment: number,
  chunk: number,
  count: number,
  blob: Uint8Array,
): Promise<Uint8Array> {
  return open(crypto, dataKey, chunkAad(aad, attachment, chunk, count), blob);
}

function invalid(message: string): never {
  throw new LedgerError("INVALID_ARGUMENT", message);
}

/** Check the author's input and shape it as a payload without attachments yet. */
function checkContent(content: RecordContent, month: string): void {
  if (typeof content !== "object" || content === null) invalid("record content must be an object");
  if (!(RECORD_TYPES as readonly string[]).includes(content.type)) invalid("unknown record type");
  if (!(SENSITIVITIES as readonly string[]).includes(content.sensitivity)) invalid("unknown sensitivity");
  if (!DaySchema.safeParse(content.date).success) invalid("the clinical date must be a day YYYY-MM-DD");
  if (monthOf(content.date) !== month) invalid("the clinical date's month must be the entry's month");
  const attachments: readonly AttachmentInput[] = content.attachments ?? [];
  if (!Array.isArray(content.attachments ?? []) || attachments.length > MAX_ATTACHMENTS) {
    invalid(`at most ${MAX_ATTACHMENTS} attachments`);
  }
  let total = 0;
  for (const a of attachments) {
    if (!(a.bytes instanceof Uint8Array)) invalid("an attachment's bytes must be a Uint8Array");
    total += chunkCount(a.bytes.length);
  }
  if (total > MAX_BLOBS) invalid(`at most ${MAX_BLOBS} attachment chunks of 1 MiB in all`);
}

/**
 * Encrypt a record version: a fresh data key, every attachment chunk, then the payload that lists the
 * chunks' hashes (so the payload commits to every chunk in order). INVALID_ARGUMENT for bad content.
 */
export async function encryptRecord(
  crypto: CryptoSuite,
  header: RecordHeader,
  content: RecordContent,
): Promise<EncryptedRecord> {
  checkContent(content, header.month);
  const aad = recordAad(header);
  const dataKey = crypto.randomBytes(DATA_KEY_LENGTH);
  try {
    const chunks: Uint8Array[][] = [];
    const metas: AttachmentMeta[] = [];
    const blobs: { hash: string; size: number }[] = [];
    const inputs = content.attachments ?? [];
    for (const [i, a] of inputs.entries()) {
      const n = chunkCount(a.bytes.length);
      const sealed: Uint8Array[] = [];
      for (let j = 0; j < n; j++) {
        const part = a.bytes.subarray(j * ATTACHMENT_CHUNK_BYTES, (j + 1) * ATTACHMENT_CHUNK_BYTES);
        sealed.push(await sealChunk(crypto, dataKey, aad, i, j, n, part));
      }
      const hashes = sealed.map((c) => toHex(crypto.sha256(c)));
      sealed.forEach((c, j) => blobs.push({ hash: hashes[j]!, size: c.length }));
      chunks.push(sealed);
      metas.push({ name: a.name, contentType: a.contentType, size: a.bytes.length, chunks: hashes });
    }
    const parsed = RecordPayloadSchema.safeParse({
      v: RECORD_PAYLOAD_VERSION,
      type: content.type,
      sensitivity: content.sensitivity,
      date: content.date,
      title: content.title,
      resource: content.resource,
      attachments: metas,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      invalid(`record payload: ${issue?.path.join(".") ?? ""} ${issue?.message ?? "invalid"}`);
    }
    const plaintext = canonicalBytes(parsed.data, PAYLOAD_JSON_LIMITS);
    const ciphertext = await seal(crypto, dataKey, aad, plaintext);
    blobs.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
    for (let k = 1; k < blobs.length; k++) {
      if (blobs[k - 1]!.hash === blobs[k]!.hash) throw new LedgerError("INTERNAL", "two chunks share a hash");
    }
    return {
      header,
      aad,
      dataKey,
      payload: parsed.data,
      ciphertext,
      chunks,
      ciphertextRef: { hash: toHex(crypto.sha256(ciphertext)), size: ciphertext.length },
      blobs,
    };
  } catch (err) {
    dataKey.fill(0);
    throw err;
  }
}

/**
 * Decrypt and parse a payload blob. DECRYPTION_FAILED when the key, the header or the blob does not match;
 * MALFORMED_INPUT when it decrypts to something that is not a payload, or to a date outside the header's
 * month (the author's client refuses to write one).
 */
export async function decryptPayload(
  crypto: CryptoSuite,
  dataKey: Uint8Array,
  header: RecordHeader,
  blob: Uint8Array,
): Promise<RecordPayload> {
  const plaintext = await open(crypto, dataKey, recordAad(header), blob);
  let value: unknown;
  try {
    value = parseJson(plaintext, PAYLOAD_JSON_LIMITS);
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", "the record payload is not strict JSON", { cause });
  }
  const parsed = RecordPayloadSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LedgerError(
      "MALFORMED_INPUT",
      `the record payload is malformed: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`,
    );
  }
  if (monthOf(parsed.data.date) !== header.month) {
    throw new LedgerError("MALFORMED_INPUT", "the payload's clinical date is not in the entry's month");
  }
  return parsed.data;
}

/**
 * Decrypt attachment i from its encrypted chunks, in the payload's order. Each chunk must hash to the
 * payload's entry for it and there must be exactly as many as the size needs; DECRYPTION_FAILED otherwise.
 */
export async function decryptAttachment(
  crypto: CryptoSuite,
  dataKey: Uint8Array,
  aad: Uint8Array,
  index: number,
  meta: AttachmentMeta,
  chunks: readonly Uint8Array[],
): Promise<Uint8Array> {
  const n = chunkCount(meta.size);
  if (chunks.length !== n || meta.chunks.length !== n) {
    throw new LedgerError("DECRYPTION_FAILED", `attachment ${index} needs ${n} chunks, got ${chunks.length}`);
  }
  const out = new Uint8Array(meta.size);
  let offset = 0;
  for (let j = 0; j < n; j++) {
    const blob = chunks[j]!;
    if (toHex(crypto.sha256(blob)) !== meta.chunks[j]) {
      throw new LedgerError("DECRYPTION_FAILED", `chunk ${j} of attachment ${index} is not the one listed`);
    }
    const part = await openChunk(crypto, dataKey, aad, index, j, n, blob);
    const expected = j < n - 1 ? ATTACHMENT_CHUNK_BYTES : meta.size - offset;
    if (part.length !== expected) {
      throw new LedgerError("DECRYPTION_FAILED", `chunk ${j} of attachment ${index} has the wrong length`);
    }
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A key envelope as entries carry it: the recipient and the binary envelope in base64. */
export interface EnvelopeRef {
  readonly to: string;
  readonly env: string;
}

/** Wrap a data key for a reader: HPKE with info = the reader's name (`org:<id>`, `patient:<id>`), aad. */
export async function wrapKey(
  crypto: CryptoSuite,
  to: string,
  publicKey: Uint8Array,
  dataKey: Uint8Array,
  aad: Uint8Array,
): Promise<EnvelopeRef> {
  const envelope = await sealEnvelope(crypto, publicKey, dataKey, { info: utf8(to), aad });
  return { to, env: toBase64(encodeEnvelope(envelope)) };
}

/** Unwrap a data key addressed to `to` with the reader's X25519 key pair; DECRYPTION_FAILED otherwise. */
export async function unwrapKey(
  crypto: CryptoSuite,
  to: string,
  keyPair: KeyPair,
  env: string,
  aad: Uint8Array,
): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(env);
    decodeEnvelope(bytes);
  } catch (cause) {
    throw new LedgerError("DECRYPTION_FAILED", "the key envelope is malformed", { cause });
  }
  return openEnvelope(crypto, keyPair, bytes, { info: utf8(to), aad });
}

/** Wrap for several readers; sorted by `to` as entries require. */
export async function wrapKeyFor(
  crypto: CryptoSuite,
  readers: readonly { readonly to: string; readonly publicKey: Uint8Array }[],
  dataKey: Uint8Array,
  aad: Uint8Array,
): Promise<EnvelopeRef[]> {
  const unique = new Map<string, Uint8Array>();
  for (const r of readers) if (!unique.has(r.to)) unique.set(r.to, r.publicKey);
  const sorted = [...unique.keys()].sort();
  return Promise.all(sorted.map((to) => wrapKey(crypto, to, unique.get(to)!, dataKey, aad)));
}
