/**
 * Building, signing, encoding and strict decoding of entries (DESIGN.md section 2, "Entries").
 *
 * An entry is RFC 8785 canonical JSON `{ "v": 1, "kind", "body", "sigs" }`. Each signature is Ed25519
 * (RFC 8032) over `"medledger/entry/v1\n" || role || "\n" || JCS({ v, kind, body })`: the signatures never
 * cover each other, and the role in the message keeps a signature made in one role (say "patient") from
 * being replayed in another ("org") by the same key. The entry id is SHA-256 of the canonical bytes of the
 * whole entry, signatures included; those bytes are also the RFC 9162 Merkle leaf. Decoding refuses any
 * byte string that is not the canonical encoding of a schema-valid entry, so an entry has one encoding.
 */
import { LedgerError } from "../errors.ts";
import { bytesEqual, concatBytes, fromBase64, fromHex, toBase64, toHex, utf8 } from "../encoding/bytes.ts";
import { canonicalBytes, parseCanonical, parseJson, type JsonLimits } from "../encoding/jcs.ts";
import type { CryptoSuite } from "../crypto/suite.ts";
import { reject, type Rejection } from "./rejections.ts";
import {
  BODY_SCHEMAS,
  ENTRY_VERSION,
  EntrySchema,
  MAX_ENTRY_BYTES,
  quickRecordCheck,
  strictlyAscending,
  type BodyOf,
  type Entry,
  type EntryKind,
  type EntryOf,
  type EntrySignature,
  type SignatureRole,
} from "./schema.ts";

/** Domain-separation prefix of every entry signature. */
export const ENTRY_SIGNING_PREFIX = "medledger/entry/v1\n";
/** Domain-separation prefix of blinded identifiers (DESIGN.md section 6). */
export const IDENTIFIER_BLINDING_PREFIX = "medledger/identifier/v1\n";

/** Entries nest at most six levels (entry, body, scope, envelopes, element, member); allow a margin. */
const ENTRY_JSON_LIMITS: JsonLimits = { maxDepth: 8, maxBytes: MAX_ENTRY_BYTES };

/** The result of strict decoding: the typed entry, or why it was refused. */
export type DecodedEntry =
  { readonly ok: true; readonly entry: Entry } | (Rejection & { readonly ok: false });

function schemaDetail(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const first = issues[0];
  if (first === undefined) return "schema violation";
  const path = first.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  return `${path === "" ? "entry" : path.slice(path.startsWith(".") ? 1 : 0)}: ${first.message}`;
}

function sigOrderKey(sig: EntrySignature): string {
  // Roles contain no "\n", which sorts before every character of a role or a key: (role, key) order.
  return `${sig.role}\n${sig.key}`;
}

/**
 * Decode an entry strictly, never throwing on hostile bytes: size, strict JSON, canonical form (RFC 8785
 * re-serialisation must give back the same bytes), schema, then signatures sorted by (role, key) without
 * duplicates. The checks run in this order and the first failure is the result.
 */
export function decodeEntry(bytes: Uint8Array): DecodedEntry {
  if (!(bytes instanceof Uint8Array)) throw new LedgerError("INVALID_ARGUMENT", "entry must be bytes");
  if (bytes.length > MAX_ENTRY_BYTES) {
    return refuse(reject("TOO_LARGE", `entry is ${bytes.length} bytes; the limit is ${MAX_ENTRY_BYTES}`));
  }
  // Nearly every entry is canonical: proving that with the engine's JSON.parse and JSON.stringify costs a
  // fraction of the strict parser and serialiser, which run only when it fails, to find out why.
  let value: unknown = canonicalValue(bytes);
  if (value === undefined) {
    try {
      value = parseJson(bytes, ENTRY_JSON_LIMITS);
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      return refuse(reject("MALFORMED", err.message));
    }
    let canonical: Uint8Array;
    try {
      canonical = canonicalBytes(value, ENTRY_JSON_LIMITS);
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      return refuse(reject("MALFORMED", err.message));
    }
    if (!bytesEqual(canonical, bytes)) {
      return refuse(reject("NOT_CANONICAL", "entry bytes are not the RFC 8785 canonical form"));
    }
  }
  let entry: Entry;
  // Records are most of a ledger: a direct check of their schema, with zod for anything it does not pass.
  if (quickRecordCheck(value)) {
    entry = value as Entry;
  } else {
    const parsed = EntrySchema.safeParse(value);
    if (!parsed.success) return refuse(reject("SCHEMA", schemaDetail(parsed.error.issues)));
    entry = parsed.data;
  }
  if (!strictlyAscending(entry.sigs.map(sigOrderKey))) {
    return refuse(reject("NOT_CANONICAL", "signatures must be sorted by (role, key) without duplicates"));
  }
  return { ok: true, entry };
}

