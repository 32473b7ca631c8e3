/**
 * A cache from a caller's key bytes to the platform's parsed key object (a node:crypto KeyObject, a
 * WebCrypto CryptoKey). Importing a raw key costs more than using it (tens of microseconds in Node, an
 * async round trip in WebCrypto), while the same Uint8Array is usually passed again and again (a node's
 * own secret key, a recipient's public key, an HPKE context's AEAD key).
 *
 * Entries are keyed by the array's identity (a WeakMap, so they die with the array) and hold a private
 * copy of its bytes, compared on every hit: a caller that overwrites the array (for example to zeroize
 * a secret) gets a fresh import, never the stale key.
 */
import { constantTimeEqual } from "../encoding/bytes.ts";

/** An identity-keyed, content-checked cache of parsed keys. */
export class KeyCache<K> {
  readonly #entries = new WeakMap<Uint8Array, { readonly copy: Uint8Array; readonly value: K }>();

  /** The cached value for these bytes, or undefined when absent or when the bytes have changed. */
  get(bytes: Uint8Array): K | undefined {
    const entry = this.#entries.get(bytes);
    return entry !== undefined && constantTimeEqual(entry.copy, bytes) ? entry.value : undefined;
  }

  /** Remember the value for these bytes. */
  set(bytes: Uint8Array, value: K): void {
    this.#entries.set(bytes, { copy: bytes.slice(), value });
  }
}
