/**
 * The entry schemas (DESIGN.md section 2): the closed, versioned set of entry kinds, each a strict zod
 * schema with a bound on every size. An entry is `{ v, kind, body, sigs }`; nothing else is accepted, and
 * no schema has room for a name, a date of birth, a code or free text (DESIGN.md section 2, "No plaintext
 * health information"). docs/entries.md describes every field and what it reveals.
 */
import { z } from "zod";
import { fromBase64 } from "../encoding/bytes.ts";
import { decodeEnvelope } from "../crypto/envelope.ts";

/** The entry format version this code reads and writes. */
export const ENTRY_VERSION = 1;
/** Largest encoded entry, in bytes. */
export const MAX_ENTRY_BYTES = 1024 * 1024;
/** Largest consortium (n of k-of-n), which also bounds the signatures on one entry. */
export const MAX_CONSORTIUM_KEYS = 32;
/** Most signatures on one entry. */
export const MAX_SIGNATURES = MAX_CONSORTIUM_KEYS;
/** Most orgs a genesis may declare. */
export const MAX_GENESIS_ORGS = 64;
/** Most key envelopes on one record entry or grant scope. */
export const MAX_ENVELOPES = 64;
/** Most ciphertext blobs (image chunks, DICOM files) on one record entry. */
export const MAX_BLOBS = 1024;
/** Most record keys in one key share, and most records named by one access event. */
export const MAX_RECORDS_PER_ENTRY = 256;
/** Largest ciphertext object (payload or blob) a record may reference: 1 TiB. */
export const MAX_OBJECT_SIZE = 2 ** 40;
/** Largest encrypted grant scope, in bytes (nonce, ciphertext and tag). */
export const MAX_SCOPE_BYTES = 4096;
/** Smallest encrypted grant scope: a 12-byte nonce and a 16-byte tag. */
export const MIN_SCOPE_BYTES = 28;
/** Longest encoded key envelope accepted (room for later, larger envelope versions). */
export const MAX_ENVELOPE_BYTES = 1536;

/** The closed set of entry kinds, version 1. */
export const ENTRY_KINDS = [
  "genesis",
  "org.admit",
  "org.retire",
  "patient.enroll",
  "identifier.link",
  "identifier.unlink",
  "record.append",
  "record.amend",
  "record.erase",
  "grant",
  "grant.revoke",
  "key.share",
  "access.event",
  "emergency.access",
] as const;
/** One entry kind. */
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** The roles an org holds in the consortium. */
export const ORG_ROLES = ["author", "validator"] as const;
/** An org role. */
export type OrgRole = (typeof ORG_ROLES)[number];

/** The roles a signature is made in; each is part of the signed message (domain separation). */
export const SIGNATURE_ROLES = ["author", "consortium", "org", "patient", "validator"] as const;
/** A signature role. */
export type SignatureRole = (typeof SIGNATURE_ROLES)[number];

/** The closed set of break-glass reason codes. */
export const EMERGENCY_REASONS = [
  "life-threatening",
  "patient-unconscious",
  "patient-incapacitated",
  "legal-obligation",
] as const;

