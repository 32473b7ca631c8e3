/**
 * The CryptoSuite on node:crypto (OpenSSL): the fast implementation used by the node and the CLI.
 *
 * node:crypto works on KeyObjects, not raw bytes. Raw 32-byte keys are imported through JWK (RFC 8037
 * OKP keys), which OpenSSL 3 parses an order of magnitude faster than PKCS#8 or SPKI DER, and the parsed
 * KeyObjects are cached per caller array (src/core/crypto/key-cache.ts). Every call is synchronous
 * OpenSSL work returned as a resolved promise, except scrypt, which runs on the libuv thread pool.
 */
import * as nodeCryptoModule from "node:crypto";
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  randomFillSync,
  scrypt as scryptCallback,
  sign as nodeSign,
  verify as nodeVerify,
  type CipherGCMTypes,
  type KeyObject,
} from "node:crypto";
import { LedgerError } from "../core/errors.ts";
import {
  AEAD_TAG_LENGTH,
  KEY_LENGTH,
  MAX_RANDOM_LENGTH,
  SIGNATURE_LENGTH,
  checkAeadArguments,
  checkCiphertextLength,
  checkHkdfExpand,
  checkScrypt,
  isAllZero,
  requireBytes,
  requireKey,
  requireLength,
} from "../core/crypto/checks.ts";
import { KeyCache } from "../core/crypto/key-cache.ts";
import type { AeadAlgorithm, CryptoSuite, KeyPair } from "../core/crypto/suite.ts";

type OkpCurve = "Ed25519" | "X25519";

/** A parsed secret key and, once computed, its public key bytes. */
interface SecretEntry {
  readonly curve: OkpCurve;
  readonly key: KeyObject;
  publicKey: Uint8Array | undefined;
}

const secretKeys = new KeyCache<SecretEntry>();
const publicKeys: Record<OkpCurve, KeyCache<KeyObject>> = {
  Ed25519: new KeyCache<KeyObject>(),
  X25519: new KeyCache<KeyObject>(),
};
/** The block counter of HKDF's first output block (RFC 5869 section 2.3). */
const COUNTER_ONE = Uint8Array.of(1);

const NODE_CIPHERS: Record<AeadAlgorithm, string> = {
  "AES-128-GCM": "aes-128-gcm",
  "AES-256-GCM": "aes-256-gcm",
  "ChaCha20-Poly1305": "chacha20-poly1305",
};

/**
 * A plain Uint8Array view of a Buffer (no copy), so results compare equal to Uint8Arrays in tests. Only
 * for Buffers that OpenSSL bindings allocate on their own, never for pooled ones (Buffer.from of a string).
 */
