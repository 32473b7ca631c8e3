/**
 * Who is calling (docs/api.md section 2): every request but the public ones carries an RFC 9421 signature
 * (RFC 9530 Content-Digest over its body) that the verifier of src/core/http checks: covered components,
 * clock window, key, signature, digest, and a nonce never seen before. The keyid resolves against the
 * ledger state at the time of the request: `org:<id>` to an active org's signKey, `patient:<id>` to an
 * enrolled patient's, `consortium:<hex>` to a genesis consortium key (before genesis, to the key itself:
 * a genesis is self-signed by its consortium keys).
 *
 * Every failure is a 401 with its own code: AUTH_REQUIRED (no signature), AUTH_INVALID (a signature that
 * breaks the policy: components, parameters, a stale or future `created`, an unknown keyid),
 * SIGNATURE_INVALID, DIGEST_MISMATCH, AUTH_REPLAYED. Authentication happens before anything is read or
 * written for the caller, so a refused request changes nothing.
 */
import { fromHex } from "../core/encoding/bytes.ts";
import { LedgerError, isLedgerError } from "../core/errors.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import {
  MEDLEDGER_SIGNATURE_LABEL,
  ReplayCache,
  createRequestVerifier,
  readRequestSignature,
  type HttpRequest,
  type RequestVerifier,
} from "../core/http/index.ts";
import type { LedgerNode } from "../node/node.ts";
import { AUTH_CODES } from "./errors.ts";
import { HEX32, PATIENT_ID } from "./input.ts";
import type { Caller } from "./rights.ts";

const ORG_ID = /^[a-z][a-z0-9-]{0,63}$/;

/** What the authenticator needs. */
export interface AuthOptions {
  readonly crypto: CryptoSuite;
  readonly node: LedgerNode;
  /** Milliseconds since the epoch. */
  readonly clock: () => number;
  readonly skewSeconds: number;
  readonly replayCacheEntries: number;
  /** When given, requests must cover @authority and name one of these (host[:port]). */
  readonly authorities?: readonly string[];
  /**
   * Unix seconds: signatures created before are refused. The server passes its start time, so a request
   * accepted before a restart (whose nonce the new replay cache never saw) cannot be replayed after it.
   */
  readonly notBefore?: number;
}

/** The parts of an incoming request authentication reads. */
export interface IncomingRequest {
  readonly method: string;
  /** The request target as received (origin-form: path and query). */
  readonly target: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body?: Uint8Array | undefined;
}

/** Most decoded signing keys the authenticator keeps (orgs and recently active patients). */
const KEY_ARRAYS_MAX = 10_000;

/** Resolves keyids against the node's current state and verifies requests. */
export class Authenticator {
  readonly #node: LedgerNode;
  readonly #verifier: RequestVerifier;
  /**
   * One decoded array per signing key, so the crypto suite's key cache (keyed by array identity) hits
   * instead of importing the key on every request. Bounded: cleared when it grows past KEY_ARRAYS_MAX.
   */
  readonly #keyArrays = new Map<string, Uint8Array>();

  constructor(options: AuthOptions) {
    this.#node = options.node;
    this.#verifier = createRequestVerifier({
      crypto: options.crypto,
      clock: options.clock,
      resolveKey: (keyid) => {
        const caller = this.resolve(keyid);
        return caller === undefined ? undefined : this.#keyArray(caller.signKey);
      },
      skewSeconds: options.skewSeconds,
      replayCache: new ReplayCache(options.replayCacheEntries),
      ...(options.authorities === undefined ? {} : { authorities: options.authorities }),
      ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore }),
    });
  }

  #keyArray(hex: string): Uint8Array {
    let key = this.#keyArrays.get(hex);
    if (key === undefined) {
      if (this.#keyArrays.size >= KEY_ARRAYS_MAX) this.#keyArrays.clear();
      key = fromHex(hex);
      this.#keyArrays.set(hex, key);
    }
    return key;
  }

  /** The caller a keyid names in the current state, or undefined. */
  resolve(keyid: string): Caller | undefined {
    const colon = keyid.indexOf(":");
    if (colon < 0) return undefined;
    const kind = keyid.slice(0, colon);
    const id = keyid.slice(colon + 1);
    const state = this.#node.state;
    if (kind === "org" && ORG_ID.test(id)) {
      const org = state.orgs.get(id);
      if (org === undefined || org.retiredAt !== null) return undefined;
      return { kind: "org", id, keyid, signKey: org.signKey };
    }
    if (kind === "patient" && PATIENT_ID.test(id)) {
      const patient = state.patients.get(id);
      return patient === undefined ? undefined : { kind: "patient", id, keyid, signKey: patient.signKey };
    }
    if (kind === "consortium" && HEX32.test(id)) {
      const consortium = state.consortium;
      if (consortium !== null && !consortium.keys.includes(id)) return undefined;
      return { kind: "consortium", id, keyid, signKey: id };
    }
    return undefined;
  }

  /**
   * The keyid a request claims, read without verifying anything: lets a streamed upload refuse an
   * unsigned request, or one from an unknown caller, before reading its body. Throws the 401 codes.
   */
  claimedCaller(request: IncomingRequest): Caller {
    try {
      const read = readRequestSignature(toHttpRequest(request), MEDLEDGER_SIGNATURE_LABEL);
      const keyid = read.input.params.keyid;
      const caller = keyid === undefined ? undefined : this.resolve(keyid);
      if (caller === undefined)
        throw new LedgerError("AUTH_INVALID", "the signature's keyid is not known to this node");
      return caller;
    } catch (err) {
      throw asAuthError(err);
    }
  }

  /** Verify a request and return its caller; throws a 401 LedgerError (or 429 when the cache is full). */
  async authenticate(request: IncomingRequest): Promise<Caller> {
    let keyid: string;
    try {
      ({ keyid } = await this.#verifier.verify(toHttpRequest(request)));
    } catch (err) {
      throw asAuthError(err);
    }
    const caller = this.resolve(keyid);
    if (caller === undefined) throw new LedgerError("AUTH_INVALID", "the caller's key is no longer valid");
    return caller;
  }
}

/** The request as the verifier reads it: an absolute URL on the Host the client addressed. */
function toHttpRequest(request: IncomingRequest): HttpRequest {
  if (!request.target.startsWith("/")) {
    throw new LedgerError("AUTH_INVALID", "the request target must be a path (origin-form)");
  }
  const hostHeader = request.headers.host;
  const host = typeof hostHeader === "string" && hostHeader !== "" ? hostHeader : "localhost";
  return {
    method: request.method,
    url: `http://${host}${request.target}`,
    headers: request.headers,
    body: request.body,
  };
}

/** Any refusal while authenticating answers 401: a malformed signature field is a wrong signature. */
function asAuthError(err: unknown): unknown {
  if (!isLedgerError(err)) return err;
  if (AUTH_CODES.has(err.code) || err.code === "AUTH_REPLAY_CACHE_FULL" || err.code === "INTERNAL")
    return err;
  return new LedgerError("AUTH_INVALID", err.message, { cause: err });
}