// Every pattern is anchored and linear: no backtracking on hostile input, and lower-case hex only, so a
// value has exactly one spelling.
const HEX32 = /^[0-9a-f]{64}$/;
const RANDOM_ID = /^(?:[0-9a-f]{2}){16,32}$/;
const ORG_ID = /^[a-z][a-z0-9-]{0,63}$/;
const MONTH = /^(?:19|2[0-9])[0-9]{2}-(?:0[1-9]|1[0-2])$/;
const DAY = /^(?:19|2[0-9])[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$/;
// C2SP tlog-checkpoint origin: printable ASCII, no space, no plus.
const ORIGIN = /^[\x21-\x2a\x2c-\x7e]{1,255}$/;
const RECIPIENT = /^(?:org:[a-z][a-z0-9-]{0,63}|patient:(?:[0-9a-f]{2}){16,32})$/;

function decodes(text: string, length?: number): boolean {
  try {
    const bytes = fromBase64(text);
    return length === undefined || bytes.length === length;
  } catch {
    return false;
  }
}

function envelopeDecodes(text: string): boolean {
  try {
    decodeEnvelope(fromBase64(text));
    return true;
  } catch {
    return false;
  }
}

/** True when the strings are in strictly ascending UTF-16 order (sorted, no duplicates). */
export function strictlyAscending(values: readonly string[]): boolean {
  for (let i = 1; i < values.length; i++) if (!(values[i - 1]! < values[i]!)) return false;
  return true;
}

function validDay(day: string): boolean {
  const [y, m, d] = day.split("-").map(Number) as [number, number, number];
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

/** A SHA-256 hash or entry id: 64 lower-case hex digits. */
export const HashSchema = z.string().regex(HEX32, "must be 64 lower-case hex digits");
/** A 32-byte public key (Ed25519 or X25519) in lower-case hex. */
export const PublicKeySchema = z.string().regex(HEX32, "must be a 32-byte key in lower-case hex");
/** A random pseudonymous id (patient, record): 16 to 32 random bytes in lower-case hex. */
export const RandomIdSchema = z.string().regex(RANDOM_ID, "must be 16 to 32 bytes in lower-case hex");
/** An org id: a lower-case slug of 1 to 64 characters starting with a letter. */
export const OrgIdSchema = z.string().regex(ORG_ID, "must be a lower-case slug of 1 to 64 characters");
/** A coarse clinical time: a month, YYYY-MM. */
export const MonthSchema = z.string().regex(MONTH, "must be a month YYYY-MM");
/** A calendar day, YYYY-MM-DD (UTC). */
export const DaySchema = z
  .string()
  .regex(DAY, "must be a day YYYY-MM-DD")
  .refine(validDay, "must be a calendar day");
/** A key envelope: the binary form of src/core/crypto/envelope.ts in strict base64. */
export const EnvelopeB64Schema = z
  .string()
  .max(Math.ceil(MAX_ENVELOPE_BYTES / 3) * 4)
  .refine(envelopeDecodes, "must be a key envelope in strict base64");
/** Who a key envelope is for: `org:<org id>` or `patient:<patient id>`. */
export const RecipientSchema = z.string().regex(RECIPIENT, "must be org:<id> or patient:<id>");

const SizedObject = z.strictObject({
  hash: HashSchema,
  size: z.number().int().min(0).max(MAX_OBJECT_SIZE),
});

const Envelopes = z
  .array(z.strictObject({ to: RecipientSchema, env: EnvelopeB64Schema }))
  .min(1)
  .max(MAX_ENVELOPES)
  .refine((list) => strictlyAscending(list.map((e) => e.to)), "envelopes must be sorted by `to`, unique");

const OrgDeclaration = z.strictObject({
  id: OrgIdSchema,
  roles: z
    .array(z.enum(ORG_ROLES))
    .min(1)
    .max(ORG_ROLES.length)
    .refine(strictlyAscending, "roles must be sorted and unique"),
  signKey: PublicKeySchema,
  encKey: PublicKeySchema,
});

const Consortium = z
  .strictObject({
    threshold: z.number().int().min(1).max(MAX_CONSORTIUM_KEYS),
    keys: z
      .array(PublicKeySchema)
      .min(1)
      .max(MAX_CONSORTIUM_KEYS)
      .refine(strictlyAscending, "consortium keys must be sorted and unique"),
  })
  .refine((c) => c.threshold <= c.keys.length, "threshold must not exceed the number of keys");

const patientHeader = { patient: RandomIdSchema, prev: HashSchema };

const recordFields = {
  ...patientHeader,
  record: RandomIdSchema,
  author: OrgIdSchema,
  validator: OrgIdSchema,
  withheldFromPatient: z.boolean(),
  month: MonthSchema,
  ciphertext: SizedObject,
  blobs: z
    .array(SizedObject)
    .max(MAX_BLOBS)
    .refine((list) => strictlyAscending(list.map((b) => b.hash)), "blobs must be sorted by hash, unique"),
  envelopes: Envelopes,
};

const Basis = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("care") }),
  z.strictObject({ type: z.literal("grant"), grant: HashSchema }),
  z.strictObject({ type: z.literal("emergency"), emergency: HashSchema }),
]);

