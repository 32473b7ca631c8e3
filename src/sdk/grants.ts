/**
 * Grant scopes (docs/records.md section 4; DESIGN.md section 4, "Grants"): which records a grant covers,
 * kept encrypted in the grant entry because categories are health information (a grant naming HIV says
 * much). The scope is the RFC 8785 JSON of { v, categories, restricted, from, to, purpose, salt }, sealed
 * with AES-256-GCM under a fresh scope key bound to the patient and the grantee, the key wrapped with HPKE
 * for the patient, the grantee and the scope readers (active author orgs, so they can wrap new records in
 * scope). scopeHash = SHA-256(scope JSON) is a hiding commitment thanks to the 256-bit salt.
 */
import { z } from "zod";
import { LedgerError } from "../core/errors.ts";
import { bytesEqual, concatBytes, fromBase64, toBase64, toHex, utf8 } from "../core/encoding/bytes.ts";
import { canonicalBytes, parseJson } from "../core/encoding/jcs.ts";
import type { CryptoSuite, KeyPair } from "../core/crypto/suite.ts";
import { DATA_KEY_LENGTH } from "../core/crypto/envelope.ts";
import { MAX_SCOPE_BYTES, MonthSchema, strictlyAscending } from "../core/ledger/schema.ts";
import {
  RECORD_TYPES,
  RESTRICTED_CATEGORIES,
  monthOf,
  unwrapKey,
  wrapKeyFor,
  type EnvelopeRef,
  type RecordType,
  type RestrictedCategory,
  type Sensitivity,
} from "./records.ts";

/** Why a grant is made. */
export const PURPOSES = ["treatment", "second-opinion", "emergency-planning", "research", "other"] as const;
/** A grant purpose. */
export type Purpose = (typeof PURPOSES)[number];

/** Scope format version. */
export const GRANT_SCOPE_VERSION = 1;
/** Domain-separation prefix of a scope's associated data. */
export const GRANT_SCOPE_AAD_PREFIX = "medledger/grant-scope/v1\n";
const NONCE_BYTES = 12;

/** A grant's scope, in clear (docs/records.md section 4). */
export const GrantScopeSchema = z
  .strictObject({
    v: z.literal(GRANT_SCOPE_VERSION),
    categories: z
      .array(z.enum(RECORD_TYPES))
      .min(1)
      .max(RECORD_TYPES.length)
      .refine(strictlyAscending, "categories must be sorted and unique"),
    restricted: z
      .array(z.enum(RESTRICTED_CATEGORIES))
      .max(RESTRICTED_CATEGORIES.length)
      .refine(strictlyAscending, "restricted categories must be sorted and unique"),
    from: MonthSchema.nullable(),
    to: MonthSchema.nullable(),
    purpose: z.enum(PURPOSES),
    salt: z.string().regex(/^[0-9a-f]{64}$/, "must be 32 bytes in lower-case hex"),
  })
  .refine((s) => s.from === null || s.to === null || s.from <= s.to, "from must not be after to");
/** A grant's scope. */
export type GrantScope = z.infer<typeof GrantScopeSchema>;

/** What the patient chooses when granting. */
export interface ScopeInput {
  readonly categories: readonly RecordType[];
  readonly restricted?: readonly RestrictedCategory[];
  /** First clinical month covered (YYYY-MM; a day's month is taken), or null for no lower bound. */
  readonly from?: string | null;
  /** Last clinical month covered, or null for no upper bound. */
  readonly to?: string | null;
  readonly purpose: Purpose;
}

/** A scope from the patient's choices, sorted and salted; INVALID_ARGUMENT when a choice is not allowed. */
export function newScope(crypto: CryptoSuite, input: ScopeInput): GrantScope {
  const month = (value: string | null | undefined): string | null => {
    if (value === undefined || value === null) return null;
    return value.length === 10 ? monthOf(value) : value;
  };
  if ((input.restricted as readonly string[] | undefined)?.includes("psychotherapy-note") === true) {
    throw new LedgerError("INVALID_ARGUMENT", "a grant can never cover psychotherapy notes");
  }
  const parsed = GrantScopeSchema.safeParse({
    v: GRANT_SCOPE_VERSION,
    categories: [...new Set(input.categories)].sort(),
    restricted: [...new Set(input.restricted ?? [])].sort(),
    from: month(input.from),
    to: month(input.to),
    purpose: input.purpose,
    salt: toHex(crypto.randomBytes(32)),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `grant scope: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`,
    );
  }
  return parsed.data;
}

/** The record facts a scope decision needs (from the decrypted payload and the entry). */
export interface ScopedRecord {
  readonly type: RecordType;
  readonly sensitivity: Sensitivity;
  /** Clinical month, YYYY-MM. */
  readonly month: string;
}

/**
 * True when a scope covers a record: its type is among the categories, its sensitivity is normal or named
 * in `restricted`, it is not a psychotherapy note (never), and its month is within from..to (inclusive).
 */
