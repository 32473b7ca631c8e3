/**
 * C2SP signed notes (c2sp.org/signed-note): a UTF-8 text signed by one or more named keys, the envelope
 * of checkpoints (c2sp.org/tlog-checkpoint) and witness cosignatures (c2sp.org/tlog-cosignature).
 *
 * Wire format (signed-note "Format"):
 *
 *     <text, ending in U+000A>
 *     <blank line>
 *     — <key name> base64(4-byte big-endian key ID || signature)   (one line per signature, U+2014 EM DASH)
 *
 * Verifier keys are `<name>+<hex8 key ID>+base64(type byte || public key)` and signer keys
 * `PRIVATE+KEY+<name>+<hex8 key ID>+base64(type byte || secret)`, as in golang.org/x/mod/sumdb/note.
 * Everything parsed here comes from outside: every size is bounded and every field checked.
 */
import type { CryptoSuite } from "../crypto/suite.ts";
import { concatBytes, fromBase64, fromUtf8, toBase64, utf8, bytesEqual } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";

/** The crypto a note verifier needs: SHA-256 for key IDs and Ed25519 verification. */
export type NoteCrypto = Pick<CryptoSuite, "sha256" | "ed25519Verify">;

/** The crypto a note signer needs, on top of verification. */
export type NoteSigningCrypto = NoteCrypto & Pick<CryptoSuite, "ed25519Sign" | "ed25519PublicKey">;

/** Signature type byte of plain Ed25519 note signatures (signed-note "Signature types"). */
export const SIGNATURE_TYPE_ED25519 = 0x01;

/** Our bound on the encoded size of a signed note (signed-note "Format": verifiers SHOULD bound it). */
export const MAX_NOTE_BYTES = 1024 * 1024;

/** Our bound on signature lines per note; the spec requires accepting at least 16. */
export const MAX_NOTE_SIGNATURES = 100;

const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SEED_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
const KEY_ID_BYTES = 4;
const SIGNATURE_LINE_PREFIX = "\u2014 ";
const SIGNER_KEY_PREFIX = "PRIVATE+KEY+";
const HEX8 = /^[0-9a-fA-F]{8}$/;

