/**
 * C2SP tlog-cosignature (c2sp.org/tlog-cosignature), the Ed25519 "cosignature/v1" type: a witness's
 * timestamped statement that a checkpoint is the largest consistent tree head it has seen for the log.
 *
 * - Key ID (tlog-cosignature "Format"): SHA-256(name || "\n" || 0x04 || 32-byte Ed25519 public key)[:4].
 * - Signature bytes (tlog-cosignature "Format", `timestamped_signature`): u64 big-endian POSIX timestamp
 *   || 64-byte Ed25519 signature, 72 bytes, after the 4-byte key ID of the note signature line.
 * - Signed message (tlog-cosignature "Ed25519 signed message"):
 *   `cosignature/v1\n` `time <decimal timestamp>\n` followed by the whole checkpoint note text.
 * - Verifier keys: `name+hex8(keyID)+base64(0x04 || public key)` (tlog-cosignature "Format", vkeys).
 */
import { concatBytes, utf8 } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import { parseCheckpoint } from "./checkpoint.ts";
import {
  computeKeyId,
  decodeSignerKey,
  decodeVerifierKey,
  formatSignerKey,
  formatVerifierKey,
  isValidKeyName,
  parseNote,
  signNote,
  type NoteCrypto,
  type NoteSigner,
  type NoteSigningCrypto,
  type NoteVerifier,
  type NoteKeyStrings,
} from "./signed-note.ts";
import type { CryptoSuite } from "../crypto/suite.ts";

/** Signature type byte of Ed25519 cosignature/v1 (signed-note "Signature types", tlog-cosignature "Format"). */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;

/** Header line of the cosignature/v1 signed message, providing domain separation. */
export const COSIGNATURE_V1_HEADER = "cosignature/v1";

/** Timestamps MUST NOT exceed 2^63 - 1 (tlog-cosignature "Format"). */
export const MAX_COSIGNATURE_TIMESTAMP = (1n << 63n) - 1n;

/** Length of a cosignature/v1 signature after the key ID: 8-byte timestamp and 64-byte Ed25519 signature. */
export const COSIGNATURE_V1_BYTES = 72;

const ED25519_KEY_BYTES = 32;

function checkTimestamp(timestamp: bigint): void {
  if (timestamp < 0n || timestamp > MAX_COSIGNATURE_TIMESTAMP) {
    throw new LedgerError("INVALID_ARGUMENT", "cosignature timestamp must be between 0 and 2^63 - 1");
  }
}

/** The cosignature/v1 signed message for a timestamp and checkpoint note text (tlog-cosignature "Ed25519 signed message"). */
export function cosignatureMessage(timestamp: bigint, checkpointText: Uint8Array): Uint8Array {
  checkTimestamp(timestamp);
  return concatBytes(utf8(`${COSIGNATURE_V1_HEADER}\ntime ${timestamp.toString()}\n`), checkpointText);
}

/** The timestamp of a cosignature/v1 signature (bytes after the key ID); throws MALFORMED_INPUT on a wrong length. */
export function cosignatureTimestamp(signature: Uint8Array): bigint {
  if (signature.length !== COSIGNATURE_V1_BYTES) {
    throw new LedgerError(
      "MALFORMED_INPUT",
      `cosignature is ${signature.length} bytes, expected ${COSIGNATURE_V1_BYTES}`,
    );
  }
  let t = 0n;
  for (let i = 0; i < 8; i++) t = (t << 8n) | BigInt(signature[i]!);
  return t;
}

function timestampBytes(timestamp: bigint): Uint8Array {
  const out = new Uint8Array(8);
  let t = timestamp;
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(t & 0xffn);
    t >>= 8n;
  }
  return out;
}

/**
 * Verify a cosignature/v1 signature (the 72 bytes after the key ID) over a checkpoint note text. False for
 * a wrong length, a timestamp above 2^63 - 1 or a bad Ed25519 signature; never throws on hostile input.
 */
export async function verifyCosignature(
  crypto: Pick<CryptoSuite, "ed25519Verify">,
  publicKey: Uint8Array,
  checkpointText: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (signature.length !== COSIGNATURE_V1_BYTES || publicKey.length !== ED25519_KEY_BYTES) return false;
  const timestamp = cosignatureTimestamp(signature);
  if (timestamp > MAX_COSIGNATURE_TIMESTAMP) return false;
  return crypto.ed25519Verify(
    publicKey,
    cosignatureMessage(timestamp, checkpointText),
    signature.subarray(8),
  );
}