export function scopeCovers(scope: GrantScope, record: ScopedRecord): boolean {
  if (record.sensitivity === "psychotherapy-note") return false;
  if (!(scope.categories as readonly string[]).includes(record.type)) return false;
  if (
    record.sensitivity !== "normal" &&
    !(scope.restricted as readonly string[]).includes(record.sensitivity)
  ) {
    return false;
  }
  if (scope.from !== null && record.month < scope.from) return false;
  if (scope.to !== null && record.month > scope.to) return false;
  return true;
}

/** A grant's clear state, as the ledger knows it. */
export interface GrantStatus {
  readonly revoked: boolean;
  /** Last day in force, YYYY-MM-DD (UTC). */
  readonly expires: string;
  /** Whether the grantee org is still admitted and not retired. */
  readonly granteeActive: boolean;
}

/** True when a grant is in force on a day (UTC, YYYY-MM-DD): not revoked, not expired, grantee active. */
export function grantInForce(grant: GrantStatus, today: string): boolean {
  return !grant.revoked && today <= grant.expires && grant.granteeActive;
}

/** `"medledger/grant-scope/v1\n" || patient || "\n" || grantee`: what a scope is bound to. */
export function scopeAad(patient: string, grantee: string): Uint8Array {
  return utf8(`${GRANT_SCOPE_AAD_PREFIX}${patient}\n${grantee}`);
}

/** An encrypted scope as a grant entry carries it. */
export interface SealedScope {
  readonly scopeHash: string;
  readonly scope: { readonly ct: string; readonly envelopes: EnvelopeRef[] };
}

/**
 * Encrypt a scope for its readers (the patient and the grantee, plus any scope readers), each `to` a
 * recipient name with its X25519 public key.
 */
export async function sealScope(
  crypto: CryptoSuite,
  patient: string,
  grantee: string,
  scope: GrantScope,
  readers: readonly { readonly to: string; readonly publicKey: Uint8Array }[],
): Promise<SealedScope> {
  const json = canonicalBytes(scope);
  const key = crypto.randomBytes(DATA_KEY_LENGTH);
  try {
    const aad = scopeAad(patient, grantee);
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const ct = concatBytes(nonce, await crypto.aeadSeal("AES-256-GCM", key, nonce, aad, json));
    if (ct.length > MAX_SCOPE_BYTES) throw new LedgerError("TOO_LARGE", "the grant scope is too large");
    const envelopes = await wrapKeyFor(crypto, readers, key, aad);
    return { scopeHash: toHex(crypto.sha256(json)), scope: { ct: toBase64(ct), envelopes } };
  } finally {
    key.fill(0);
  }
}

/** A grant entry's body fields a reader needs to open its scope. */
export interface GrantBodyLike {
  readonly patient: string;
  readonly grantee: string;
  readonly scopeHash: string;
  readonly scope: { readonly ct: string; readonly envelopes: readonly EnvelopeRef[] };
}

/**
 * Open a grant's scope as reader `to` (its recipient name) with its X25519 key pair. NOT_PERMITTED when the
 * grant has no envelope for the reader; DECRYPTION_FAILED when it does not open or does not match its hash.
 */
export async function openScope(
  crypto: CryptoSuite,
  to: string,
  keyPair: KeyPair,
  grant: GrantBodyLike,
): Promise<GrantScope> {
  const envelope = grant.scope.envelopes.find((e) => e.to === to);
  if (envelope === undefined)
    throw new LedgerError("NOT_PERMITTED", `the grant's scope is not wrapped for ${to}`);
  const aad = scopeAad(grant.patient, grant.grantee);
  const key = await unwrapKey(crypto, to, keyPair, envelope.env, aad);
  let json: Uint8Array;
  try {
    const ct = fromBase64(grant.scope.ct);
    if (ct.length < NONCE_BYTES + 16) throw new LedgerError("DECRYPTION_FAILED", "the scope is too short");
    json = await crypto.aeadOpen(
      "AES-256-GCM",
      key,
      ct.subarray(0, NONCE_BYTES),
      aad,
      ct.subarray(NONCE_BYTES),
    );
  } finally {
    key.fill(0);
  }
  if (!bytesEqual(utf8(grant.scopeHash), utf8(toHex(crypto.sha256(json))))) {
    throw new LedgerError("DECRYPTION_FAILED", "the grant's scope does not match its scopeHash");
  }
  let value: unknown;
  try {
    value = parseJson(json, { maxDepth: 4, maxBytes: MAX_SCOPE_BYTES });
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", "the grant's scope is not strict JSON", { cause });
  }
  const parsed = GrantScopeSchema.safeParse(value);
  if (!parsed.success) throw new LedgerError("MALFORMED_INPUT", "the grant's scope is malformed");
  return parsed.data;
}