function view(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Decode a JWK member into a fresh array (never a view of Buffer's shared pool, which holds other data). */
function fromBase64url(text: string | undefined): Uint8Array {
  const bytes = new Uint8Array(Buffer.from(text ?? "", "base64url"));
  if (bytes.length !== KEY_LENGTH)
    throw new LedgerError("INTERNAL", "OpenSSL exported a key of the wrong size");
  return bytes;
}

/** A cached secret KeyObject for 32 raw bytes (an Ed25519 seed or an X25519 scalar). */
function secretEntry(curve: OkpCurve, secretKey: Uint8Array): SecretEntry {
  const cached = secretKeys.get(secretKey);
  if (cached !== undefined && cached.curve === curve) return cached;
  // Node requires the JWK "x" member to be a string but derives the public key from "d" alone
  // (EVP_PKEY_new_raw_private_key); the RFC 8032 and RFC 7748 vectors in the tests pin that behaviour.
  const key = createPrivateKey({
    key: { kty: "OKP", crv: curve, d: base64url(secretKey), x: "" },
    format: "jwk",
  });
  const entry: SecretEntry = { curve, key, publicKey: undefined };
  secretKeys.set(secretKey, entry);
  return entry;
}

function publicOf(entry: SecretEntry): Uint8Array {
  // OpenSSL computed the public key at import; the private JWK carries it as "x", with no second
  // KeyObject to build and collect.
  entry.publicKey ??= fromBase64url(entry.key.export({ format: "jwk" }).x);
  return entry.publicKey;
}

/** A cached public KeyObject for 32 raw bytes. */
function publicKeyObject(curve: OkpCurve, publicKey: Uint8Array): KeyObject {
  const cache = publicKeys[curve];
  const cached = cache.get(publicKey);
  if (cached !== undefined) return cached;
  const key = createPublicKey({ key: { kty: "OKP", crv: curve, x: base64url(publicKey) }, format: "jwk" });
  cache.set(publicKey, key);
  return key;
}

/**
 * A fresh key pair: 32 random bytes are a complete Ed25519 seed (RFC 8032 section 5.1.5) or X25519
 * scalar (RFC 7748 section 5), and importing them is as fast as generateKeyPairSync. It also sidesteps a
 * Node 20 deadlock: exporting a JWK from a key made by generateKeyPairSync can hang forever when garbage
 * collection finalizes the key-generation job while the export holds the key's mutex.
 */
function generate(curve: OkpCurve): KeyPair {
  const secretKey = randomFillSync(new Uint8Array(KEY_LENGTH));
  return { secretKey, publicKey: publicOf(secretEntry(curve, secretKey)) };
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return view(createHmac("sha256", key).update(data).digest());
}

/** crypto.hash (Node 20.12+) is a one-shot digest without a Hash object; older 20.x falls back. */
const oneShotHash = (nodeCryptoModule as { hash?: (alg: string, data: Uint8Array, enc: "buffer") => Buffer })
  .hash;

function sha256(data: Uint8Array): Uint8Array {
  requireBytes(data, "SHA-256 input");
  return view(
    oneShotHash !== undefined
      ? oneShotHash("sha256", data, "buffer")
      : createHash("sha256").update(data).digest(),
  );
}

function sha512(data: Uint8Array): Uint8Array {
  requireBytes(data, "SHA-512 input");
  return view(
    oneShotHash !== undefined
      ? oneShotHash("sha512", data, "buffer")
      : createHash("sha512").update(data).digest(),
  );
}

function scryptAsync(
  passphrase: Uint8Array,
  salt: Uint8Array,
  N: number,
  r: number,
  p: number,
  length: number,
): Promise<Uint8Array> {
  // OpenSSL needs 128 * r * (N + p + 2) bytes (RFC 7914 section 5 working space); allow that and a margin.
  const maxmem = 128 * r * (N + p + 2) + (1 << 20);
  return new Promise((resolve, reject) => {
    scryptCallback(passphrase, salt, length, { N, r, p, maxmem }, (err, key) => {
      if (err) reject(new LedgerError("INTERNAL", "scrypt failed", { cause: err }));
      else resolve(view(key));
    });
  });
}

/** The CryptoSuite on node:crypto. */
export const nodeCrypto: CryptoSuite = {
  name: "node",

  randomBytes(length) {
    requireLength(length, 0, MAX_RANDOM_LENGTH, "random length");
    return randomFillSync(new Uint8Array(length));
  },

  sha256,

  sha512,

  async hmacSha256(key, data) {
    requireBytes(key, "HMAC key");
    requireBytes(data, "HMAC input");
    return hmac(key, data);
  },

  async hkdfExtract(salt, ikm) {
    requireBytes(salt, "HKDF salt");
    requireBytes(ikm, "HKDF input keying material");
    // RFC 5869 section 2.2: an absent salt is HashLen zeros, which HMAC's zero padding makes identical
    // to the empty key node:crypto accepts.
    return hmac(salt, ikm);
  },

  async hkdfExpand(prk, info, length) {
    checkHkdfExpand(prk, info, length);
    // RFC 5869 section 2.3: T(i) = HMAC(PRK, T(i-1) | info | i). HPKE asks for 12 to 32 bytes, which
    // is T(1) alone: one HMAC.
    if (length <= 32) {
      const t1 = createHmac("sha256", prk).update(info).update(COUNTER_ONE).digest();
      return length === 32 ? view(t1) : view(t1).slice(0, length);
    }
    const out = new Uint8Array(length);
    let previous: Uint8Array = new Uint8Array(0);
    for (let i = 1, offset = 0; offset < length; i++, offset += 32) {
      previous = view(
        createHmac("sha256", prk).update(previous).update(info).update(Uint8Array.of(i)).digest(),
      );
      out.set(previous.subarray(0, Math.min(32, length - offset)), offset);
    }
    return out;
  },

  async ed25519Generate() {
    return generate("Ed25519");
  },

  async ed25519PublicKey(secretKey) {
    requireKey(secretKey, "Ed25519 secret key");
    return publicOf(secretEntry("Ed25519", secretKey));
  },

  async ed25519Sign(secretKey, message) {
    requireKey(secretKey, "Ed25519 secret key");
    requireBytes(message, "message");
    return view(nodeSign(null, message, secretEntry("Ed25519", secretKey).key));
  },

  async ed25519Verify(publicKey, message, signature) {
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== KEY_LENGTH) return false;
    if (!(message instanceof Uint8Array)) return false;
    if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LENGTH) return false;
    try {
      return nodeVerify(null, message, publicKeyObject("Ed25519", publicKey), signature);
    } catch {
      return false;
    }
  },

  async x25519Generate() {
    return generate("X25519");
  },

  async x25519PublicKey(secretKey) {
    requireKey(secretKey, "X25519 secret key");
    return publicOf(secretEntry("X25519", secretKey));
  },

  async x25519(secretKey, publicKey) {
    requireKey(secretKey, "X25519 secret key");
    requireKey(publicKey, "X25519 public key");
    let shared: Uint8Array;
    try {
      shared = view(
        diffieHellman({
          privateKey: secretEntry("X25519", secretKey).key,
          publicKey: publicKeyObject("X25519", publicKey),
        }),
      );
    } catch (cause) {
      // OpenSSL refuses an all-zero result itself (RFC 7748 section 6.1); report it as a bad key.
      throw new LedgerError("KEY_INVALID", "X25519 with this public key gives no shared secret", { cause });
    }
    if (isAllZero(shared)) throw new LedgerError("KEY_INVALID", "X25519 shared secret is all zeros");
    return shared;
  },

  async aeadSeal(algorithm, key, nonce, aad, plaintext) {
    checkAeadArguments(algorithm, key, nonce, aad, plaintext);
    const cipher = createCipheriv(NODE_CIPHERS[algorithm] as CipherGCMTypes, key, nonce, {
      authTagLength: AEAD_TAG_LENGTH,
    });
    cipher.setAAD(aad);
    const body = cipher.update(plaintext);
    cipher.final();
    const tag = cipher.getAuthTag();
    const out = new Uint8Array(body.length + AEAD_TAG_LENGTH);
    out.set(body, 0);
    out.set(tag, body.length);
    return out;
  },

  async aeadOpen(algorithm, key, nonce, aad, ciphertext) {
    checkAeadArguments(algorithm, key, nonce, aad, ciphertext);
    checkCiphertextLength(ciphertext);
    const split = ciphertext.length - AEAD_TAG_LENGTH;
    const decipher = createDecipheriv(NODE_CIPHERS[algorithm] as CipherGCMTypes, key, nonce, {
      authTagLength: AEAD_TAG_LENGTH,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(ciphertext.subarray(split));
    const body = decipher.update(ciphertext.subarray(0, split));
    try {
      decipher.final();
    } catch (cause) {
      body.fill(0);
      throw new LedgerError("DECRYPTION_FAILED", `${algorithm} tag does not verify`, { cause });
    }
    return view(body);
  },

  async scrypt(passphrase, salt, params, length) {
    const { N, r, p } = checkScrypt(passphrase, salt, params, length);
    return scryptAsync(passphrase, salt, N, r, p, length);
  },
};
