/**
 * Builders for every entry kind a client writes (docs/entries.md section 3), each returning the signed
 * canonical bytes and the entry id. The SDK's workflows, the seeder (src/node/seed.ts) and the tests all
 * build entries here, so there is one way to make each kind. Signing follows docs/entries.md section 2.
 */
import { LedgerError } from "../core/errors.ts";
import { toHex } from "../core/encoding/bytes.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { blindIdentifier, buildEntry, encodeEntry, entryId, signEntry } from "../core/ledger/entry.ts";
import {
  MAX_RECORDS_PER_ENTRY,
  type BodyOf,
  type Entry,
  type EntryOf,
  type OrgRole,
  type SignatureRole,
} from "../core/ledger/schema.ts";
import type { EncryptedRecord, EnvelopeRef } from "./records.ts";
import type { SealedScope } from "./grants.ts";

/** Whoever signs: an Identity, or any holder of an Ed25519 seed. */
export interface EntrySigner {
  readonly signing: { readonly secretKey: Uint8Array };
}

/** A signed entry: its canonical bytes and its id (SHA-256 hex). */
export interface SignedEntry {
  readonly bytes: Uint8Array;
  readonly id: string;
}

/** Sign an entry in each role with each key, in order, and encode it. */
export async function signAs(
  crypto: CryptoSuite,
  entry: Entry,
  signers: readonly (readonly [SignatureRole, EntrySigner])[],
): Promise<SignedEntry> {
  let out = entry;
  for (const [role, signer] of signers) out = await signEntry(crypto, out, role, signer.signing.secretKey);
  const bytes = encodeEntry(out);
  return { bytes, id: entryId(crypto, bytes) };
}

/** The keys of a patient as enrolment names them. */
export interface PatientKeys extends EntrySigner {
  readonly id: string;
  readonly signing: { readonly secretKey: Uint8Array; readonly publicKey: Uint8Array };
  readonly encryption: { readonly publicKey: Uint8Array };
}

/** An org signing as itself. */
export interface OrgSigner extends EntrySigner {
  readonly id: string;
}

/** patient.enroll: the org vouches for the patient, both sign (the patient's signature proves the key). */
export function enrollmentEntry(
  crypto: CryptoSuite,
  org: OrgSigner,
  patient: PatientKeys,
): Promise<SignedEntry> {
  const entry = buildEntry("patient.enroll", {
    patient: patient.id,
    prev: null,
    org: org.id,
    signKey: toHex(patient.signing.publicKey),
    encKey: toHex(patient.encryption.publicKey),
  });
  return signAs(crypto, entry, [
    ["patient", patient],
    ["org", org],
  ]);
}

/**
 * identifier.link or identifier.unlink of one of the org's identifiers (an MRN), blinded with the org's
 * key so that only the org can compute it (DESIGN.md section 6); signed by the org and the patient.
 */
export async function identifierEntry(
  crypto: CryptoSuite,
  kind: "identifier.link" | "identifier.unlink",
  org: OrgSigner & { readonly blindingKey: Uint8Array },
  patient: EntrySigner & { readonly id: string },
  prev: string,
  system: string,
  value: string,
): Promise<SignedEntry> {
  const blinded = await blindIdentifier(crypto, org.blindingKey, system, value);
  const entry = buildEntry(kind, { patient: patient.id, prev, org: org.id, blinded });
  return signAs(crypto, entry, [
    ["org", org],
    ["patient", patient],
  ]);
}

/** What org.admit declares about a new org. */
export interface OrgDeclarationInput {
  readonly orgId: string;
  readonly roles: readonly OrgRole[];
  /** Ed25519 public key, hex. */
  readonly signKey: string;
  /** X25519 public key, hex. */
  readonly encKey: string;
}

/** org.admit, signed by consortium members (at least k of them for the ledger to accept it). */
export function orgAdmitEntry(
  crypto: CryptoSuite,
  input: OrgDeclarationInput,
  consortium: readonly EntrySigner[],
): Promise<SignedEntry> {
  if (consortium.length === 0)
    throw new LedgerError("INVALID_ARGUMENT", "org.admit needs consortium signers");
  const entry = buildEntry("org.admit", {
    org: {
      id: input.orgId,
      roles: [...new Set(input.roles)].sort(),
      signKey: input.signKey,
      encKey: input.encKey,
    },
  });
  return signAs(
    crypto,
    entry,
    consortium.map((s) => ["consortium", s] as const),
  );
}

