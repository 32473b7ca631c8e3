/**
 * The crypto suite: the one small interface through which the pure core reaches cryptographic
 * primitives. The Node implementation (src/platform/node-crypto.ts) sits on node:crypto for speed; the
 * browser implementation (src/platform/web-crypto.ts) on WebCrypto, with audited pure-JS (noble) where
 * WebCrypto lacks a primitive. Both must pass the same tests and vectors.
 *
 * Keys are raw bytes everywhere: an Ed25519 secret key is its 32-byte seed (RFC 8032 section 5.1.5), an
 * X25519 secret key its 32-byte scalar (RFC 7748 section 5), public keys are the 32-byte encodings.
 *
 * Every implementation refuses malformed arguments the same way, with the checks in ./checks.ts: a key
 * of the wrong length is KEY_INVALID, a non-byte argument or an out-of-range length INVALID_ARGUMENT, an
 * unknown algorithm UNSUPPORTED_ALGORITHM, an oversized input TOO_LARGE; never a TypeError. docs/crypto.md
 * describes both implementations.
 */

/** A raw key pair: 32-byte secret and 32-byte public key. */
export interface KeyPair {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** The AEADs the suite offers (the HPKE suites of RFC 9180 section 7.3 we need). */
export type AeadAlgorithm = "AES-128-GCM" | "AES-256-GCM" | "ChaCha20-Poly1305";

/** scrypt cost parameters (RFC 7914). */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** Cryptographic primitives used by the core. Every implementation passes test/unit/crypto-suite.test.ts. */
export interface CryptoSuite {
  /** "node" or "web": which implementation this is (for test names and benchmark labels). */
  readonly name: string;
  /** Cryptographically secure random bytes. */
  randomBytes(length: number): Uint8Array;
  /**
   * SHA-256 (FIPS 180-4). Synchronous on purpose: it is the hot path of the Merkle tree, where a promise
   * per hash would cost more than the hash.
   */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * SHA-512 (FIPS 180-4), synchronous like sha256. Used where a standard offers it beside SHA-256 (the
   * RFC 9530 Content-Digest "sha-512" algorithm).
   */
  sha512(data: Uint8Array): Uint8Array;
  /** HMAC-SHA256 (RFC 2104). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  /** HKDF-Extract with SHA-256 (RFC 5869 section 2.2). */
  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array>;
  /** HKDF-Expand with SHA-256 (RFC 5869 section 2.3). */
  hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Promise<Uint8Array>;
  /** Generate an Ed25519 key pair. */
  ed25519Generate(): Promise<KeyPair>;
  /** The Ed25519 public key of a 32-byte seed. */
  ed25519PublicKey(secretKey: Uint8Array): Promise<Uint8Array>;
  /** Ed25519 signature (RFC 8032 section 5.1.6), 64 bytes. */
  ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  /** Ed25519 verification (RFC 8032 section 5.1.7); false for any malformed key or signature, never a throw. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /** Generate an X25519 key pair. */
  x25519Generate(): Promise<KeyPair>;
  /** The X25519 public key of a 32-byte scalar. */
  x25519PublicKey(secretKey: Uint8Array): Promise<Uint8Array>;
  /** X25519 (RFC 7748 section 5); throws KEY_INVALID when the shared secret is all zeros (section 6.1). */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array>;
  /** AEAD encryption: ciphertext with the 16-byte tag appended. */
  aeadSeal(
    algorithm: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
  ): Promise<Uint8Array>;
  /** AEAD decryption; throws DECRYPTION_FAILED when the tag does not verify. */
  aeadOpen(
    algorithm: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
  ): Promise<Uint8Array>;
  /** scrypt (RFC 7914) for passphrase-protected key files. */
  scrypt(passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams, length: number): Promise<Uint8Array>;
}
