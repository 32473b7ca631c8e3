/**
 * Request authentication of the node's HTTP API (docs/http-auth.md): what medledger requires of an
 * RFC 9421 signature, and the client's signer that meets it.
 *
 * A request is accepted when its signature labelled "sig1":
 *   - covers @method, @path, @query when the URL has a query, and content-digest when there is a body;
 *   - carries created, nonce and keyid (and, when alg is given, alg="ed25519");
 *   - was created within the skew window (default 300 s) of the node's clock, and has not expired;
 *   - names a keyid the caller's resolver knows, and verifies under that key;
 *   - has a Content-Digest (RFC 9530) that matches the body;
 *   - has a (keyid, nonce) pair the node has not seen within the window (then the pair is recorded).
 * Each check refuses with its own LedgerError code, in that order of cost: cheap checks first, the
 * signature after, and the nonce recorded last, so an unauthenticated request never fills the cache.
 *
 * Pure: the clock is a function the caller injects; no Date.now, no I/O.
 */
import type { CryptoSuite } from "../crypto/suite.ts";
import { toBase64 } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import { contentDigest, verifyContentDigest } from "./content-digest.ts";
import {
  ALG_ED25519,
  checkRequestSignature,
  combinedFieldValue,
  createMessageSignature,
  readRequestSignature,
  type HttpRequest,
  type SignatureInput,
  type SignatureParams,
} from "./message-signatures.ts";
import { ReplayCache } from "./replay-cache.ts";

/** The signature label medledger clients use and nodes verify. */
export const MEDLEDGER_SIGNATURE_LABEL = "sig1";
/** The tag medledger clients put on their signatures (RFC 9421 section 2.3): names the application. */
export const MEDLEDGER_SIGNATURE_TAG = "medledger";
/** Default clock window: `created` may be this many seconds away from the node's clock, either way. */
export const DEFAULT_SKEW_SECONDS = 300;
/** Largest skew window a node may configure (one hour). */
export const MAX_SKEW_SECONDS = 3600;
/** Random bytes in a signer's nonce (144 bits, 24 base64 characters). */
export const NONCE_BYTES = 18;
/** Shortest nonce a node accepts: a guessable nonce would let others burn a client's requests. */
export const MIN_NONCE_LENGTH = 16;

/** Milliseconds since the Unix epoch; the node passes `Date.now`, tests a fixed or stepping clock. */
export type Clock = () => number;

/** Resolves a keyid ("org:hospital", "patient:<hex id>") to its Ed25519 public key, or undefined. */
export type KeyResolver = (keyid: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

/** The crypto the verifier needs. */
export type VerifierCrypto = Pick<CryptoSuite, "sha256" | "sha512" | "ed25519Verify">;

/** The crypto the signer needs. */
export type SignerCrypto = Pick<CryptoSuite, "sha256" | "sha512" | "randomBytes" | "ed25519Sign">;

/** How a node verifies requests. */
export interface RequestVerifierOptions {
  readonly crypto: VerifierCrypto;
  /** The node's clock. */
  readonly clock: Clock;
  /** Maps a keyid to its public key; undefined for a key the node does not know. */
  readonly resolveKey: KeyResolver;
  /** Seconds `created` may differ from the node's clock (default 300, at most 3600). */
  readonly skewSeconds?: number;
  /** The replay cache to use (default: a new one with the default cap). */
  readonly replayCache?: ReplayCache;
  /**
   * When given, @authority must be covered and be one of these (the node's own names, as host or
   * host:port, the port left out when it is the scheme's default): stops a request signed for one node
   * from being replayed to another, whose replay cache never saw its nonce.
   */
  readonly authorities?: readonly string[];
  /** When given, the signature's tag must be this (e.g. MEDLEDGER_SIGNATURE_TAG). */
  readonly tag?: string;
  /**
   * When given (Unix seconds), signatures created earlier are refused. A node passes its start time:
   * its replay cache lives in memory and starts empty, so without this a request accepted in the last
   * window before a restart could be replayed after it (docs/http-auth.md, "Restarts").
   */
  readonly notBefore?: number;
}

/** What a verified request tells the node. */
export interface VerifiedRequest {
  /** The key that signed; the caller's resolver mapped it to the key that verified. */
  readonly keyid: string;
  /** Creation time, Unix seconds. */
  readonly created: number;
  readonly nonce: string;
  /** The covered components, in order. */
  readonly components: readonly string[];
  /** All signature parameters as sent. */
  readonly params: SignatureParams;
}

/** A node's request verifier. */
export interface RequestVerifier {
  /** Verify a request; resolves to what it proves, or rejects with a LedgerError. */
  verify(request: HttpRequest): Promise<VerifiedRequest>;
  /** The replay cache (for metrics: its size against its cap). */
  readonly replayCache: ReplayCache;
}

/** The parameters the policy requires, checked. */
interface PolicyParams {
  readonly keyid: string;
  readonly nonce: string;
  readonly created: number;
  readonly expires: number | undefined;
}

function authInvalid(message: string): never {
  throw new LedgerError("AUTH_INVALID", message);
}

function nowSeconds(clock: Clock): number {
  const ms = clock();
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new LedgerError("INTERNAL", "the injected clock returned a non-finite time");
  }
  return Math.floor(ms / 1000);
}

