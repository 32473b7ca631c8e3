/**
 * Passphrase-protected key files (DESIGN.md section 1): one actor's Ed25519 signing key and X25519
 * encryption key, sealed with AES-256-GCM under a key derived from a passphrase with scrypt (RFC 7914).
 *
 * A key file is versioned JSON (docs/crypto.md has the full format). Everything but the ciphertext is the
 * header, and the header's RFC 8785 canonical bytes are the AEAD's associated data: no field (kind,
 * label, public keys, KDF parameters, nonce) can be changed without the file failing to open.
 *
 * KDF: scrypt N = 2^17, r = 8, p = 1 (128 MiB, OWASP Password Storage Cheat Sheet), the default for every
 * new file; a cheaper setting needs the explicit `allowWeakKdf` option (used by tests). Unlocking
 * accepts parameters within fixed bounds only, so a hostile file cannot make us allocate gigabytes.
 */
import { LedgerError } from "../errors.ts";
import { concatBytes, fromBase64, toBase64, utf8 } from "../encoding/bytes.ts";
import { canonicalBytes, isWellFormedString, parseJson } from "../encoding/jcs.ts";
import { KEY_LENGTH, requireKey } from "./checks.ts";
import type { CryptoSuite, KeyPair, ScryptParams } from "./suite.ts";

/** The "format" member of every key file. */
export const KEYFILE_FORMAT = "medledger-keyfile";
/** The key file version this code reads and writes. */
export const KEYFILE_VERSION = 1;
/** The kinds of actor a key file belongs to (DESIGN.md section 1). */
export const KEY_KINDS = ["patient", "org", "validator", "log", "witness"] as const;
/** The kind of actor a key file belongs to. */
export type KeyKind = (typeof KEY_KINDS)[number];

/** Default scrypt cost: N = 2^17, r = 8, p = 1 (OWASP Password Storage Cheat Sheet, scrypt). */
export const KEYFILE_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };
/** Bounds applied when reading a key file (refusing DoS parameters). */
export const KEYFILE_SCRYPT_BOUNDS = {
  minN: 2 ** 10,
  maxN: 2 ** 20,
  maxR: 16,
  maxP: 4,
  /** scrypt's memory is 128 * N * r bytes (RFC 7914 section 5): at most 256 MiB. */
  maxMemory: 256 * 1024 * 1024,
  /** Work grows with N * r * p: at most four times the default. */
  maxWork: 4 * 2 ** 17 * 8,
} as const;

const CIPHER = "AES-256-GCM";
const SALT_LENGTH = 32;
const NONCE_LENGTH = 12;
const SECRET_LENGTH = 2 * KEY_LENGTH;
const CIPHERTEXT_LENGTH = SECRET_LENGTH + 16;
const MAX_LABEL_LENGTH = 256;
const MAX_PASSPHRASE_BYTES = 1024;
const MAX_FILE_BYTES = 16 * 1024;
const FILE_KEYS = "cipher,ciphertext,format,kdf,kind,label,nonce,public,version";

/** The scrypt parameters as stored in a key file. */
export interface KeyFileKdf {
  readonly name: "scrypt";
  readonly N: number;
  readonly r: number;
  readonly p: number;
  /** Standard base64 of the 32-byte salt. */
  readonly salt: string;
}

/** A key file, as JSON: byte strings are standard padded base64 (RFC 4648 section 4). */
export interface KeyFile {
  readonly format: typeof KEYFILE_FORMAT;
  readonly version: typeof KEYFILE_VERSION;
  readonly kind: KeyKind;
  readonly label: string;
  readonly public: { readonly signing: string; readonly encryption: string };
  readonly kdf: KeyFileKdf;
  readonly cipher: typeof CIPHER;
  readonly nonce: string;
  readonly ciphertext: string;
}

/** The keys a key file protects, with who they belong to. */
export interface KeyFileContents {
  readonly kind: KeyKind;
  readonly label: string;
  /** The Ed25519 key pair (secret: the 32-byte seed). */
  readonly signing: KeyPair;
  /** The X25519 key pair. */
  readonly encryption: KeyPair;
}

