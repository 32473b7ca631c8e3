/**
 * Pre-checking an entry: the half of judging it that depends on its bytes alone, and so can run anywhere,
 * in any order, on another thread (DESIGN.md section 2, "Validation is deterministic"; docs/node.md,
 * "Parallel pre-checks").
 *
 * The validator (applyEntry) must judge the entries of the stream one after another, but most of its cost
 * depends on nothing the state holds: whether the bytes decode strictly (strict UTF-8 and JSON, the RFC 8785
 * canonical form, the schema, the signature order) and whether each signature verifies over its signed
 * content. precheckEntry computes exactly that, with the same functions the validator uses (decodeEntry,
 * verifySignature), and binds the answer to the SHA-256 of the bytes it was given. applyEntry then uses a
 * pre-check only for bytes with that very SHA-256, and only its positive findings: "these bytes decode",
 * "signature i verifies". Everything else (a decoding failure and its reason, a signature that did not
 * verify) it finds out itself, as it would without a pre-check. So the verdicts, rejection codes and state
 * are the same with a pre-check, without one, or with one for other bytes: a pre-check only saves time.
 */
import type { CryptoSuite } from "../crypto/suite.ts";
import { decodeEntry, signedContentOf, verifySignature } from "./entry.ts";
import type { Entry } from "./schema.ts";

/** Signatures a pre-check can vouch for: one bit each in a 32-bit mask (MAX_SIGNATURES is 32). */
export const PRECHECK_SIGNATURE_BITS = 32;

/** What a pre-check found about exact entry bytes that decode strictly. */
export interface EntryPrecheck {
  /** SHA-256 of the bytes the pre-check was made for; applyEntry ignores it for any other bytes. */
  readonly digest: Uint8Array;
  /** Bit i set: the entry's signature i (in `sigs` order) verified. A clear bit proves nothing. */
  readonly verified: number;
  /**
   * The decoded entry, when the pre-check ran in the caller's thread; without it applyEntry reads the
   * bytes with a plain JSON.parse (they are known to be canonical, schema-valid JSON).
   */
  readonly entry?: Entry;
}

/**
 * Pre-check entry bytes: decode them strictly, verify every signature, and hash them. Null when the bytes
 * do not decode (applyEntry will refuse them and say why). Pure apart from the crypto suite handed in.
 */
export async function precheckEntry(crypto: CryptoSuite, bytes: Uint8Array): Promise<EntryPrecheck | null> {
  const decoded = decodeEntry(bytes);
  if (!decoded.ok) return null;
  const entry = decoded.entry;
  const content = signedContentOf(bytes, entry);
  let verified = 0;
  const count = Math.min(entry.sigs.length, PRECHECK_SIGNATURE_BITS);
  for (let i = 0; i < count; i++) {
    if (await verifySignature(crypto, entry, entry.sigs[i]!, content)) verified |= 1 << i;
  }
  return { digest: crypto.sha256(bytes), verified: verified >>> 0, entry };
}

/** True when a pre-check vouches for signature i. */
export function precheckVerified(verified: number, i: number): boolean {
  return i < PRECHECK_SIGNATURE_BITS && ((verified >>> i) & 1) === 1;
}