/**
 * A note verifier for a witness's Ed25519 cosignature/v1 key. Timestamps in the future are not refused
 * here (tlog-cosignature "Format" makes that a MAY); callers that want to can read cosignatureTimestamp.
 */
export function cosignatureVerifier(crypto: NoteCrypto, name: string, publicKey: Uint8Array): NoteVerifier {
  if (!isValidKeyName(name)) throw new LedgerError("KEY_INVALID", "invalid witness key name");
  if (publicKey.length !== ED25519_KEY_BYTES)
    throw new LedgerError("KEY_INVALID", "witness public key must be 32 bytes");
  const key = publicKey.slice();
  const keyId = computeKeyId(crypto, name, SIGNATURE_TYPE_COSIGNATURE_V1, key);
  return {
    name,
    keyId,
    type: SIGNATURE_TYPE_COSIGNATURE_V1,
    publicKey: key,
    verifierKey: formatVerifierKey(name, keyId, SIGNATURE_TYPE_COSIGNATURE_V1, key),
    verify: (text, signature) => verifyCosignature(crypto, key, text, signature),
  };
}

/** Parse a witness verifier key `name+hex8+base64(0x04 || pub)` strictly; throws KEY_INVALID. */
export function parseCosignatureVerifierKey(crypto: NoteCrypto, vkey: string): NoteVerifier {
  const decoded = decodeVerifierKey(crypto, vkey, SIGNATURE_TYPE_COSIGNATURE_V1, ED25519_KEY_BYTES);
  return cosignatureVerifier(crypto, decoded.name, decoded.publicKey);
}

/** A clock giving the current POSIX time in seconds. */
export type Clock = () => bigint;

/** The system clock in POSIX seconds. */
export const systemClock: Clock = () => BigInt(Math.floor(Date.now() / 1000));

/** A cosignature/v1 signer for a witness name and 32-byte Ed25519 seed; each signature is stamped by `clock`. */
export async function cosignatureSigner(
  crypto: NoteSigningCrypto,
  name: string,
  seed: Uint8Array,
  clock: Clock = systemClock,
): Promise<NoteSigner> {
  if (seed.length !== ED25519_KEY_BYTES)
    throw new LedgerError("KEY_INVALID", "witness seed must be 32 bytes");
  const secret = seed.slice();
  const verifier = cosignatureVerifier(crypto, name, await crypto.ed25519PublicKey(secret));
  return {
    name,
    keyId: verifier.keyId,
    verifier,
    async sign(text) {
      const timestamp = clock();
      const signature = await crypto.ed25519Sign(secret, cosignatureMessage(timestamp, text));
      return concatBytes(timestampBytes(timestamp), signature);
    },
  };
}

/**
 * Parse a witness signer key `PRIVATE+KEY+name+hex8+base64(0x04 || seed)`. The spec defines no private
 * key string for cosigners; this is the signed-note signer key format with the cosignature type byte.
 */
export async function parseCosignatureSignerKey(
  crypto: NoteSigningCrypto,
  skey: string,
  clock: Clock = systemClock,
): Promise<NoteSigner> {
  const decoded = decodeSignerKey(skey, SIGNATURE_TYPE_COSIGNATURE_V1, ED25519_KEY_BYTES);
  const signer = await cosignatureSigner(crypto, decoded.name, decoded.secret, clock);
  if (signer.keyId !== decoded.keyId)
    throw new LedgerError("KEY_INVALID", "invalid signer key: the key ID does not match the key");
  return signer;
}

/** Generate a witness key pair as signer and verifier key strings (type 0x04). */
export async function generateCosignatureKey(
  crypto: NoteSigningCrypto & Pick<CryptoSuite, "ed25519Generate">,
  name: string,
): Promise<NoteKeyStrings> {
  const pair = await crypto.ed25519Generate();
  const signer = await cosignatureSigner(crypto, name, pair.secretKey);
  return {
    signerKey: formatSignerKey(name, signer.keyId, SIGNATURE_TYPE_COSIGNATURE_V1, pair.secretKey),
    verifierKey: signer.verifier.verifierKey,
  };
}

/**
 * Add a witness cosignature to a signed checkpoint and return the new note. The text must be a valid
 * checkpoint; the caller (the witness) is responsible for having verified the log's signature and the
 * consistency with what it saw before (c2sp.org/tlog-witness), which is what the cosignature asserts.
 */
export async function cosignCheckpoint(
  signedCheckpoint: Uint8Array | string,
  witness: NoteSigner,
): Promise<string> {
  const note = parseNote(signedCheckpoint);
  parseCheckpoint(note.text);
  return signNote(note, [witness]);
}