/** org.retire, signed by consortium members. */
export function orgRetireEntry(
  crypto: CryptoSuite,
  orgId: string,
  consortium: readonly EntrySigner[],
): Promise<SignedEntry> {
  const entry = buildEntry("org.retire", { org: orgId });
  return signAs(
    crypto,
    entry,
    consortium.map((s) => ["consortium", s] as const),
  );
}

/** The clear fields of a record version besides what the encryption gives. */
export interface RecordEntryInput {
  readonly prev: string;
  readonly validator: string;
  readonly withheldFromPatient: boolean;
  readonly envelopes: readonly EnvelopeRef[];
  /** For record.amend: the record id this version replaces. */
  readonly supersedes?: string;
}

/** The unsigned record.append (or record.amend) entry of an encrypted record. */
export function recordEntry(
  encrypted: EncryptedRecord,
  input: RecordEntryInput,
): EntryOf<"record.append"> | EntryOf<"record.amend"> {
  const { header } = encrypted;
  const body: BodyOf<"record.append"> = {
    patient: header.patient,
    prev: input.prev,
    record: header.record,
    author: header.author,
    validator: input.validator,
    withheldFromPatient: input.withheldFromPatient,
    month: header.month,
    ciphertext: { ...encrypted.ciphertextRef },
    blobs: encrypted.blobs.map((b) => ({ ...b })),
    envelopes: input.envelopes.map((e) => ({ ...e })),
  };
  if (input.supersedes !== undefined) {
    return buildEntry("record.amend", { ...body, supersedes: input.supersedes });
  }
  return buildEntry("record.append", body);
}

/** grant: the patient gives an org access under an encrypted scope until `expires` (inclusive). */
export function grantEntry(
  crypto: CryptoSuite,
  patient: EntrySigner & { readonly id: string },
  prev: string,
  grantee: string,
  expires: string,
  sealed: SealedScope,
): Promise<SignedEntry> {
  const entry = buildEntry("grant", {
    patient: patient.id,
    prev,
    grantee,
    expires,
    scopeHash: sealed.scopeHash,
    scope: { ct: sealed.scope.ct, envelopes: sealed.scope.envelopes.map((e) => ({ ...e })) },
  });
  return signAs(crypto, entry, [["patient", patient]]);
}

/** grant.revoke, signed by the patient. */
export function grantRevokeEntry(
  crypto: CryptoSuite,
  patient: EntrySigner & { readonly id: string },
  prev: string,
  grant: string,
): Promise<SignedEntry> {
  return signAs(crypto, buildEntry("grant.revoke", { patient: patient.id, prev, grant }), [
    ["patient", patient],
  ]);
}

/**
 * key.share entries for a grant: the keys (one envelope per record, for the grantee) sorted by record and
 * cut into entries of at most 256, chained from `prev`. Returns them in chain order.
 */
export async function keyShareEntries(
  crypto: CryptoSuite,
  patient: EntrySigner & { readonly id: string },
  prev: string,
  grant: string,
  keys: readonly { readonly record: string; readonly env: string }[],
): Promise<SignedEntry[]> {
  const sorted = [...keys].sort((a, b) => (a.record < b.record ? -1 : a.record > b.record ? 1 : 0));
  const out: SignedEntry[] = [];
  let head = prev;
  for (let i = 0; i < sorted.length; i += MAX_RECORDS_PER_ENTRY) {
    const part = sorted.slice(i, i + MAX_RECORDS_PER_ENTRY).map((k) => ({ record: k.record, env: k.env }));
    const signed = await signAs(
      crypto,
      buildEntry("key.share", { patient: patient.id, prev: head, grant, keys: part }),
      [["patient", patient]],
    );
    out.push(signed);
    head = signed.id;
  }
  return out;
}

/** The basis of an access event (docs/entries.md, access.event). */
export type AccessBasis = BodyOf<"access.event">["basis"];

/** access.event: the org obtained the keys of up to 256 records on a basis; signed by the org. */
export function accessEventEntry(
  crypto: CryptoSuite,
  org: OrgSigner,
  patient: string,
  prev: string,
  records: readonly string[],
  basis: AccessBasis,
): Promise<SignedEntry> {
  const entry = buildEntry("access.event", {
    patient,
    prev,
    org: org.id,
    records: [...new Set(records)].sort(),
    basis,
  });
  return signAs(crypto, entry, [["org", org]]);
}

/** emergency.access: break-glass, with a reason code; signed by the org. */
export function emergencyEntry(
  crypto: CryptoSuite,
  org: OrgSigner,
  patient: string,
  prev: string,
  reason: BodyOf<"emergency.access">["reason"],
): Promise<SignedEntry> {
  return signAs(crypto, buildEntry("emergency.access", { patient, prev, org: org.id, reason }), [
    ["org", org],
  ]);
}
