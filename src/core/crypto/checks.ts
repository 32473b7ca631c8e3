/**
 * Argument checks shared by every CryptoSuite implementation, so that the Node and the browser suites
 * refuse exactly the same inputs with exactly the same LedgerError codes (and never with a TypeError).
 */
import { LedgerError } from "../errors.ts";
import type { AeadAlgorithm, ScryptParams } from "./suite.ts";

/** Length of every X25519 and Ed25519 key, secret or public (RFC 7748 section 5, RFC 8032 section 5.1.5). */
export const KEY_LENGTH = 32;
/** Length of an Ed25519 signature (RFC 8032 section 5.1.6). */
export const SIGNATURE_LENGTH = 64;
/** AEAD nonce length of all three AEADs we offer (RFC 9180 section 7.3: Nn = 12). */
export const AEAD_NONCE_LENGTH = 12;
/** AEAD tag length of all three AEADs we offer (RFC 9180 section 7.3: Nt = 16). */
export const AEAD_TAG_LENGTH = 16;
/** HKDF-SHA256 can expand at most 255 * HashLen bytes (RFC 5869 section 2.3). */
export const HKDF_SHA256_MAX_LENGTH = 255 * 32;
/** Largest randomBytes request we serve in one call. */
export const MAX_RANDOM_LENGTH = 1 << 20;
/** Largest AEAD plaintext or ciphertext we accept in one call (payloads are chunked above this). */
export const MAX_AEAD_LENGTH = 64 * 1024 * 1024;
/** Largest scrypt output we produce. */
export const MAX_SCRYPT_LENGTH = 1024;
/** Bounds on scrypt cost at the suite level (key files apply tighter ones): at most 1 GiB of memory. */
export const SCRYPT_MAX_N = 1 << 20;
export const SCRYPT_MAX_R = 32;
export const SCRYPT_MAX_P = 16;
export const SCRYPT_MAX_MEMORY = 1 << 30;

/** Throw INVALID_ARGUMENT unless the value is a Uint8Array (a Buffer is one too). */
export function requireBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new LedgerError("INVALID_ARGUMENT", `${what} must be a Uint8Array`);
  }
}

/** Throw KEY_INVALID unless the value is a 32-byte Uint8Array. */
export function requireKey(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== KEY_LENGTH) {
    throw new LedgerError("KEY_INVALID", `${what} must be ${KEY_LENGTH} bytes`);
  }
}

/** Throw INVALID_ARGUMENT unless the value is an integer in [min, max]. */
export function requireLength(
  value: unknown,
  min: number,
  max: number,
  what: string,
): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new LedgerError("INVALID_ARGUMENT", `${what} must be an integer in [${min}, ${max}]`);
  }
}

/** Key length of an AEAD (RFC 9180 section 7.3, Nk); UNSUPPORTED_ALGORITHM for anything else. */
export function aeadKeyLength(algorithm: unknown): number {
  switch (algorithm) {
    case "AES-128-GCM":
      return 16;
    case "AES-256-GCM":
    case "ChaCha20-Poly1305":
      return 32;
    default:
      throw new LedgerError("UNSUPPORTED_ALGORITHM", `unsupported AEAD ${String(algorithm)}`);
  }
}

/** Check every AEAD argument: algorithm, key and nonce lengths, byte inputs and size bounds. */
export function checkAeadArguments(
  algorithm: AeadAlgorithm,
  key: unknown,
  nonce: unknown,
  aad: unknown,
  data: unknown,
): void {
  const keyLength = aeadKeyLength(algorithm);
  if (!(key instanceof Uint8Array) || key.length !== keyLength) {
    throw new LedgerError("KEY_INVALID", `${algorithm} key must be ${keyLength} bytes`);
  }
  if (!(nonce instanceof Uint8Array) || nonce.length !== AEAD_NONCE_LENGTH) {
    throw new LedgerError("INVALID_ARGUMENT", `AEAD nonce must be ${AEAD_NONCE_LENGTH} bytes`);
  }
  requireBytes(aad, "AEAD associated data");
  requireBytes(data, "AEAD input");
  if (data.length > MAX_AEAD_LENGTH + AEAD_TAG_LENGTH || aad.length > MAX_AEAD_LENGTH) {
    throw new LedgerError("TOO_LARGE", `AEAD input above ${MAX_AEAD_LENGTH} bytes`);
  }
}

/** Check an AEAD ciphertext is long enough to hold its tag; a shorter one cannot decrypt. */
export function checkCiphertextLength(ciphertext: Uint8Array): void {
  if (ciphertext.length < AEAD_TAG_LENGTH) {
    throw new LedgerError("DECRYPTION_FAILED", "ciphertext is shorter than the AEAD tag");
  }
}

/** Check HKDF-Expand arguments (RFC 5869 section 2.3: L <= 255 * HashLen). */
export function checkHkdfExpand(prk: unknown, info: unknown, length: unknown): asserts length is number {
  requireBytes(prk, "HKDF PRK");
  requireBytes(info, "HKDF info");
  requireLength(length, 0, HKDF_SHA256_MAX_LENGTH, "HKDF output length");
  if (prk.length < 32) throw new LedgerError("INVALID_ARGUMENT", "HKDF PRK must be at least HashLen bytes");
}

/**
 * Check scrypt arguments (RFC 7914 section 2: N a power of two greater than 1, r * p < 2^30) against
 * the suite's bounds, so a hostile parameter cannot make us allocate gigabytes or spin for hours.
 */
export function checkScrypt(
  passphrase: unknown,
  salt: unknown,
  params: unknown,
  length: unknown,
): ScryptParams {
  requireBytes(passphrase, "scrypt passphrase");
  requireBytes(salt, "scrypt salt");
  requireLength(length, 1, MAX_SCRYPT_LENGTH, "scrypt output length");
  if (typeof params !== "object" || params === null) {
    throw new LedgerError("INVALID_ARGUMENT", "scrypt parameters must be an object");
  }
  const { N, r, p } = params as Record<string, unknown>;
  if (typeof N !== "number" || !Number.isInteger(N) || N < 2 || (N & (N - 1)) !== 0) {
    throw new LedgerError("INVALID_ARGUMENT", "scrypt N must be a power of two greater than 1");
  }
  requireLength(r, 1, SCRYPT_MAX_R, "scrypt r");
  requireLength(p, 1, SCRYPT_MAX_P, "scrypt p");
  if (N > SCRYPT_MAX_N || 128 * N * r > SCRYPT_MAX_MEMORY) {
    throw new LedgerError("TOO_LARGE", "scrypt parameters need more memory than the suite allows");
  }
  return { N, r, p };
}

/** True when every byte is zero, in time that depends only on the length (RFC 7748 section 6.1 check). */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}