/** What createKeyFile needs: who, and the two secret keys (generate them with generateKeyFileKeys). */
export interface KeyFileInput {
  readonly kind: KeyKind;
  readonly label: string;
  readonly signingSecretKey: Uint8Array;
  readonly encryptionSecretKey: Uint8Array;
}

/** Options of createKeyFile. */
export interface KeyFileOptions {
  /** scrypt cost (default KEYFILE_SCRYPT). */
  readonly kdf?: ScryptParams;
  /** Must be true to use a cost below KEYFILE_SCRYPT: for tests only. */
  readonly allowWeakKdf?: boolean;
}

/** Fresh Ed25519 and X25519 key pairs for a new actor. */
export async function generateKeyFileKeys(
  crypto: CryptoSuite,
  kind: KeyKind,
  label: string,
): Promise<KeyFileContents> {
  const [signing, encryption] = await Promise.all([crypto.ed25519Generate(), crypto.x25519Generate()]);
  return { kind, label, signing, encryption };
}

/** Seal an actor's keys under a passphrase; returns the key file (encode it with encodeKeyFile). */
export async function createKeyFile(
  crypto: CryptoSuite,
  input: KeyFileInput,
  passphrase: string,
  options: KeyFileOptions = {},
): Promise<KeyFile> {
  if (typeof input !== "object" || input === null) {
    throw new LedgerError("INVALID_ARGUMENT", "key file input must be an object");
  }
  const kind = checkKind(input.kind);
  const label = checkLabel(input.label);
  requireKey(input.signingSecretKey, "signing secret key");
  requireKey(input.encryptionSecretKey, "encryption secret key");
  const password = passphraseBytes(passphrase);
  if (password.length === 0) throw new LedgerError("INVALID_ARGUMENT", "the passphrase must not be empty");
  const { N, r, p } = options.kdf ?? KEYFILE_SCRYPT;
  checkKdfBounds(N, r, p);
  if ((N < KEYFILE_SCRYPT.N || r < KEYFILE_SCRYPT.r) && options.allowWeakKdf !== true) {
    throw new LedgerError("INVALID_ARGUMENT", "scrypt cost below N = 2^17, r = 8 needs allowWeakKdf");
  }
  const salt = crypto.randomBytes(SALT_LENGTH);
  const nonce = crypto.randomBytes(NONCE_LENGTH);
  const header = {
    format: KEYFILE_FORMAT,
    version: KEYFILE_VERSION,
    kind,
    label,
    public: {
      signing: toBase64(await crypto.ed25519PublicKey(input.signingSecretKey)),
      encryption: toBase64(await crypto.x25519PublicKey(input.encryptionSecretKey)),
    },
    kdf: { name: "scrypt", N, r, p, salt: toBase64(salt) },
    cipher: CIPHER,
    nonce: toBase64(nonce),
  } as const;
  const key = await crypto.scrypt(password, salt, { N, r, p }, 32);
  const secrets = concatBytes(input.signingSecretKey, input.encryptionSecretKey);
  try {
    const ciphertext = await crypto.aeadSeal(CIPHER, key, nonce, canonicalBytes(header), secrets);
    return { ...header, ciphertext: toBase64(ciphertext) };
  } finally {
    key.fill(0);
    secrets.fill(0);
  }
}

/**
 * Open a key file (JSON text, its UTF-8 bytes, or the parsed object) with its passphrase.
 * PASSPHRASE_WRONG when the passphrase is wrong or any part of the file was altered (the AEAD cannot
 * tell the two apart), UNSUPPORTED_VERSION for another version, MALFORMED_INPUT or TOO_LARGE when the
 * file is not a well-formed key file within bounds.
 */