/** The body schema of every kind. */
export const BODY_SCHEMAS = {
  genesis: z.strictObject({
    origin: z.string().regex(ORIGIN, "must be a C2SP log origin"),
    consortium: Consortium,
    orgs: z
      .array(OrgDeclaration)
      .min(1)
      .max(MAX_GENESIS_ORGS)
      .refine((list) => strictlyAscending(list.map((o) => o.id)), "orgs must be sorted by id, unique"),
  }),
  "org.admit": z.strictObject({ org: OrgDeclaration }),
  "org.retire": z.strictObject({ org: OrgIdSchema }),
  "patient.enroll": z.strictObject({
    patient: RandomIdSchema,
    prev: z.null(),
    org: OrgIdSchema,
    signKey: PublicKeySchema,
    encKey: PublicKeySchema,
  }),
  "identifier.link": z.strictObject({ ...patientHeader, org: OrgIdSchema, blinded: HashSchema }),
  "identifier.unlink": z.strictObject({ ...patientHeader, org: OrgIdSchema, blinded: HashSchema }),
  "record.append": z.strictObject(recordFields),
  "record.amend": z.strictObject({ ...recordFields, supersedes: RandomIdSchema }),
  "record.erase": z.strictObject({
    ...patientHeader,
    record: RandomIdSchema,
    by: z.enum(["author", "patient"]),
  }),
  grant: z.strictObject({
    ...patientHeader,
    grantee: OrgIdSchema,
    expires: DaySchema,
    scopeHash: HashSchema,
    scope: z.strictObject({
      ct: z
        .string()
        .max(Math.ceil(MAX_SCOPE_BYTES / 3) * 4)
        .refine(
          (s) => decodes(s) && fromBase64(s).length >= MIN_SCOPE_BYTES,
          `must be ${MIN_SCOPE_BYTES} to ${MAX_SCOPE_BYTES} bytes in strict base64`,
        ),
      envelopes: Envelopes,
    }),
  }),
  "grant.revoke": z.strictObject({ ...patientHeader, grant: HashSchema }),
  "key.share": z.strictObject({
    ...patientHeader,
    grant: HashSchema,
    keys: z
      .array(z.strictObject({ record: RandomIdSchema, env: EnvelopeB64Schema }))
      .min(1)
      .max(MAX_RECORDS_PER_ENTRY)
      .refine((list) => strictlyAscending(list.map((k) => k.record)), "keys must be sorted by record"),
  }),
  "access.event": z.strictObject({
    ...patientHeader,
    org: OrgIdSchema,
    records: z
      .array(RandomIdSchema)
      .min(1)
      .max(MAX_RECORDS_PER_ENTRY)
      .refine(strictlyAscending, "records must be sorted and unique"),
    basis: Basis,
  }),
  "emergency.access": z.strictObject({
    ...patientHeader,
    org: OrgIdSchema,
    reason: z.enum(EMERGENCY_REASONS),
  }),
} as const satisfies Record<EntryKind, z.ZodType>;

/** The body of an entry of kind K. */
export type BodyOf<K extends EntryKind> = z.infer<(typeof BODY_SCHEMAS)[K]>;

/** One signature: the role it was made in, the signer's Ed25519 public key (hex) and the signature. */
export const SignatureSchema = z.strictObject({
  role: z.enum(SIGNATURE_ROLES),
  key: PublicKeySchema,
  sig: z
    .string()
    .length(88)
    .refine((s) => decodes(s, 64), "must be a 64-byte signature in strict base64"),
});
/** One signature on an entry. */
export type EntrySignature = z.infer<typeof SignatureSchema>;

