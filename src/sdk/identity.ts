/**
 * Identities (DESIGN.md section 1): the keys of a patient, an org or a consortium member, kept in a
 * passphrase-protected key file (src/core/crypto/keyfile.ts) on the actor's own device and unlocked into an
 * Identity for the client.
 *
 * Who a key file belongs to is in its (authenticated) label: files the SDK writes label themselves with the
 * actor's keyid (`patient:<id>`, `org:<id>`). Files written by `medledger node init` carry the bare org id
 * (`hospital`) or `consortium-<n>` for the consortium key, and are read the same way (docs/sdk.md).
 */
import { LedgerError } from "../core/errors.ts";
import { toHex, utf8 } from "../core/encoding/bytes.ts";
import {
  createKeyFile,
  encodeKeyFile,
  generateKeyFileKeys,
  unlockKeyFile,
  type KeyFileContents,
} from "../core/crypto/keyfile.ts";
import type { CryptoSuite, KeyPair, ScryptParams } from "../core/crypto/suite.ts";
import { newRandomId, orgRecipient, patientRecipient } from "../core/ledger/entry.ts";
import { OrgIdSchema, RandomIdSchema } from "../core/ledger/schema.ts";

/** HKDF info of an org's identifier blinding key (docs/sdk.md, "Identities"). */
export const BLINDING_KEY_INFO = "medledger/identifier-blinding/v1";

/** What kind of actor an identity is. */
export type IdentityKind = "org" | "patient" | "consortium";

/** An unlocked actor: its keys and who it is. */
export interface Identity {
  /** The RFC 9421 keyid of its requests: `org:<id>`, `patient:<id>` or `consortium:<signKey hex>`. */
  readonly keyid: string;
  readonly kind: IdentityKind;
  /** The org id, the patient id, or the consortium key in hex. */
  readonly id: string;
  /** Ed25519 (RFC 8032); the secret key is the 32-byte seed. */
  readonly signing: KeyPair;
  /** X25519 (RFC 7748); unused for the consortium. */
  readonly encryption: KeyPair;
  /** Orgs only: the HMAC key that blinds the org's identifiers (deriveBlindingKey). */
  readonly blindingKey?: Uint8Array;
}

/** Options shared by the key-file creators. */
export interface KeyFileCreateOptions {
  readonly passphrase: string;
  /** scrypt cost (default N = 2^17, r = 8, p = 1; docs/crypto.md). */
  readonly kdf?: ScryptParams;
  /** Must be true for a cost below the default: tests only. */
  readonly allowWeakKdf?: boolean;
}

/**
 * An org's identifier blinding key (DESIGN.md section 6): HKDF-SHA256 (RFC 5869) with a zero salt over the
 * org's Ed25519 seed, info "medledger/identifier-blinding/v1", 32 bytes. Derived rather than stored so the
 * key file stays the org's one secret; only the org can compute it, so only the org can test an MRN.
 */
export async function deriveBlindingKey(
  crypto: CryptoSuite,
  signingSecretKey: Uint8Array,
): Promise<Uint8Array> {
  if (!(signingSecretKey instanceof Uint8Array) || signingSecretKey.length !== 32) {
    throw new LedgerError("KEY_INVALID", "the signing secret key must be 32 bytes");
  }
  const prk = await crypto.hkdfExtract(new Uint8Array(32), signingSecretKey);
  try {
    return await crypto.hkdfExpand(prk, utf8(BLINDING_KEY_INFO), 32);
  } finally {
    prk.fill(0);
  }
}

/** An Identity from raw keys (for key files, tests and the seeder); orgs get their blinding key. */
export async function identityFromKeys(
  crypto: CryptoSuite,
  kind: IdentityKind,
  id: string,
  signing: KeyPair,
  encryption: KeyPair,
): Promise<Identity> {
  if (kind === "org") {
    checkOrgId(id);
    const blindingKey = await deriveBlindingKey(crypto, signing.secretKey);
    return { keyid: orgRecipient(id), kind, id, signing, encryption, blindingKey };
  }
  if (kind === "patient") {
    checkPatientId(id);
    return { keyid: patientRecipient(id), kind, id, signing, encryption };
  }
  const hex = toHex(signing.publicKey);
  return { keyid: `consortium:${hex}`, kind, id: hex, signing, encryption };
}