export async function unlockKeyFile(
  crypto: CryptoSuite,
  input: string | Uint8Array | KeyFile,
  passphrase: string,
): Promise<KeyFileContents> {
  const file = parseKeyFile(input);
  const password = passphraseBytes(passphrase);
  const { ciphertext, ...header } = file;
  const { N, r, p } = file.kdf;
  const key = await crypto.scrypt(password, fromBase64(file.kdf.salt), { N, r, p }, 32);
  let secrets: Uint8Array;
  try {
    secrets = await crypto.aeadOpen(
      CIPHER,
      key,
      fromBase64(file.nonce),
      canonicalBytes(header),
      fromBase64(ciphertext),
    );
  } catch (cause) {
    if (cause instanceof LedgerError && cause.code === "DECRYPTION_FAILED") {
      throw new LedgerError("PASSPHRASE_WRONG", "wrong passphrase, or the key file was altered", { cause });
    }
    throw cause;
  } finally {
    key.fill(0);
  }
  const signingSecretKey = secrets.slice(0, KEY_LENGTH);
  const encryptionSecretKey = secrets.slice(KEY_LENGTH);
  secrets.fill(0);
  const signing = { secretKey: signingSecretKey, publicKey: await crypto.ed25519PublicKey(signingSecretKey) };
  const encryption = {
    secretKey: encryptionSecretKey,
    publicKey: await crypto.x25519PublicKey(encryptionSecretKey),
  };
  // The header is authenticated, so a mismatch means the file was created wrongly, not altered.
  if (
    toBase64(signing.publicKey) !== file.public.signing ||
    toBase64(encryption.publicKey) !== file.public.encryption
  ) {
    throw new LedgerError("KEY_INVALID", "the key file's public keys do not match its secret keys");
  }
  return { kind: file.kind, label: file.label, signing, encryption };
}

/** The JSON text of a key file (two-space indented, with a final newline). */
export function encodeKeyFile(file: KeyFile): string {
  return JSON.stringify(parseKeyFile(file), null, 2) + "\n";
}

/** Parse and validate a key file from outside without opening it: every field, every bound. */
export function parseKeyFile(input: unknown): KeyFile {
  let value: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    try {
      value = parseJson(input, { maxDepth: 3, maxBytes: MAX_FILE_BYTES });
    } catch (cause) {
      if (cause instanceof LedgerError && cause.code === "TOO_LARGE") throw cause;
      throw new LedgerError("MALFORMED_INPUT", "a key file must be strict JSON", { cause });
    }
  }
  const file = object(value, "key file");
  if (file.format !== KEYFILE_FORMAT) throw new LedgerError("MALFORMED_INPUT", "not a medledger key file");
  if (typeof file.version !== "number" || !Number.isInteger(file.version)) {
    throw new LedgerError("MALFORMED_INPUT", "key file version must be an integer");
  }
  if (file.version !== KEYFILE_VERSION) {
    throw new LedgerError("UNSUPPORTED_VERSION", `key file version ${file.version} is not supported`);
  }
  exactKeys(file, FILE_KEYS, "key file");
  const kind = checkKind(file.kind);
  const label = checkLabel(file.label);
  const pub = object(file.public, "key file public keys");
  exactKeys(pub, "encryption,signing", "key file public keys");
  const signing = base64Field(pub.signing, KEY_LENGTH, KEY_LENGTH, "public signing key");
  const encryption = base64Field(pub.encryption, KEY_LENGTH, KEY_LENGTH, "public encryption key");
  const kdf = object(file.kdf, "key file kdf");
  if (kdf.name !== "scrypt") throw new LedgerError("UNSUPPORTED_ALGORITHM", "key file KDF must be scrypt");
  exactKeys(kdf, "N,name,p,r,salt", "key file kdf");
  const { N, r, p } = kdf;
  if (!isInteger(N) || !isInteger(r) || !isInteger(p)) {
    throw new LedgerError("MALFORMED_INPUT", "scrypt N, r and p must be integers");
  }
  checkKdfBounds(N, r, p);
  const salt = base64Field(kdf.salt, 16, 64, "scrypt salt");
  if (file.cipher !== CIPHER)
    throw new LedgerError("UNSUPPORTED_ALGORITHM", `key file cipher must be ${CIPHER}`);
  const nonce = base64Field(file.nonce, NONCE_LENGTH, NONCE_LENGTH, "nonce");
  const ciphertext = base64Field(file.ciphertext, CIPHERTEXT_LENGTH, CIPHERTEXT_LENGTH, "ciphertext");
  return {
    format: KEYFILE_FORMAT,
    version: KEYFILE_VERSION,
    kind,
    label,
    public: { signing, encryption },
    kdf: { name: "scrypt", N, r, p, salt },
    cipher: CIPHER,
    nonce,
    ciphertext,
  };
}