const Signatures = z.array(SignatureSchema).max(MAX_SIGNATURES);

function entrySchema<K extends EntryKind>(kind: K) {
  return z.strictObject({
    v: z.literal(ENTRY_VERSION),
    kind: z.literal(kind),
    body: BODY_SCHEMAS[kind],
    sigs: Signatures,
  });
}

/** The whole entry, discriminated by kind. An entry read from outside must also have at least one sig. */
export const EntrySchema = z.discriminatedUnion("kind", [
  entrySchema("genesis"),
  entrySchema("org.admit"),
  entrySchema("org.retire"),
  entrySchema("patient.enroll"),
  entrySchema("identifier.link"),
  entrySchema("identifier.unlink"),
  entrySchema("record.append"),
  entrySchema("record.amend"),
  entrySchema("record.erase"),
  entrySchema("grant"),
  entrySchema("grant.revoke"),
  entrySchema("key.share"),
  entrySchema("access.event"),
  entrySchema("emergency.access"),
]);

/** A typed entry (any kind). */
export type Entry = z.infer<typeof EntrySchema>;
/** A typed entry of kind K. */
export type EntryOf<K extends EntryKind> = Extract<Entry, { kind: K }>;

/** Members of the entry and of a record body, for quickRecordCheck. */
const ENTRY_MEMBERS = ["v", "kind", "body", "sigs"] as const;
const SIGNATURE_MEMBERS = ["role", "key", "sig"] as const;
const SIZED_MEMBERS = ["hash", "size"] as const;
const ENVELOPE_MEMBERS = ["to", "env"] as const;
const RECORD_MEMBERS = Object.keys(recordFields);
const AMEND_MEMBERS = [...RECORD_MEMBERS, "supersedes"];
const SIGNATURE_ROLE_SET: ReadonlySet<unknown> = new Set(SIGNATURE_ROLES);
const MAX_ENVELOPE_TEXT = Math.ceil(MAX_ENVELOPE_BYTES / 3) * 4;

/** A plain object (as the schemas see one) with exactly these members, none missing, none extra. */
function exactly(value: unknown, members: readonly string[]): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  let count = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key) || !members.includes(key)) return false;
    count++;
  }
  return count === members.length;
}

function matches(value: unknown, pattern: RegExp): value is string {
  return typeof value === "string" && pattern.test(value);
}

function sizedObject(value: unknown): value is { hash: string } {
  if (!exactly(value, SIZED_MEMBERS) || !matches(value.hash, HEX32)) return false;
  const size = value.size;
  return Number.isSafeInteger(size) && (size as number) >= 0 && (size as number) <= MAX_OBJECT_SIZE;
}

function signature(value: unknown): boolean {
  return (
    exactly(value, SIGNATURE_MEMBERS) &&
    SIGNATURE_ROLE_SET.has(value.role) &&
    matches(value.key, HEX32) &&
    typeof value.sig === "string" &&
    value.sig.length === 88 &&
    decodes(value.sig, 64)
  );
}

/**
 * True only for a record.append or record.amend that EntrySchema accepts: the same members, patterns,
 * bounds and refinements (the same helpers), checked without zod's bookkeeping, which costs more than
 * the checks on the hot path of a node. It answers false for every other kind and for anything it is not
 * sure of; decodeEntry then asks EntrySchema, which also says why. The schemas transform nothing, so an
 * entry this accepts is, value for value, the one EntrySchema would return. A differential test holds it
 * to never accepting what EntrySchema refuses (test/unit/ledger-precheck.test.ts).
 */