/** A key that can check note signatures: the (name, key ID) pair names it on signature lines. */
export interface NoteVerifier {
  /** Key name as it appears on signature lines. */
  readonly name: string;
  /** The uint32 key ID (big-endian first four bytes of the signature). */
  readonly keyId: number;
  /** Signature type byte (0x01 Ed25519, 0x04 Ed25519 cosignature/v1). */
  readonly type: number;
  /** Raw public key bytes (without the type byte). */
  readonly publicKey: Uint8Array;
  /** The canonical verifier key string `name+hex8+base64(type || key)`. */
  readonly verifierKey: string;
  /** True when `signature` (without the key ID) is valid for `text`; never throws on bad input. */
  verify(text: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** A key that can add its signature line to a note. */
export interface NoteSigner {
  /** Key name written on the signature line. */
  readonly name: string;
  /** The uint32 key ID written before the signature. */
  readonly keyId: number;
  /** The matching verifier. */
  readonly verifier: NoteVerifier;
  /** Sign the note text; returns the signature bytes without the key ID. */
  sign(text: Uint8Array): Promise<Uint8Array>;
}

/** One signature line of a note, parsed but not necessarily verified. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** Signature bytes after the 4-byte key ID. */
  readonly signature: Uint8Array;
}

/** A note: its text (ending in a newline) and its signature lines in order. */
export interface Note {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A note whose signatures from known keys all verified, with at least one of them present. */
export interface OpenedNote extends Note {
  /** Distinct known verifiers whose signature verified, in note order (the first listed of equal keys). */
  readonly signedBy: readonly NoteVerifier[];
  /** Signature lines from keys the caller did not know (ignored, per signed-note "Signatures"). */
  readonly unknown: readonly NoteSignature[];
}

/** A freshly generated key pair in the note key string formats. */
export interface NoteKeyStrings {
  readonly signerKey: string;
  readonly verifierKey: string;
}

function malformed(message: string): never {
  throw new LedgerError("MALFORMED_INPUT", message);
}

/**
 * Key names MUST be non-empty and contain no Unicode spaces and no '+' (signed-note "Format"). We also
 * refuse control characters and lone surrogates, which a note can never carry.
 */
export function isValidKeyName(name: string): boolean {
  return (
    name.length > 0 &&
    !name.includes("+") &&
    !/\p{White_Space}/u.test(name) &&
    !/\p{Cc}/u.test(name) &&
    !/\p{Cs}/u.test(name)
  );
}

/** Key ID = SHA-256(key name || 0x0A || signature type || public key)[:4] as a big-endian uint32 (signed-note "Signatures"). */
export function computeKeyId(
  crypto: Pick<CryptoSuite, "sha256">,
  name: string,
  type: number,
  publicKey: Uint8Array,
): number {
  const digest = crypto.sha256(concatBytes(utf8(name), Uint8Array.of(0x0a, type), publicKey));
  return readUint32(digest, 0);
}

/** Eight lower-case hex digits of a key ID. */
export function formatKeyId(keyId: number): string {
  return (keyId >>> 0).toString(16).padStart(8, "0");
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>>
    0
  );
}

function uint32Bytes(value: number): Uint8Array {
  return Uint8Array.of(value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
}

/** Format a verifier key string `name+hex8(keyID)+base64(type || publicKey)`. */
export function formatVerifierKey(name: string, keyId: number, type: number, publicKey: Uint8Array): string {
  return `${name}+${formatKeyId(keyId)}+${toBase64(concatBytes(Uint8Array.of(type), publicKey))}`;
}

/** The decoded fields of a verifier key string, its key ID checked. */
export interface DecodedVerifierKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
}

/**
 * Decode `name+hex8+base64(type || key)` strictly: a valid name, exactly eight hex digits, canonical
 * base64, the expected type byte and key length, and a key ID equal to the one computed from the name,
 * type and key (the check golang.org/x/mod/sumdb/note NewVerifier makes). Throws KEY_INVALID.
 */
export function decodeVerifierKey(
  crypto: Pick<CryptoSuite, "sha256">,
  vkey: string,
  expectedType: number,
  keyLength: number,
): DecodedVerifierKey {
  const bad = (why: string): never => {
    throw new LedgerError("KEY_INVALID", `invalid verifier key: ${why}`);
  };
  if (vkey.length > 4096) bad("too long");
  const first = vkey.indexOf("+");
  const second = first < 0 ? -1 : vkey.indexOf("+", first + 1);
  if (first < 0 || second < 0) bad("expected name+keyid+key");
  const name = vkey.slice(0, first);
  const hex = vkey.slice(first + 1, second);
  const b64 = vkey.slice(second + 1);
  if (!isValidKeyName(name)) bad("the key name is empty or contains a space, '+' or a control character");
  if (!HEX8.test(hex)) bad("the key ID is not eight hex digits");
  let material: Uint8Array;
  try {
    material = fromBase64(b64);
  } catch (cause) {
    throw new LedgerError("KEY_INVALID", "invalid verifier key: the key is not valid base64", { cause });
  }
  if (material.length === 0) bad("the key is empty");
  const type = material[0]!;
  if (type !== expectedType) {
    bad(
      `signature type 0x${type.toString(16).padStart(2, "0")}, expected 0x${expectedType.toString(16).padStart(2, "0")}`,
    );
  }
  const publicKey = material.slice(1);
  if (publicKey.length !== keyLength) bad(`public key is ${publicKey.length} bytes, expected ${keyLength}`);
  const keyId = parseInt(hex, 16) >>> 0;
  if (keyId !== computeKeyId(crypto, name, type, publicKey))
    bad("the key ID does not match the name and key");
  return { name, keyId, type, publicKey };
}

/** The decoded fields of a signer key string; its key ID is checked by the caller after deriving the public key. */
export interface DecodedSignerKey {
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly secret: Uint8Array;
}

/** Decode `PRIVATE+KEY+name+hex8+base64(type || secret)` (golang.org/x/mod/sumdb/note NewSigner). Throws KEY_INVALID. */
export function decodeSignerKey(skey: string, expectedType: number, secretLength: number): DecodedSignerKey {
  const bad = (why: string): never => {
    throw new LedgerError("KEY_INVALID", `invalid signer key: ${why}`);
  };
  if (skey.length > 4096) bad("too long");
  if (!skey.startsWith(SIGNER_KEY_PREFIX)) bad("expected PRIVATE+KEY+name+keyid+key");
  const rest = skey.slice(SIGNER_KEY_PREFIX.length);
  const first = rest.indexOf("+");
  const second = first < 0 ? -1 : rest.indexOf("+", first + 1);
  if (first < 0 || second < 0) bad("expected PRIVATE+KEY+name+keyid+key");
  const name = rest.slice(0, first);
  const hex = rest.slice(first + 1, second);
  if (!isValidKeyName(name)) bad("the key name is empty or contains a space, '+' or a control character");
  if (!HEX8.test(hex)) bad("the key ID is not eight hex digits");
  let material: Uint8Array;
  try {
    material = fromBase64(rest.slice(second + 1));
  } catch (cause) {
    throw new LedgerError("KEY_INVALID", "invalid signer key: the key is not valid base64", { cause });
  }
  if (material.length === 0) bad("the key is empty");
  if (material[0] !== expectedType) bad("unexpected signature type");
  const secret = material.slice(1);
  if (secret.length !== secretLength) bad(`secret is ${secret.length} bytes, expected ${secretLength}`);
  return { name, keyId: parseInt(hex, 16) >>> 0, type: expectedType, secret };
}

/** Format a signer key string `PRIVATE+KEY+name+hex8+base64(type || secret)`. Keep it secret. */
export function formatSignerKey(name: string, keyId: number, type: number, secret: Uint8Array): string {
  return `${SIGNER_KEY_PREFIX}${name}+${formatKeyId(keyId)}+${toBase64(concatBytes(Uint8Array.of(type), secret))}`;
}

/** An Ed25519 note verifier (signed-note "Ed25519 signatures") for a name and 32-byte public key. */
export function ed25519NoteVerifier(crypto: NoteCrypto, name: string, publicKey: Uint8Array): NoteVerifier {
  if (!isValidKeyName(name)) throw new LedgerError("KEY_INVALID", "invalid key name");
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES)
    throw new LedgerError("KEY_INVALID", "Ed25519 public key must be 32 bytes");
  const key = publicKey.slice();
  const keyId = computeKeyId(crypto, name, SIGNATURE_TYPE_ED25519, key);
  return {
    name,
    keyId,
    type: SIGNATURE_TYPE_ED25519,
    publicKey: key,
    verifierKey: formatVerifierKey(name, keyId, SIGNATURE_TYPE_ED25519, key),
    async verify(text, signature) {
      if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
      return crypto.ed25519Verify(key, text, signature);
    },
  };
}