/** Refuse scrypt parameters a key file may not carry: TOO_LARGE above the bounds, else MALFORMED_INPUT. */
function checkKdfBounds(N: number, r: number, p: number): void {
  const b = KEYFILE_SCRYPT_BOUNDS;
  if (!isInteger(N) || !isInteger(r) || !isInteger(p) || N < 2 || (N & (N - 1)) !== 0 || r < 1 || p < 1) {
    throw new LedgerError("MALFORMED_INPUT", "scrypt N must be a power of two, r and p positive integers");
  }
  if (N > b.maxN || r > b.maxR || p > b.maxP || 128 * N * r > b.maxMemory || N * r * p > b.maxWork) {
    throw new LedgerError("TOO_LARGE", "scrypt parameters above the key file bounds");
  }
  if (N < b.minN) throw new LedgerError("MALFORMED_INPUT", `scrypt N below ${b.minN}`);
}

function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new LedgerError("MALFORMED_INPUT", `${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Unknown members are refused: they would not be covered by a future reader's expectations. */
function exactKeys(value: Record<string, unknown>, expected: string, what: string): void {
  if (Object.keys(value).sort().join(",") !== expected) {
    throw new LedgerError("MALFORMED_INPUT", `${what} must have exactly the members ${expected}`);
  }
}

function base64Field(value: unknown, min: number, max: number, what: string): string {
  // A base64 string of n bytes has 4 * ceil(n / 3) characters; check before decoding anything.
  if (typeof value !== "string" || value.length > 4 * Math.ceil(max / 3)) {
    throw new LedgerError("MALFORMED_INPUT", `${what} must be a base64 string of at most ${max} bytes`);
  }
  const bytes = fromBase64(value);
  if (bytes.length < min || bytes.length > max) {
    throw new LedgerError(
      "MALFORMED_INPUT",
      `${what} must be ${min === max ? min : `${min} to ${max}`} bytes`,
    );
  }
  return value;
}

function checkKind(kind: unknown): KeyKind {
  if (typeof kind !== "string" || !(KEY_KINDS as readonly string[]).includes(kind)) {
    throw new LedgerError("MALFORMED_INPUT", `key kind must be one of ${KEY_KINDS.join(", ")}`);
  }
  return kind as KeyKind;
}

function checkLabel(label: unknown): string {
  if (typeof label !== "string" || label.length > MAX_LABEL_LENGTH || !isWellFormedString(label)) {
    throw new LedgerError(
      "MALFORMED_INPUT",
      `key label must be a well-formed string of at most ${MAX_LABEL_LENGTH}`,
    );
  }
  return label;
}

/** The passphrase as UTF-8 of its NFC form, so the same words typed on any system unlock the file. */
function passphraseBytes(passphrase: unknown): Uint8Array {
  if (typeof passphrase !== "string" || !isWellFormedString(passphrase)) {
    throw new LedgerError("INVALID_ARGUMENT", "the passphrase must be a well-formed string");
  }
  const bytes = utf8(passphrase.normalize("NFC"));
  if (bytes.length > MAX_PASSPHRASE_BYTES) {
    throw new LedgerError("INVALID_ARGUMENT", `the passphrase is limited to ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  return bytes;
}