export function quickRecordCheck(value: unknown): boolean {
  if (!exactly(value, ENTRY_MEMBERS) || value.v !== ENTRY_VERSION) return false;
  const amend = value.kind === "record.amend";
  if (!amend && value.kind !== "record.append") return false;
  const sigs = value.sigs;
  if (!Array.isArray(sigs) || sigs.length > MAX_SIGNATURES || !sigs.every(signature)) return false;
  const body = value.body;
  if (!exactly(body, amend ? AMEND_MEMBERS : RECORD_MEMBERS)) return false;
  if (amend && !matches(body.supersedes, RANDOM_ID)) return false;
  if (
    !matches(body.patient, RANDOM_ID) ||
    !matches(body.prev, HEX32) ||
    !matches(body.record, RANDOM_ID) ||
    !matches(body.author, ORG_ID) ||
    !matches(body.validator, ORG_ID) ||
    typeof body.withheldFromPatient !== "boolean" ||
    !matches(body.month, MONTH) ||
    !sizedObject(body.ciphertext)
  ) {
    return false;
  }
  const blobs = body.blobs;
  if (!Array.isArray(blobs) || blobs.length > MAX_BLOBS || !blobs.every(sizedObject)) return false;
  if (!strictlyAscending(blobs.map((b: { hash: string }) => b.hash))) return false;
  const envelopes = body.envelopes;
  if (!Array.isArray(envelopes) || envelopes.length < 1 || envelopes.length > MAX_ENVELOPES) return false;
  const to: string[] = [];
  for (const e of envelopes as unknown[]) {
    if (!exactly(e, ENVELOPE_MEMBERS) || !matches(e.to, RECIPIENT)) return false;
    if (typeof e.env !== "string" || e.env.length > MAX_ENVELOPE_TEXT || !envelopeDecodes(e.env))
      return false;
    to.push(e.to);
  }
  return strictlyAscending(to);
}

/**
 * What each kind reveals in clear, as paths into the body (`[]` marks array elements). Tests check that
 * built entries carry no other field; docs/entries.md explains why each one is there.
 */
export const CLEAR_FIELDS: Readonly<Record<EntryKind, readonly string[]>> = {
  genesis: [
    "origin",
    "consortium",
    "consortium.threshold",
    "consortium.keys",
    "consortium.keys[]",
    "orgs",
    "orgs[]",
    "orgs[].id",
    "orgs[].roles",
    "orgs[].roles[]",
    "orgs[].signKey",
    "orgs[].encKey",
  ],
  "org.admit": ["org", "org.id", "org.roles", "org.roles[]", "org.signKey", "org.encKey"],
  "org.retire": ["org"],
  "patient.enroll": ["patient", "prev", "org", "signKey", "encKey"],
  "identifier.link": ["patient", "prev", "org", "blinded"],
  "identifier.unlink": ["patient", "prev", "org", "blinded"],
  "record.append": recordPaths(),
  "record.amend": [...recordPaths(), "supersedes"],
  "record.erase": ["patient", "prev", "record", "by"],
  grant: [
    "patient",
    "prev",
    "grantee",
    "expires",
    "scopeHash",
    "scope",
    "scope.ct",
    ...envelopePaths("scope.envelopes"),
  ],
  "grant.revoke": ["patient", "prev", "grant"],
  "key.share": ["patient", "prev", "grant", "keys", "keys[]", "keys[].record", "keys[].env"],
  "access.event": [
    "patient",
    "prev",
    "org",
    "records",
    "records[]",
    "basis",
    "basis.type",
    "basis.grant",
    "basis.emergency",
  ],
  "emergency.access": ["patient", "prev", "org", "reason"],
};

function envelopePaths(at: string): string[] {
  return [at, `${at}[]`, `${at}[].to`, `${at}[].env`];
}

function recordPaths(): string[] {
  return [
    "patient",
    "prev",
    "record",
    "author",
    "validator",
    "withheldFromPatient",
    "month",
    "ciphertext",
    "ciphertext.hash",
    "ciphertext.size",
    "blobs",
    "blobs[]",
    "blobs[].hash",
    "blobs[].size",
    ...envelopePaths("envelopes"),
  ];
}