/** Parse an Ed25519 verifier key string (type byte 0x01 only); throws KEY_INVALID. */
export function parseNoteVerifierKey(crypto: NoteCrypto, vkey: string): NoteVerifier {
  const decoded = decodeVerifierKey(crypto, vkey, SIGNATURE_TYPE_ED25519, ED25519_PUBLIC_KEY_BYTES);
  return ed25519NoteVerifier(crypto, decoded.name, decoded.publicKey);
}

/** An Ed25519 note signer for a name and 32-byte seed. */
export async function ed25519NoteSigner(
  crypto: NoteSigningCrypto,
  name: string,
  seed: Uint8Array,
): Promise<NoteSigner> {
  if (seed.length !== ED25519_SEED_BYTES)
    throw new LedgerError("KEY_INVALID", "Ed25519 seed must be 32 bytes");
  const secret = seed.slice();
  const verifier = ed25519NoteVerifier(crypto, name, await crypto.ed25519PublicKey(secret));
  return {
    name,
    keyId: verifier.keyId,
    verifier,
    sign: (text) => crypto.ed25519Sign(secret, text),
  };
}

/** Parse an Ed25519 signer key string; refuses a key ID that does not match the derived public key. */
export async function parseNoteSignerKey(crypto: NoteSigningCrypto, skey: string): Promise<NoteSigner> {
  const decoded = decodeSignerKey(skey, SIGNATURE_TYPE_ED25519, ED25519_SEED_BYTES);
  const signer = await ed25519NoteSigner(crypto, decoded.name, decoded.secret);
  if (signer.keyId !== decoded.keyId)
    throw new LedgerError("KEY_INVALID", "invalid signer key: the key ID does not match the key");
  return signer;
}