function refuse(r: Rejection): DecodedEntry {
  return { ...r, ok: false };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The JSON value of bytes that are canonical JSON within the entry limits (parseCanonical), or undefined. */
function canonicalValue(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  return parseCanonical(text, ENTRY_JSON_LIMITS);
}

/** Parse entry bytes strictly (see decodeEntry); throws TOO_LARGE or ENTRY_INVALID naming the reason. */
export function parseEntry(bytes: Uint8Array): Entry {
  const decoded = decodeEntry(bytes);
  if (decoded.ok) return decoded.entry;
  throw new LedgerError(
    decoded.reason === "TOO_LARGE" ? "TOO_LARGE" : "ENTRY_INVALID",
    `${decoded.reason}: ${decoded.detail}`,
  );
}

/** Check a whole entry against its schema and signature order; ENTRY_INVALID otherwise. */
function checkEntry<E extends Entry>(entry: E): E {
  const parsed = EntrySchema.safeParse(entry);
  if (!parsed.success) throw new LedgerError("ENTRY_INVALID", schemaDetail(parsed.error.issues));
  if (!strictlyAscending(parsed.data.sigs.map(sigOrderKey))) {
    throw new LedgerError("ENTRY_INVALID", "signatures must be sorted by (role, key) without duplicates");
  }
  return parsed.data as E;
}

/** A new unsigned entry of a kind; ENTRY_INVALID when the body does not match the kind's schema. */
export function buildEntry<K extends EntryKind>(kind: K, body: BodyOf<K>): EntryOf<K> {
  const schema = BODY_SCHEMAS[kind] as (typeof BODY_SCHEMAS)[EntryKind] | undefined;
  if (schema === undefined) throw new LedgerError("ENTRY_INVALID", "unknown entry kind");
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new LedgerError("ENTRY_INVALID", schemaDetail(parsed.error.issues));
  return { v: ENTRY_VERSION, kind, body: parsed.data, sigs: [] } as unknown as EntryOf<K>;
}

/** The signed part of an entry: JCS of `{ v, kind, body }`. */
export function signedContent(entry: Entry): Uint8Array {
  return canonicalBytes({ v: entry.v, kind: entry.kind, body: entry.body }, ENTRY_JSON_LIMITS);
}

/**
 * signedContent(entry) for the entry that `bytes` decodes to (decodeEntry), cut out of the bytes instead of
 * serialised again. JCS orders an entry's members body, kind, sigs, v (RFC 8785 section 3.2.3), so its
 * canonical bytes are the signed content with `,"sigs":<JCS of sigs>` inserted before `,"v":1}`; the cut
 * checks that tail and falls back to serialising when the bytes do not end with it.
 */
export function signedContentOf(bytes: Uint8Array, entry: Entry): Uint8Array {
  const end = `,"v":${entry.v}}`;
  // A signature's members in JCS order (key, role, sig); its roles, hex keys and base64 signatures are
  // ASCII that JSON writes as is, one byte per UTF-16 unit. Were that ever not so, the tail would not match
  // the bytes, and the content would be serialised instead.
  let tail = `,"sigs":[`;
  for (const [i, sig] of entry.sigs.entries()) {
    tail += `${i === 0 ? "" : ","}{"key":"${sig.key}","role":"${sig.role}","sig":"${sig.sig}"}`;
  }
  tail += `]${end}`;
  const cut = bytes.length - tail.length;
  if (cut <= 0) return signedContent(entry);
  for (let i = 0; i < tail.length; i++) {
    if (bytes[cut + i] !== tail.charCodeAt(i)) return signedContent(entry);
  }
  const content = new Uint8Array(cut + end.length);
  content.set(bytes.subarray(0, cut));
  for (let i = 0; i < end.length; i++) content[cut + i] = end.charCodeAt(i);
  return content;
}

/** The exact message a signature in `role` covers: prefix, role, newline, then signedContent. */
export function signingMessage(
  entry: Entry,
  role: SignatureRole,
  content = signedContent(entry),
): Uint8Array {
  return concatBytes(utf8(`${ENTRY_SIGNING_PREFIX}${role}\n`), content);
}

/**
 * Add (or replace) the signature of the holder of an Ed25519 secret key in a role; returns a new entry with
 * its signatures in canonical order.
 */
export async function signEntry<E extends Entry>(
  crypto: CryptoSuite,
  entry: E,
  role: SignatureRole,
  secretKey: Uint8Array,
): Promise<E> {
  const checked = checkEntry(entry);
  const key = toHex(await crypto.ed25519PublicKey(secretKey));
  const sig = toBase64(await crypto.ed25519Sign(secretKey, signingMessage(checked, role)));
  const sigs = [...checked.sigs.filter((s) => s.role !== role || s.key !== key), { role, key, sig }];
  sigs.sort((a, b) => (sigOrderKey(a) < sigOrderKey(b) ? -1 : 1));
  return checkEntry({ ...checked, sigs });
}

/** Bound on the decoded signer keys kept for reuse (a region has far fewer signers than this). */
const MAX_DECODED_KEYS = 4096;
const decodedKeys = new Map<string, Uint8Array>();

/**
 * The bytes of a hex public key, as the same array for the same key: the crypto suite caches its parsed
 * key objects by array identity (src/core/crypto/key-cache.ts), so a fresh array per signature would
 * import the key again every time. Bounded; nothing writes to the arrays handed out.
 */
function signerKeyBytes(hex: string): Uint8Array {
  let key = decodedKeys.get(hex);
  if (key === undefined) {
    key = fromHex(hex);
    if (decodedKeys.size >= MAX_DECODED_KEYS) decodedKeys.clear();
    decodedKeys.set(hex, key);
  }
  return key;
}

/** Verify one signature of an entry (false for any malformed key or signature, never a throw). */
export async function verifySignature(
  crypto: CryptoSuite,
  entry: Entry,
  sig: EntrySignature,
  content = signedContent(entry),
): Promise<boolean> {
  let key: Uint8Array;
  let signature: Uint8Array;
  try {
    key = signerKeyBytes(sig.key);
    signature = fromBase64(sig.sig);
  } catch {
    return false;
  }
  return crypto.ed25519Verify(key, signingMessage(entry, sig.role, content), signature);
}

/** The canonical bytes of an entry (the Merkle leaf); ENTRY_INVALID when it breaks its schema. */
export function encodeEntry(entry: Entry): Uint8Array {
  const bytes = canonicalBytes(checkEntry(entry), ENTRY_JSON_LIMITS);
  if (bytes.length > MAX_ENTRY_BYTES) throw new LedgerError("TOO_LARGE", "entry exceeds 1 MiB");
  return bytes;
}

/** The entry id: lower-case hex SHA-256 of the entry's canonical bytes. */
export function entryId(crypto: CryptoSuite, bytes: Uint8Array): string {
  return toHex(crypto.sha256(bytes));
}

/** A fresh random pseudonymous id (patient, record): `bytes` random bytes in hex, never derived from data. */
export function newRandomId(crypto: CryptoSuite, bytes = 16): string {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 32) {
    throw new LedgerError("INVALID_ARGUMENT", "a random id has 16 to 32 bytes");
  }
  return toHex(crypto.randomBytes(bytes));
}

/** The recipient name of an org's key envelope. */
export function orgRecipient(orgId: string): string {
  return `org:${orgId}`;
}

/** The recipient name of a patient's key envelope. */
export function patientRecipient(patientId: string): string {
  return `patient:${patientId}`;
}

/**
 * A blinded identifier (DESIGN.md section 6): HMAC-SHA256 under the org's secret blinding key of
 * `"medledger/identifier/v1\n" || system || "\n" || value`, in hex. Only the org can compute it, so
 * nobody can test guessed MRNs against the ledger.
 */
export async function blindIdentifier(
  crypto: CryptoSuite,
  orgKey: Uint8Array,
  system: string,
  value: string,
): Promise<string> {
  if (!(orgKey instanceof Uint8Array) || orgKey.length < 32) {
    throw new LedgerError("KEY_INVALID", "the blinding key must be at least 32 bytes");
  }
  if (system.includes("\n") || value.includes("\n") || system.length > 1024 || value.length > 1024) {
    throw new LedgerError("INVALID_ARGUMENT", "identifier system and value: up to 1024 chars, no newline");
  }
  return toHex(await crypto.hmacSha256(orgKey, utf8(`${IDENTIFIER_BLINDING_PREFIX}${system}\n${value}`)));
}