/** The request's URL, parsed; INVALID_ARGUMENT when it is not an absolute URL. */
function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch (cause) {
    throw new LedgerError("INVALID_ARGUMENT", "the request URL must be an absolute URL", { cause });
  }
}

/** True when the request has content: a body of at least one byte. */
function hasBody(request: HttpRequest): boolean {
  return request.body !== undefined && request.body.length > 0;
}

/** The components medledger requires for this request (docs/http-auth.md). */
export function requiredComponents(request: HttpRequest): string[] {
  const required = ["@method", "@path"];
  if (parseUrl(request.url).search !== "") required.push("@query");
  if (hasBody(request)) required.push("content-digest");
  return required;
}

/** Build a node's request verifier. */
export function createRequestVerifier(options: RequestVerifierOptions): RequestVerifier {
  const skew = options.skewSeconds ?? DEFAULT_SKEW_SECONDS;
  if (!Number.isSafeInteger(skew) || skew < 0 || skew > MAX_SKEW_SECONDS) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `the skew window must be an integer of 0 to ${MAX_SKEW_SECONDS} seconds`,
    );
  }
  const replayCache = options.replayCache ?? new ReplayCache();
  const authorities =
    options.authorities === undefined ? undefined : new Set(options.authorities.map((a) => a.toLowerCase()));
  const { crypto, clock, resolveKey, tag, notBefore } = options;
  if (notBefore !== undefined && !Number.isSafeInteger(notBefore)) {
    throw new LedgerError("INVALID_ARGUMENT", "notBefore must be an integer number of Unix seconds");
  }

  /** The policy checks that need no key: components, parameters, clock window. */
  function checkPolicy(
    request: HttpRequest,
    input: SignatureInput,
    now: number,
    floor: number,
  ): PolicyParams {
    const { components, params } = input;
    for (const name of requiredComponents(request)) {
      if (!components.includes(name)) {
        authInvalid(`the signature must cover ${name} (${explainRequired(name)}): sign again covering it`);
      }
    }
    if (authorities !== undefined) {
      if (!components.includes("@authority")) authInvalid("the signature must cover @authority on this node");
      const authority = parseUrl(request.url).host;
      if (!authorities.has(authority)) {
        authInvalid(
          `the request is for ${authority}, which is not this node: sign requests for the node you send them to`,
        );
      }
    }
    if (params.keyid === undefined) authInvalid('the signature has no keyid: add keyid="<your key id>"');
    if (params.nonce === undefined)
      authInvalid("the signature has no nonce: add a fresh random nonce to every request");
    if (params.nonce.length < MIN_NONCE_LENGTH) {
      authInvalid(
        `the nonce is shorter than ${MIN_NONCE_LENGTH} characters: use ${NONCE_BYTES} random bytes in base64`,
      );
    }
    if (tag !== undefined && params.tag !== tag) authInvalid(`the signature's tag must be "${tag}"`);
    if (params.alg !== undefined && params.alg !== ALG_ED25519) {
      throw new LedgerError(
        "UNSUPPORTED_ALGORITHM",
        `signature alg ${JSON.stringify(params.alg)} is not supported: sign with ed25519`,
      );
    }
    const created = params.created;
    if (created === undefined) authInvalid("the signature has no created time: add created=<Unix seconds>");
    if (created > now + skew) {
      authInvalid(
        `the signature was created ${created - now} s in the future of this node's clock (window ${skew} s): check the client's clock`,
      );
    }
    if (created + skew < floor) {
      authInvalid(
        `the signature was created ${floor - created} s ago, outside the ${skew} s window: sign the request again (and check the client's clock)`,
      );
    }
    if (notBefore !== undefined && created < notBefore) {
      authInvalid("the signature was created before this node started: sign the request again");
    }
    if (params.expires !== undefined) {
      if (params.expires < created) authInvalid("the signature expires before it was created");
      if (params.expires < floor) authInvalid("the signature has expired: sign the request again");
    }
    return { keyid: params.keyid, nonce: params.nonce, created, expires: params.expires };
  }

  return {
    replayCache,
    async verify(request) {
      const read = readRequestSignature(request, MEDLEDGER_SIGNATURE_LABEL);
      const now = nowSeconds(clock);
      // The cache's time never goes backwards; staleness is judged on it, so that a pair the cache
      // already dropped can never belong to a signature still inside the window.
      const floor = replayCache.advance(now);
      const { keyid, nonce, created, expires } = checkPolicy(request, read.input, now, floor);

      const publicKey = await resolveKey(keyid);
      if (publicKey === undefined) {
        authInvalid(
          `keyid ${JSON.stringify(keyid)} is not known to this node: check the keyid, or enroll the key first`,
        );
      }
      if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
        throw new LedgerError(
          "KEY_INVALID",
          `the key resolved for ${keyid} is not a 32-byte Ed25519 public key`,
        );
      }
      await checkRequestSignature(crypto, request, read, publicKey);

      if (read.input.components.includes("content-digest")) {
        // Covered and signed, so the field is as the signer sent it; the body must match it.
        const field = combinedFieldValue(request.headers, "content-digest")!;
        verifyContentDigest(crypto, field, request.body ?? new Uint8Array(0));
      }

      // Last, and in one synchronous step with the check: two copies of one request racing through the
      // awaits above cannot both pass. The pair is kept as long as the signature could be accepted.
      const lastAcceptable = Math.min(created + skew, expires ?? Infinity);
      replayCache.advance(nowSeconds(clock));
      replayCache.add(keyid, nonce, lastAcceptable);

      return { keyid, created, nonce, components: read.input.components, params: read.input.params };
    },
  };
}