/** Generate a fresh Ed25519 note key pair as signer and verifier key strings. */
export async function generateNoteKey(
  crypto: NoteSigningCrypto & Pick<CryptoSuite, "ed25519Generate">,
  name: string,
): Promise<NoteKeyStrings> {
  const pair = await crypto.ed25519Generate();
  const signer = await ed25519NoteSigner(crypto, name, pair.secretKey);
  return {
    signerKey: formatSignerKey(name, signer.keyId, SIGNATURE_TYPE_ED25519, pair.secretKey),
    verifierKey: signer.verifier.verifierKey,
  };
}

/** Bytes of a note given as bytes or string, bounded; a string with lone surrogates is refused. */
function noteBytes(input: Uint8Array | string, limit: number): Uint8Array {
  if (typeof input === "string") {
    if (input.length > limit) throw new LedgerError("TOO_LARGE", `note is larger than ${limit} bytes`);
    if (/\p{Cs}/u.test(input)) malformed("note is not valid Unicode");
    input = utf8(input);
  }
  if (input.length > limit) throw new LedgerError("TOO_LARGE", `note is larger than ${limit} bytes`);
  return input;
}

/** Signed notes MUST be valid UTF-8 with no ASCII control characters other than newline (signed-note "Format"). */
function checkNoteCharacters(text: string, what: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a)
      malformed(`${what} contains control character 0x${c.toString(16).padStart(2, "0")}`);
  }
}

/** Validate a note text for signing: non-empty, ending in a newline, no control characters other than newline. */
function checkNoteText(text: string): void {
  if (!text.endsWith("\n")) malformed("note text must end with a newline");
  if (/\p{Cs}/u.test(text)) malformed("note text is not valid Unicode");
  checkNoteCharacters(text, "note text");
}

/**
 * Parse a signed note strictly without verifying it (signed-note "Format"): valid UTF-8, no control
 * characters but newline, the text separated from the signatures by the last blank line, each signature
 * line `— name base64(keyID || sig)` with a valid name and at least one signature byte, at most
 * MAX_NOTE_SIGNATURES lines. Throws MALFORMED_INPUT or TOO_LARGE.
 */
export function parseNote(input: Uint8Array | string, maxBytes: number = MAX_NOTE_BYTES): Note {
  const message = fromUtf8(noteBytes(input, maxBytes));
  checkNoteCharacters(message, "note");
  const split = message.lastIndexOf("\n\n");
  if (split < 0) malformed("note has no blank line before its signatures");
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (block.length === 0) malformed("note has no signature lines");
  if (!block.endsWith("\n")) malformed("note does not end with a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_NOTE_SIGNATURES) {
    throw new LedgerError("TOO_LARGE", `note has more than ${MAX_NOTE_SIGNATURES} signatures`);
  }
  const signatures = lines.map((line, i) => parseSignatureLine(line, i + 1));
  return { text, signatures };
}

function parseSignatureLine(line: string, n: number): NoteSignature {
  if (!line.startsWith(SIGNATURE_LINE_PREFIX)) {
    malformed(`signature line ${n} does not start with an em dash (U+2014) and a space`);
  }
  const rest = line.slice(SIGNATURE_LINE_PREFIX.length);
  const space = rest.indexOf(" ");
  if (space < 0) malformed(`signature line ${n} has no space between key name and signature`);
  const name = rest.slice(0, space);
  if (!isValidKeyName(name)) malformed(`signature line ${n} has an invalid key name`);
  let raw: Uint8Array;
  try {
    raw = fromBase64(rest.slice(space + 1));
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", `signature line ${n} is not valid base64`, { cause });
  }
  if (raw.length <= KEY_ID_BYTES) malformed(`signature line ${n} is too short`);
  return { name, keyId: readUint32(raw, 0), signature: raw.slice(KEY_ID_BYTES) };
}