/** A new patient: fresh keys, a random pseudonymous id (never derived from data), sealed in a key file. */
export async function createPatientKeyFile(
  crypto: CryptoSuite,
  options: KeyFileCreateOptions,
): Promise<{ file: string; patientId: string }> {
  const patientId = newRandomId(crypto);
  const file = await sealKeys(crypto, "patient", patientRecipient(patientId), options);
  return { file, patientId };
}

/**
 * A new org's keys in a key file. `signKey` and `encKey` (hex) are what the consortium admits
 * (`admitOrg`). `validator` makes a file of kind validator (the same keys; the kind is a label).
 */
export async function createOrgKeyFile(
  crypto: CryptoSuite,
  options: KeyFileCreateOptions & { readonly orgId: string; readonly validator?: boolean },
): Promise<{ file: string; signKey: string; encKey: string }> {
  checkOrgId(options.orgId);
  const kind = options.validator === true ? "validator" : "org";
  let signKey = "";
  let encKey = "";
  const file = await sealKeys(crypto, kind, orgRecipient(options.orgId), options, (keys) => {
    signKey = toHex(keys.signing.publicKey);
    encKey = toHex(keys.encryption.publicKey);
  });
  return { file, signKey, encKey };
}

async function sealKeys(
  crypto: CryptoSuite,
  kind: "patient" | "org" | "validator",
  label: string,
  options: KeyFileCreateOptions,
  onKeys?: (keys: KeyFileContents) => void,
): Promise<string> {
  const keys = await generateKeyFileKeys(crypto, kind, label);
  onKeys?.(keys);
  try {
    const keyFile = await createKeyFile(
      crypto,
      {
        kind,
        label,
        signingSecretKey: keys.signing.secretKey,
        encryptionSecretKey: keys.encryption.secretKey,
      },
      options.passphrase,
      {
        ...(options.kdf === undefined ? {} : { kdf: options.kdf }),
        ...(options.allowWeakKdf === undefined ? {} : { allowWeakKdf: options.allowWeakKdf }),
      },
    );
    return encodeKeyFile(keyFile);
  } finally {
    keys.signing.secretKey.fill(0);
    keys.encryption.secretKey.fill(0);
  }
}

/** Open a key file with its passphrase and say who it is (PASSPHRASE_WRONG, MALFORMED_INPUT, KEY_INVALID). */
export async function unlockIdentity(
  crypto: CryptoSuite,
  fileText: string | Uint8Array,
  passphrase: string,
): Promise<Identity> {
  const contents = await unlockKeyFile(crypto, fileText, passphrase);
  const { kind, id } = whoIs(contents);
  return identityFromKeys(crypto, kind, id, contents.signing, contents.encryption);
}

/** Who a key file's label says it is. */
function whoIs(contents: KeyFileContents): { kind: IdentityKind; id: string } {
  const { kind, label } = contents;
  if (label.startsWith("patient:")) {
    if (kind !== "patient") mismatch(label, kind);
    return { kind: "patient", id: label.slice("patient:".length) };
  }
  if (label.startsWith("org:")) {
    if (kind !== "org" && kind !== "validator") mismatch(label, kind);
    return { kind: "org", id: label.slice("org:".length) };
  }
  // Files of `medledger node init`: the consortium key is an org-kind file labelled consortium-<n>.
  if (/^consortium(?:-[0-9]{1,6})?$/.test(label) && kind === "org") return { kind: "consortium", id: "" };
  if (kind === "patient") return { kind: "patient", id: label };
  if (kind === "org" || kind === "validator") return { kind: "org", id: label };
  throw new LedgerError(
    "KEY_INVALID",
    `a ${kind} key file is not an identity of a patient, org or consortium`,
  );
}

function mismatch(label: string, kind: string): never {
  throw new LedgerError(
    "KEY_INVALID",
    `the key file label ${JSON.stringify(label)} does not fit its kind ${kind}`,
  );
}

function checkOrgId(id: string): void {
  if (!OrgIdSchema.safeParse(id).success) {
    throw new LedgerError("INVALID_ARGUMENT", "an org id is a lower-case slug of 1 to 64 characters");
  }
}

function checkPatientId(id: string): void {
  if (!RandomIdSchema.safeParse(id).success) {
    throw new LedgerError("KEY_INVALID", "a patient id is 16 to 32 random bytes in lower-case hex");
  }
}