function explainRequired(name: string): string {
  switch (name) {
    case "@query":
      return "the URL has a query";
    case "content-digest":
      return "the request has a body; send Content-Digest too";
    default:
      return "every request";
  }
}

// ---------------------------------------------------------------------------------------------------
// The client's signer
// ---------------------------------------------------------------------------------------------------

/** Who signs, and how. */
export interface RequestSignerOptions {
  /** The signer's keyid, e.g. "org:hospital" or "patient:<hex id>". */
  readonly keyid: string;
  /** The Ed25519 secret key (32-byte seed). */
  readonly secretKey: Uint8Array;
  /** The client's clock. */
  readonly clock: Clock;
  /** Seconds until the signature expires; omitted, the node's window alone bounds it. */
  readonly expiresInSeconds?: number;
  /** Cover @authority (default true): binds the request to the node it is sent to. */
  readonly coverAuthority?: boolean;
  /** The tag (default MEDLEDGER_SIGNATURE_TAG). */
  readonly tag?: string;
}

/**
 * The header fields a signed request adds: Content-Digest when there is a body, and the signature. (A
 * type, not an interface, so that it can be merged into any header record.)
 */
export type SignedRequestHeaders = {
  readonly "content-digest"?: string;
  readonly "signature-input": string;
  readonly signature: string;
};

/**
 * Sign a request for a medledger node: computes Content-Digest (sha-256) when there is a body, and
 * signs @method, @authority (unless turned off), @path, @query (when the URL has a query),
 * content-digest and content-type (when present) with created from the clock, a fresh random nonce,
 * keyid, alg="ed25519" and the medledger tag. Returns the fields to add to the request.
 */
export async function signRequest(
  crypto: SignerCrypto,
  request: HttpRequest,
  options: RequestSignerOptions,
): Promise<SignedRequestHeaders> {
  const created = nowSeconds(options.clock);
  const body = request.body;
  const digest = body !== undefined && body.length > 0 ? contentDigest(crypto, body) : undefined;
  // Sign the request as it will be sent: with our Content-Digest in place of any the caller set.
  const headers: Record<string, string | readonly string[] | undefined> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (lower === "content-digest" || lower === "signature-input" || lower === "signature") continue;
    headers[name] = value;
  }
  if (digest !== undefined) headers["content-digest"] = digest;
  const signed: HttpRequest = { method: request.method, url: request.url, headers, body };

  const components = ["@method"];
  if (options.coverAuthority ?? true) components.push("@authority");
  components.push("@path");
  if (parseUrl(request.url).search !== "") components.push("@query");
  if (digest !== undefined) components.push("content-digest");
  if (combinedFieldValue(headers, "content-type") !== undefined) components.push("content-type");

  const params: SignatureParams = {
    created,
    ...(options.expiresInSeconds === undefined ? {} : { expires: created + options.expiresInSeconds }),
    keyid: options.keyid,
    alg: ALG_ED25519,
    nonce: toBase64(crypto.randomBytes(NONCE_BYTES)),
    tag: options.tag ?? MEDLEDGER_SIGNATURE_TAG,
  };
  const fields = await createMessageSignature(crypto, signed, {
    label: MEDLEDGER_SIGNATURE_LABEL,
    components,
    params,
    secretKey: options.secretKey,
  });
  return {
    ...(digest === undefined ? {} : { "content-digest": digest }),
    "signature-input": fields.signatureInput,
    signature: fields.signature,
  };
}