/** Format one signature line (with its trailing newline). */
export function formatSignatureLine(sig: NoteSignature): string {
  if (!isValidKeyName(sig.name)) throw new LedgerError("INVALID_ARGUMENT", "invalid key name");
  return `${SIGNATURE_LINE_PREFIX}${sig.name} ${toBase64(concatBytes(uint32Bytes(sig.keyId), sig.signature))}\n`;
}

/** Format a note: text, blank line, signature lines. Refuses a note without signatures. */
export function formatNote(note: Note): string {
  checkNoteText(note.text);
  if (note.signatures.length === 0)
    throw new LedgerError("INVALID_ARGUMENT", "a signed note needs at least one signature");
  return `${note.text}\n${note.signatures.map(formatSignatureLine).join("")}`;
}

/**
 * Add signatures to a note text or an existing note and format it. A signature already present from one
 * of the signers' (name, key ID) is replaced, as in golang.org/x/mod/sumdb/note Sign; others are kept.
 */
export async function signNote(note: Note | string, signers: readonly NoteSigner[]): Promise<string> {
  const base: Note = typeof note === "string" ? { text: note, signatures: [] } : note;
  checkNoteText(base.text);
  const textBytes = utf8(base.text);
  if (textBytes.length > MAX_NOTE_BYTES) throw new LedgerError("TOO_LARGE", "note text is too large");
  const fresh: NoteSignature[] = [];
  for (const signer of signers) {
    if (!isValidKeyName(signer.name)) throw new LedgerError("INVALID_ARGUMENT", "invalid signer key name");
    fresh.push({ name: signer.name, keyId: signer.keyId, signature: await signer.sign(textBytes) });
  }
  const kept = base.signatures.filter((s) => !fresh.some((f) => f.name === s.name && f.keyId === s.keyId));
  return formatNote({ text: base.text, signatures: [...kept, ...fresh] });
}

/** True when two verifiers are the same key: name, key ID, type and public key all equal. */
export function sameVerifier(a: NoteVerifier, b: NoteVerifier): boolean {
  return (
    a.name === b.name && a.keyId === b.keyId && a.type === b.type && bytesEqual(a.publicKey, b.publicKey)
  );
}

function lookupKey(name: string, keyId: number): string {
  return `${name}\n${keyId}`;
}

/**
 * Parse and verify a signed note against known verifiers (signed-note "Signatures"): every line whose
 * (name, key ID) matches a known key is verified and a failure rejects the whole note (SIGNATURE_INVALID);
 * lines from unknown keys are ignored; a note with no verified signature from a known key is rejected.
 * Two distinct known keys with the same (name, key ID) are refused as INVALID_ARGUMENT.
 */
export async function openNote(
  input: Uint8Array | string,
  known: readonly NoteVerifier[],
  maxBytes: number = MAX_NOTE_BYTES,
): Promise<OpenedNote> {
  const note = parseNote(input, maxBytes);
  const byKey = new Map<string, NoteVerifier>();
  for (const v of known) {
    const k = lookupKey(v.name, v.keyId);
    const existing = byKey.get(k);
    if (existing === undefined) byKey.set(k, v);
    else if (!sameVerifier(existing, v)) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        `two known keys share the name and key ID ${v.name}+${formatKeyId(v.keyId)}`,
      );
    }
  }
  const textBytes = utf8(note.text);
  const signedBy: NoteVerifier[] = [];
  const unknown: NoteSignature[] = [];
  for (const sig of note.signatures) {
    const verifier = byKey.get(lookupKey(sig.name, sig.keyId));
    if (verifier === undefined) {
      unknown.push(sig);
      continue;
    }
    if (!(await verifier.verify(textBytes, sig.signature))) {
      throw new LedgerError(
        "SIGNATURE_INVALID",
        `invalid signature by ${sig.name}+${formatKeyId(sig.keyId)}`,
      );
    }
    if (!signedBy.includes(verifier)) signedBy.push(verifier);
  }
  if (signedBy.length === 0)
    throw new LedgerError("SIGNATURE_INVALID", "note has no signature from a known key");
  return { ...note, signedBy, unknown };
}
