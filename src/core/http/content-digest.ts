/**
 * RFC 9530 Content-Digest: a digest of the message content (the body bytes as sent, after any content
 * coding), carried as a Structured Field Dictionary from algorithm key to Byte Sequence (section 2):
 *
 *     Content-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:
 *
 * We produce sha-256 (the algorithm medledger uses everywhere) and verify sha-256 and sha-512, the two
 * algorithms the RFC 9530 section 7.2 registry marks "Active". Keys of other algorithms (the registry's
 * deprecated md5, sha, crc32c... or ones not yet invented) are ignored, as section 2 lets a recipient do;
 * a field that holds nothing but such keys is refused, since it proves nothing.
 */
import type { CryptoSuite } from "../crypto/suite.ts";
import { bytesEqual } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import { isInnerList, parseDictionary, serializeDictionary, type SfBounds } from "./structured-fields.ts";

/** The Content-Digest algorithms this build computes and verifies (RFC 9530 section 7.2, "Active"). */
export type DigestAlgorithm = "sha-256" | "sha-512";

/** The crypto Content-Digest needs. */
export type DigestCrypto = Pick<CryptoSuite, "sha256" | "sha512">;

/** Longest Content-Digest field value we parse. Both our algorithms together take 150 characters. */
export const MAX_CONTENT_DIGEST_LENGTH = 1024;

const DIGEST_LENGTHS: Readonly<Record<DigestAlgorithm, number>> = { "sha-256": 32, "sha-512": 64 };

const CONTENT_DIGEST_BOUNDS: SfBounds = {
  maxLength: MAX_CONTENT_DIGEST_LENGTH,
  maxMembers: 8,
  maxInnerListItems: 8,
  maxParameters: 8,
};

function isDigestAlgorithm(key: string): key is DigestAlgorithm {
  return key === "sha-256" || key === "sha-512";
}

function digest(crypto: DigestCrypto, algorithm: DigestAlgorithm, content: Uint8Array): Uint8Array {
  return algorithm === "sha-256" ? crypto.sha256(content) : crypto.sha512(content);
}

/** The Content-Digest field value for `content` (RFC 9530 section 2), sha-256 unless asked otherwise. */
export function contentDigest(
  crypto: DigestCrypto,
  content: Uint8Array,
  algorithm: DigestAlgorithm = "sha-256",
): string {
  if (!isDigestAlgorithm(algorithm)) {
    throw new LedgerError(
      "UNSUPPORTED_ALGORITHM",
      `unsupported Content-Digest algorithm ${String(algorithm)}`,
    );
  }
  const value = digest(crypto, algorithm, content);
  return serializeDictionary([[algorithm, { value: { type: "bytes", value }, params: [] }]]);
}

/**
 * Verify a Content-Digest field value against `content` and return the algorithms that were checked.
 * Every sha-256 and sha-512 member must match (DIGEST_MISMATCH otherwise); other members are ignored;
 * a field with no sha-256 or sha-512 member is UNSUPPORTED_ALGORITHM; a field that does not parse, or a
 * known algorithm whose value is not a Byte Sequence of the digest's length, is MALFORMED_INPUT.
 */
export function verifyContentDigest(
  crypto: DigestCrypto,
  fieldValue: string,
  content: Uint8Array,
): DigestAlgorithm[] {
  const dictionary = parseDictionary(fieldValue, "Content-Digest", CONTENT_DIGEST_BOUNDS);
  if (dictionary.length === 0) {
    throw new LedgerError("MALFORMED_INPUT", "Content-Digest is empty: send sha-256=:<base64 digest>:");
  }
  const checked: DigestAlgorithm[] = [];
  for (const [key, member] of dictionary) {
    if (!isDigestAlgorithm(key)) continue;
    const expectedLength = DIGEST_LENGTHS[key];
    if (
      isInnerList(member) ||
      member.value.type !== "bytes" ||
      member.value.value.length !== expectedLength
    ) {
      throw new LedgerError(
        "MALFORMED_INPUT",
        `Content-Digest ${key} must be a byte sequence of ${expectedLength} bytes (:<base64>:)`,
      );
    }
    if (!bytesEqual(digest(crypto, key, content), member.value.value)) {
      throw new LedgerError(
        "DIGEST_MISMATCH",
        `Content-Digest ${key} does not match the body: the body was changed or cut short in transit; send the request again`,
      );
    }
    checked.push(key);
  }
  if (checked.length === 0) {
    const keys = dictionary.map(([key]) => key).join(", ");
    throw new LedgerError(
      "UNSUPPORTED_ALGORITHM",
      `Content-Digest has no sha-256 or sha-512 digest (found: ${keys}): send sha-256=:<base64 digest>:`,
    );
  }
  return checked;
}
