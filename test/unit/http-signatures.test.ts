/**
 * Request authentication of the HTTP API (src/core/http): the published vectors first (RFC 9530
 * Content-Digest, RFC 9421 B.1.4 and B.2.6 on both crypto suites), then the structured-field subset, then
 * the medledger policy: round trips, every mutation refused with its code, the clock window, replays,
 * the replay cache's cap, and property tests that any single change to a signed request is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { CryptoSuite, KeyPair } from "../../src/core/crypto/suite.ts";
import { fromBase64, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { contentDigest, verifyContentDigest } from "../../src/core/http/content-digest.ts";
import {
  createMessageSignature,
  readRequestSignature,
  serializeSignatureParams,
  signatureBase,
  verifyMessageSignature,
  type HttpRequest,
} from "../../src/core/http/message-signatures.ts";
import { ReplayCache } from "../../src/core/http/replay-cache.ts";
import {
  DEFAULT_SKEW_SECONDS,
  createRequestVerifier,
  requiredComponents,
  signRequest,
  type RequestVerifierOptions,
} from "../../src/core/http/request-auth.ts";
import {
  parseDictionary,
  parseItem,
  serializeDictionary,
  serializeItem,
  type SfBareItem,
  type SfDictionary,
  type SfItem,
  type SfMember,
  type SfParameters,
} from "../../src/core/http/structured-fields.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";
import rfc9421 from "../vectors/rfc9421/ed25519.json" with { type: "json" };
import rfc9530 from "../vectors/rfc9530/content-digest.json" with { type: "json" };

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];

async function rejectsWith(fn: () => unknown, code: ErrorCode, what = ""): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (err: unknown) => {
      assert.ok(isLedgerError(err, code), `${what}: expected LedgerError ${code}, got ${String(err)}`);
      return true;
    },
  );
}

function fromBase64url(text: string): Uint8Array {
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
}

/** The B.1.4 key: the raw seed is the last 32 bytes of the PKCS#8 DER, the public key of the SPKI DER. */
const B14_SEED = fromBase64(rfc9421.key.pkcs8_private_key_base64).slice(-32);
const B14_PUBLIC = fromBase64(rfc9421.key.spki_public_key_base64).slice(-32);

/** The B.2 test request. */
const B2_REQUEST: HttpRequest = {
  method: rfc9421.request.method,
  url: rfc9421.request.url,
  headers: rfc9421.request.headers,
  body: utf8(rfc9421.request.body),
};

// ---------------------------------------------------------------------------------------------------
// Published vectors, on both suites
// ---------------------------------------------------------------------------------------------------

for (const crypto of SUITES) {
  describe(`published vectors with the ${crypto.name} crypto suite`, () => {
    describe("RFC 9530 Content-Digest", () => {
      for (const v of rfc9530.vectors) {
        it(`computes and verifies ${v.what}`, () => {
          const content = utf8(v.content);
          const algorithm = v.field.startsWith("sha-512") ? "sha-512" : "sha-256";
          assert.equal(contentDigest(crypto, content, algorithm), v.field);
          assert.deepEqual(verifyContentDigest(crypto, v.field, content), [algorithm]);
        });

        it(`refuses ${v.what} against changed content`, async () => {
          const changed = utf8(v.content + " ");
          await rejectsWith(() => verifyContentDigest(crypto, v.field, changed), "DIGEST_MISMATCH");
        });
      }

      it("verifies every supported member of a field with several, ignoring unknown ones", async () => {
        const [sha256, sha512] = rfc9530.vectors.filter((v) => v.content === '{"hello": "world"}\n');
        const content = utf8('{"hello": "world"}\n');
        const both = `${sha256!.field}, ${sha512!.field}`;
        assert.deepEqual(verifyContentDigest(crypto, both, content), ["sha-256", "sha-512"]);
        // md5 and sha are deprecated (RFC 9530 section 7.2): ignored beside a supported digest.
        const withDeprecated = `${rfc9530.deprecated[0]!.field}, ${sha256!.field};q=1`;
        assert.deepEqual(verifyContentDigest(crypto, withDeprecated, content), ["sha-256"]);
        // One bad supported member is enough to refuse, whatever the others say.
        const bad = `${sha256!.field}, sha-512=:${toBase64(new Uint8Array(64))}:`;
        await rejectsWith(() => verifyContentDigest(crypto, bad, content), "DIGEST_MISMATCH");
      });

      for (const v of rfc9530.deprecated) {
        it(`refuses a field with only ${v.what}`, async () => {
          await rejectsWith(
            () => verifyContentDigest(crypto, v.field, utf8(v.content)),
            "UNSUPPORTED_ALGORITHM",
          );
        });
      }

      it("refuses malformed fields", async () => {
        const content = utf8("x");
        for (const field of [
          "",
          "sha-256",
          "sha-256=abc",
          "sha-256=:AAAA:",
          'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="',
          "sha-256=(:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:)",
          "SHA-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
          "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,",
          "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        ]) {
          await rejectsWith(() => verifyContentDigest(crypto, field, content), "MALFORMED_INPUT", field);
        }
        await rejectsWith(() => verifyContentDigest(crypto, "a=1, ".repeat(300), content), "TOO_LARGE");
      });
    });

    describe("RFC 9421 B.1.4 test key", () => {
      it("is one key in its PKCS#8, SPKI and JWK forms", async () => {
        assert.equal(
          toHex(fromBase64(rfc9421.key.pkcs8_private_key_base64).slice(0, -32)),
          "302e020100300506032b657004220420",
        );
        assert.equal(
          toHex(fromBase64(rfc9421.key.spki_public_key_base64).slice(0, -32)),
          "302a300506032b6570032100",
        );
        assert.deepEqual(fromBase64url(rfc9421.key.jwk.d), B14_SEED);
        assert.deepEqual(fromBase64url(rfc9421.key.jwk.x), B14_PUBLIC);
        assert.deepEqual(await crypto.ed25519PublicKey(B14_SEED), B14_PUBLIC);
      });
    });

    describe("RFC 9421 B.2.6: signing a request using ed25519", () => {
      const v = rfc9421.b26;

      it("reproduces the published signature base byte for byte", () => {
        const serialized = serializeSignatureParams(v.components, { created: v.created, keyid: v.keyid });
        assert.equal(signatureBase(B2_REQUEST, v.components, serialized), v.signature_base);
      });

      it("reproduces the published Signature-Input and Signature", async () => {
        const fields = await createMessageSignature(crypto, B2_REQUEST, {
          label: v.label,
          components: v.components,
          params: { created: v.created, keyid: v.keyid },
          secretKey: B14_SEED,
        });
        assert.equal(fields.base, v.signature_base);
        assert.equal(fields.signatureInput, v.signature_input);
        // Ed25519 is deterministic (RFC 8032 section 5.1.6): the same key and base give the same bytes.
        assert.equal(fields.signature, v.signature);
      });

      it("verifies the published signature, and the request's sha-512 Content-Digest", async () => {
        const signed = withHeaders(B2_REQUEST, {
          "Signature-Input": v.signature_input,
          Signature: v.signature,
        });
        const input = await verifyMessageSignature(crypto, signed, v.label, B14_PUBLIC);
        assert.deepEqual(input.components, v.components);
        assert.deepEqual(input.params, { created: v.created, keyid: v.keyid });
        const digest = rfc9421.request.headers["Content-Digest"];
        assert.deepEqual(verifyContentDigest(crypto, digest, B2_REQUEST.body!), ["sha-512"]);
      });

      it("refuses the published signature on a changed request or under another key", async () => {
        const signed = withHeaders(B2_REQUEST, {
          "Signature-Input": v.signature_input,
          Signature: v.signature,
        });
        const other = await crypto.ed25519Generate();
        await rejectsWith(
          () => verifyMessageSignature(crypto, signed, v.label, other.publicKey),
          "SIGNATURE_INVALID",
        );
        const date = withHeaders(signed, { Date: "Tue, 20 Apr 2021 02:07:56 GMT" });
        await rejectsWith(
          () => verifyMessageSignature(crypto, date, v.label, B14_PUBLIC),
          "SIGNATURE_INVALID",
        );
        const get = { ...signed, method: "GET" };
        await rejectsWith(
          () => verifyMessageSignature(crypto, get, v.label, B14_PUBLIC),
          "SIGNATURE_INVALID",
        );
        const sig = v.signature.replace("wqcA", "wqcB");
        const flipped = withHeaders(signed, { Signature: sig });
        await rejectsWith(
          () => verifyMessageSignature(crypto, flipped, v.label, B14_PUBLIC),
          "SIGNATURE_INVALID",
        );
        await rejectsWith(() => verifyMessageSignature(crypto, signed, "sig1", B14_PUBLIC), "AUTH_REQUIRED");
      });
    });

    describe("medledger round trip", () => {
      it("a request signed by signRequest verifies", async () => {
        const keys = await crypto.ed25519Generate();
        const clock = () => T0_MS;
        const request = sampleRequest();
        const added = await signRequest(crypto, request, {
          keyid: "org:hospital",
          secretKey: keys.secretKey,
          clock,
        });
        const verifier = createRequestVerifier({
          crypto,
          clock,
          resolveKey: (keyid) => (keyid === "org:hospital" ? keys.publicKey : undefined),
        });
        const verified = await verifier.verify(withHeaders(request, added));
        assert.equal(verified.keyid, "org:hospital");
        assert.equal(verified.created, T0_MS / 1000);
      });
    });
  });
}

/** A copy of the request with header fields replaced (by case-insensitive name) or removed (undefined). */
function withHeaders(
  request: HttpRequest,
  changes: Record<string, string | readonly string[] | undefined>,
): HttpRequest {
  const headers: Record<string, string | readonly string[] | undefined> = {};
  const changed = new Set(Object.keys(changes).map((k) => k.toLowerCase()));
  for (const [name, value] of Object.entries(request.headers)) {
    if (!changed.has(name.toLowerCase())) headers[name] = value;
  }
  for (const [name, value] of Object.entries(changes)) if (value !== undefined) headers[name] = value;
  return { ...request, headers };
}

// ---------------------------------------------------------------------------------------------------
// Structured fields (RFC 8941)
// ---------------------------------------------------------------------------------------------------

const str = (value: string): SfBareItem => ({ type: "string", value });
const int = (value: number): SfBareItem => ({ type: "integer", value });

describe("structured fields (RFC 8941 subset)", () => {
  it("parses the RFC 8941 dictionary examples", () => {
    // Section 3.2.
    assert.deepEqual(parseDictionary('en="Applepie", da=:w4ZibGV0w6ZydGU=:', "t"), [
      ["en", { value: str("Applepie"), params: [] }],
      ["da", { value: { type: "bytes", value: utf8("\u00c6blet\u00e6rte") }, params: [] }],
    ]);
    assert.deepEqual(parseDictionary("a=?0, b, c; foo=bar", "t"), [
      ["a", { value: { type: "boolean", value: false }, params: [] }],
      ["b", { value: { type: "boolean", value: true }, params: [] }],
      ["c", { value: { type: "boolean", value: true }, params: [["foo", { type: "token", value: "bar" }]] }],
    ]);
    assert.deepEqual(parseDictionary("rating=1.5, feelings=(joy sadness);lvl=5, x=-0.25", "t"), [
      ["rating", { value: { type: "decimal", value: 1.5 }, params: [] }],
      [
        "feelings",
        {
          items: [
            { value: { type: "token", value: "joy" }, params: [] },
            { value: { type: "token", value: "sadness" }, params: [] },
          ],
          params: [["lvl", int(5)]],
        },
      ],
      ["x", { value: { type: "decimal", value: -0.25 }, params: [] }],
    ]);
    assert.equal(serializeDictionary(parseDictionary("a=?0,   b ,\tc;foo=bar", "t")), "a=?0, b, c;foo=bar");
    assert.deepEqual(parseDictionary("", "t"), []);
    assert.deepEqual(parseItem('"a \\"b\\" \\\\c"', "t"), { value: str('a "b" \\c'), params: [] });
    assert.equal(serializeItem(parseItem("-999999999999.999", "t")), "-999999999999.999");
    assert.equal(serializeItem(parseItem("1.500", "t")), "1.5");
    assert.equal(serializeItem(parseItem("5.0", "t")), "5.0");
    assert.equal(serializeItem(parseItem(":AQID:", "t")), ":AQID:");
    // Missing padding is accepted (section 4.2.7) and serialized padded.
    assert.equal(serializeItem(parseItem(":AQI:", "t")), ":AQI=:");
  });

  it("refuses what RFC 8941 refuses, repeated keys, and what is out of bounds", async () => {
    const malformed = [
      "a=1,",
      "a=1,,b=2",
      "A=1",
      "1a=1",
      "a=1 b=2",
      'a="unterminated',
      'a="bad \\n escape"',
      'a="tab\there"',
      "a=\u00e9",
      "a=1234567890123456",
      "a=1234567890123.5",
      "a=1.2345",
      "a=1.",
      "a=-",
      "a=:not base64!:",
      "a=:AQID",
      "a=:AQJ=:",
      "a=?2",
      "a=(1 2",
      "a=(1 2)x",
      "a=@1659578233",
      'a=%"display"',
      "a=1, a=2",
      "a=1;p=1;p=2",
      "a=(1;p;p)",
    ];
    for (const text of malformed) {
      await rejectsWith(() => parseDictionary(text, "t"), "MALFORMED_INPUT", JSON.stringify(text));
    }
    const bounds = { maxLength: 64, maxMembers: 2, maxInnerListItems: 2, maxParameters: 2 };
    for (const text of ["a=1, b=2, c=3", "a=(1 2 3)", "a=1;x;y;z", "a=" + "1".repeat(70)]) {
      await rejectsWith(() => parseDictionary(text, "t", bounds), "TOO_LARGE", text);
    }
  });

  it("parse(serialize(x)) is x for any dictionary", () => {
    fc.assert(
      fc.property(arbitraryDictionary(), (dictionary) => {
        const text = serializeDictionary(dictionary);
        const parsed = parseDictionary(text, "t", {
          maxLength: 1 << 20,
          maxMembers: 64,
          maxInnerListItems: 64,
          maxParameters: 64,
        });
        assert.deepEqual(parsed, dictionary);
        assert.equal(serializeDictionary(parsed), text);
      }),
      { numRuns: 300 },
    );
  });
});

const sfKey = fc
  .tuple(
    fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz*"),
    fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789_-.*"), maxLength: 8 }),
  )
  .map(([a, b]) => a + b);

const sfBareItem: fc.Arbitrary<SfBareItem> = fc.oneof(
  fc
    .integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 })
    .map((value) => ({ type: "integer" as const, value: value === 0 ? 0 : value })),
  fc
    .integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 })
    .map((n) => ({ type: "decimal" as const, value: n / 1000 === 0 ? 0 : n / 1000 })),
  fc
    .string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 20 })
    .map((value) => ({ type: "string" as const, value })),
  fc
    .tuple(
      fc.constantFrom(..."abcXYZ*"),
      fc.string({ unit: fc.constantFrom(..."az09!#$%&'*+-.^_`|~:/"), maxLength: 8 }),
    )
    .map(([a, b]) => ({ type: "token" as const, value: a + b })),
  fc.uint8Array({ maxLength: 40 }).map((value) => ({ type: "bytes" as const, value })),
  fc.boolean().map((value) => ({ type: "boolean" as const, value })),
);

const sfParams: fc.Arbitrary<SfParameters> = fc.uniqueArray(fc.tuple(sfKey, sfBareItem), {
  maxLength: 3,
  selector: ([k]) => k,
});

// fast-check's records have a null prototype; spread them into plain objects to compare with parsed ones.
const sfItem: fc.Arbitrary<SfItem> = fc
  .record({ value: sfBareItem, params: sfParams })
  .map((r) => ({ ...r }));

const sfMember: fc.Arbitrary<SfMember> = fc.oneof(
  sfItem,
  fc.record({ items: fc.array(sfItem, { maxLength: 4 }), params: sfParams }).map((r) => ({ ...r })),
);

function arbitraryDictionary(): fc.Arbitrary<SfDictionary> {
  return fc.uniqueArray(fc.tuple(sfKey, sfMember), { maxLength: 5, selector: ([k]) => k });
}

// ---------------------------------------------------------------------------------------------------
// The medledger policy
// ---------------------------------------------------------------------------------------------------

/** 2023-11-14T22:13:20Z, a whole second. */
const T0_MS = 1_700_000_000_000;
const T0 = T0_MS / 1000;

function sampleRequest(overrides: Partial<HttpRequest> = {}): HttpRequest {
  return {
    method: "POST",
    url: "https://node.example/v1/entries?since=3",
    headers: { "Content-Type": "application/json", "X-Request-Id": "abc" },
    body: utf8('{"kind":"record","patient":"p1"}'),
    ...overrides,
  };
}

interface Harness {
  readonly keys: ReadonlyMap<string, KeyPair>;
  /** The client's and the node's clocks, in ms, set separately. */
  clientMs: number;
  nodeMs: number;
  verifier(options?: Partial<RequestVerifierOptions>): ReturnType<typeof createRequestVerifier>;
  sign(request: HttpRequest, keyid?: string, crypto?: CryptoSuite): Promise<HttpRequest>;
}

async function harness(): Promise<Harness> {
  const keys = new Map<string, KeyPair>([
    ["org:hospital", await nodeCrypto.ed25519Generate()],
    ["org:lab", await nodeCrypto.ed25519Generate()],
    [`patient:${"ab".repeat(16)}`, await nodeCrypto.ed25519Generate()],
  ]);
  const h: Harness = {
    keys,
    clientMs: T0_MS,
    nodeMs: T0_MS,
    verifier(options = {}) {
      return createRequestVerifier({
        crypto: nodeCrypto,
        clock: () => h.nodeMs,
        resolveKey: (keyid) => keys.get(keyid)?.publicKey,
        ...options,
      });
    },
    async sign(request, keyid = "org:hospital", crypto = nodeCrypto) {
      const added = await signRequest(crypto, request, {
        keyid,
        secretKey: keys.get(keyid)!.secretKey,
        clock: () => h.clientMs,
      });
      return withHeaders(request, added);
    },
  };
  return h;
}

function field(request: HttpRequest, name: string): string {
  for (const [key, value] of Object.entries(request.headers)) {
    if (key.toLowerCase() === name && typeof value === "string") return value;
  }
  throw new Error(`no ${name}`);
}

/** Replace a substring of the Signature-Input field (which must occur). */
function editInput(request: HttpRequest, from: string | RegExp, to: string): HttpRequest {
  const input = field(request, "signature-input");
  const edited = input.replace(from, to);
  assert.notEqual(edited, input, `Signature-Input has no ${String(from)}`);
  return withHeaders(request, { "signature-input": edited });
}

/** Flip one bit of the signature bytes. */
function flipSignatureBit(request: HttpRequest, byte = 0): HttpRequest {
  const value = field(request, "signature");
  const raw = fromBase64(value.slice("sig1=:".length, -1));
  raw[byte]! ^= 0x01;
  return withHeaders(request, { signature: `sig1=:${toBase64(raw)}:` });
}

describe("request authentication: signing", () => {
  it("signs the components medledger requires, and content-type and @authority", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    const { input } = readRequestSignature(signed, "sig1");
    assert.deepEqual(input.components, [
      "@method",
      "@authority",
      "@path",
      "@query",
      "content-digest",
      "content-type",
    ]);
    assert.deepEqual(Object.keys(input.params), ["created", "keyid", "alg", "nonce", "tag"]);
    assert.equal(input.params.created, T0);
    assert.equal(input.params.alg, "ed25519");
    assert.equal(input.params.tag, "medledger");
    assert.equal(input.params.nonce!.length, 24);
    assert.equal(field(signed, "content-digest"), contentDigest(nodeCrypto, sampleRequest().body!));
    assert.deepEqual(requiredComponents(signed), ["@method", "@path", "@query", "content-digest"]);
  });

  it("leaves out @query and content-digest when there is no query and no body; uses a fresh nonce", async () => {
    const h = await harness();
    const request = sampleRequest({
      method: "GET",
      url: "https://node.example/v1/checkpoint",
      headers: {},
      body: undefined,
    });
    const a = await h.sign(request);
    const b = await h.sign(request);
    assert.deepEqual(readRequestSignature(a, "sig1").input.components, ["@method", "@authority", "@path"]);
    assert.equal(a.headers["content-digest"], undefined);
    assert.notEqual(
      readRequestSignature(a, "sig1").input.params.nonce,
      readRequestSignature(b, "sig1").input.params.nonce,
    );
    const verifier = h.verifier();
    await verifier.verify(a);
    await verifier.verify(b);
  });

  it("replaces a Content-Digest the caller set with the body's own", async () => {
    const h = await harness();
    const request = withHeaders(sampleRequest(), { "Content-Digest": "sha-256=:AAAA:" });
    const signed = await h.sign(request);
    assert.equal(field(signed, "content-digest"), contentDigest(nodeCrypto, request.body!));
    await h.verifier().verify(signed);
  });

  it("sets expires when asked, and the verifier honours it", async () => {
    const h = await harness();
    const keys = h.keys.get("org:hospital")!;
    const request = sampleRequest();
    const added = await signRequest(nodeCrypto, request, {
      keyid: "org:hospital",
      secretKey: keys.secretKey,
      clock: () => h.clientMs,
      expiresInSeconds: 30,
    });
    const signed = withHeaders(request, added);
    assert.equal(readRequestSignature(signed, "sig1").input.params.expires, T0 + 30);
    h.nodeMs = T0_MS + 31_000;
    await rejectsWith(() => h.verifier().verify(signed), "AUTH_INVALID");
    h.nodeMs = T0_MS + 30_000;
    await h.verifier().verify(signed);
  });
});

describe("request authentication: round trips", () => {
  it("verifies requests of every shape, from every kind of key, on both suites", async () => {
    const h = await harness();
    const verifier = h.verifier();
    const shapes = [
      sampleRequest(),
      sampleRequest({ url: "https://node.example/v1/entries" }),
      sampleRequest({
        method: "GET",
        url: "https://node.example/v1/patients/ab/history?from=0&to=10",
        headers: {},
        body: undefined,
      }),
      sampleRequest({ body: new Uint8Array(0) }),
      sampleRequest({
        url: "https://NODE.example:443/v1/blobs/%41",
        headers: { "content-type": ["application/json", "charset=utf-8"] },
      }),
      sampleRequest({ url: "http://127.0.0.1:8080/v1/entries?" }),
    ];
    for (const keyid of h.keys.keys()) {
      for (const request of shapes) {
        for (const crypto of SUITES) {
          const verified = await verifier.verify(await h.sign(request, keyid, crypto));
          assert.equal(verified.keyid, keyid);
        }
      }
    }
    assert.equal(verifier.replayCache.size, h.keys.size * shapes.length * SUITES.length);
  });

  it("strips whitespace around field lines as RFC 9421 section 2.1 does, in linear time", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    await h.verifier().verify(withHeaders(signed, { "content-type": " \tapplication/json \t" }));
    const spaces = " ".repeat(200_000);
    const started = performance.now();
    await rejectsWith(
      () => h.verifier().verify(withHeaders(signed, { "content-type": `${spaces}x${spaces}` })),
      "SIGNATURE_INVALID",
    );
    await rejectsWith(
      () => h.verifier().verify(withHeaders(signed, { "content-type": `x${spaces}y` })),
      "TOO_LARGE",
    );
    assert.ok(performance.now() - started < 1000, "trimming hostile whitespace took too long");
  });

  it("accepts header names in any case and field lines given as arrays", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    const upper: Record<string, string | readonly string[] | undefined> = {};
    for (const [k, v] of Object.entries(signed.headers)) upper[k.toUpperCase()] = v;
    await h.verifier().verify({ ...signed, headers: upper });
  });
});

describe("request authentication: every mutation is refused with its code", () => {
  const cases: [
    string,
    ErrorCode,
    (signed: HttpRequest, h: Harness) => HttpRequest | Promise<HttpRequest>,
  ][] = [
    ["method changed", "SIGNATURE_INVALID", (s) => ({ ...s, method: "PUT" })],
    ["method case changed", "SIGNATURE_INVALID", (s) => ({ ...s, method: "post" })],
    ["path changed", "SIGNATURE_INVALID", (s) => ({ ...s, url: s.url.replace("/entries", "/entriez") })],
    ["query changed", "SIGNATURE_INVALID", (s) => ({ ...s, url: s.url.replace("since=3", "since=4") })],
    ["query removed", "SIGNATURE_INVALID", (s) => ({ ...s, url: s.url.replace("?since=3", "") })],
    [
      "authority changed",
      "SIGNATURE_INVALID",
      (s) => ({ ...s, url: s.url.replace("node.example", "other.example") }),
    ],
    [
      "body byte changed",
      "DIGEST_MISMATCH",
      (s) => ({ ...s, body: utf8('{"kind":"record","patient":"p2"}') }),
    ],
    ["body dropped", "DIGEST_MISMATCH", (s) => ({ ...s, body: undefined })],
    [
      "body and digest changed together",
      "SIGNATURE_INVALID",
      (s) => {
        const body = utf8('{"kind":"record","patient":"p2"}');
        return withHeaders({ ...s, body }, { "content-digest": contentDigest(nodeCrypto, body) });
      },
    ],
    ["digest header removed", "AUTH_INVALID", (s) => withHeaders(s, { "content-digest": undefined })],
    [
      "digest header changed to sha-512 of the same body",
      "SIGNATURE_INVALID",
      (s) => withHeaders(s, { "content-digest": contentDigest(nodeCrypto, s.body!, "sha-512") }),
    ],
    ["content-type changed", "SIGNATURE_INVALID", (s) => withHeaders(s, { "content-type": "text/plain" })],
    ["content-type removed", "AUTH_INVALID", (s) => withHeaders(s, { "content-type": undefined })],
    [
      "created changed by one second",
      "SIGNATURE_INVALID",
      (s) => editInput(s, `created=${T0}`, `created=${T0 + 1}`),
    ],
    [
      "created moved out of the window",
      "AUTH_INVALID",
      (s) => editInput(s, `created=${T0}`, `created=${T0 - 301}`),
    ],
    ["nonce changed", "SIGNATURE_INVALID", (s) => editInput(s, /nonce="(.)/, 'nonce="$1x')],
    [
      "keyid changed to another known key",
      "SIGNATURE_INVALID",
      (s) => editInput(s, "org:hospital", "org:lab"),
    ],
    ["keyid changed to an unknown key", "AUTH_INVALID", (s) => editInput(s, "org:hospital", "org:nobody")],
    ["tag changed", "SIGNATURE_INVALID", (s) => editInput(s, 'tag="medledger"', 'tag="other"')],
    ["alg changed", "UNSUPPORTED_ALGORITHM", (s) => editInput(s, 'alg="ed25519"', 'alg="rsa-pss-sha512"')],
    [
      "params reordered",
      "SIGNATURE_INVALID",
      (s) => editInput(s, /;keyid="([^"]*)";alg="ed25519"/, ';alg="ed25519";keyid="$1"'),
    ],
    [
      "components reordered",
      "SIGNATURE_INVALID",
      (s) => editInput(s, '"@method" "@authority"', '"@authority" "@method"'),
    ],
    ["a required component dropped", "AUTH_INVALID", (s) => editInput(s, '"@path" ', "")],
    ["@query dropped", "AUTH_INVALID", (s) => editInput(s, '"@query" ', "")],
    ["content-digest dropped", "AUTH_INVALID", (s) => editInput(s, '"content-digest" ', "")],
    ["an optional component dropped", "SIGNATURE_INVALID", (s) => editInput(s, ' "content-type"', "")],
    ["a component covered twice", "AUTH_INVALID", (s) => editInput(s, '"@path"', '"@path" "@path"')],
    [
      "a component parameter added",
      "AUTH_INVALID",
      (s) => editInput(s, '"content-type"', '"content-type";sf'),
    ],
    [
      "an unsupported derived component",
      "AUTH_INVALID",
      (s) => editInput(s, '"@path"', '"@path" "@target-uri"'),
    ],
    ["an upper-case field name", "AUTH_INVALID", (s) => editInput(s, '"content-type"', '"Content-Type"')],
    [
      "an unknown parameter added",
      "AUTH_INVALID",
      (s) => editInput(s, ';tag="medledger"', ';tag="medledger";foo=1'),
    ],
    ["created as a string", "AUTH_INVALID", (s) => editInput(s, `created=${T0}`, `created="${T0}"`)],
    ["created dropped", "AUTH_INVALID", (s) => editInput(s, `;created=${T0}`, "")],
    ["nonce dropped", "AUTH_INVALID", (s) => editInput(s, /;nonce="[^"]*"/, "")],
    ["nonce too short", "AUTH_INVALID", (s) => editInput(s, /nonce="[^"]*"/, 'nonce="short"')],
    ["keyid dropped", "AUTH_INVALID", (s) => editInput(s, /;keyid="[^"]*"/, "")],
    [
      "expires before created",
      "AUTH_INVALID",
      (s) => editInput(s, `created=${T0}`, `created=${T0};expires=${T0 - 1}`),
    ],
    ["signature bit flipped", "SIGNATURE_INVALID", (s) => flipSignatureBit(s)],
    ["signature bit flipped in S", "SIGNATURE_INVALID", (s) => flipSignatureBit(s, 40)],
    [
      "signature truncated",
      "SIGNATURE_INVALID",
      (s) => withHeaders(s, { signature: `sig1=:${toBase64(new Uint8Array(63))}:` }),
    ],
    [
      "signature as a string",
      "AUTH_INVALID",
      (s) => withHeaders(s, { signature: `sig1="${field(s, "signature").slice(6, -1)}"` }),
    ],
    ["Signature missing", "AUTH_REQUIRED", (s) => withHeaders(s, { signature: undefined })],
    ["Signature-Input missing", "AUTH_REQUIRED", (s) => withHeaders(s, { "signature-input": undefined })],
    [
      "both missing",
      "AUTH_REQUIRED",
      (s) => withHeaders(s, { signature: undefined, "signature-input": undefined }),
    ],
    [
      "label changed in both",
      "AUTH_REQUIRED",
      (s) =>
        withHeaders(editInput(s, /^sig1=/, "sig2="), {
          signature: field(s, "signature").replace(/^sig1=/, "sig2="),
        }),
    ],
    ["label duplicated in Signature-Input", "MALFORMED_INPUT", (s) => editInput(s, /^(.*)$/, "$1, $1")],
    [
      "label duplicated in Signature",
      "MALFORMED_INPUT",
      (s) =>
        withHeaders(s, { signature: `${field(s, "signature")}, sig1=:${toBase64(new Uint8Array(64))}:` }),
    ],
    [
      "label duplicated across field lines",
      "MALFORMED_INPUT",
      (s) => withHeaders(s, { signature: [field(s, "signature"), field(s, "signature")] }),
    ],
    ["Signature-Input not a structured field", "MALFORMED_INPUT", (s) => editInput(s, "sig1=(", "sig1=((")],
    ["Signature-Input too long", "TOO_LARGE", (s) => editInput(s, /^/, `a=1, b="${"x".repeat(4096)}", `)],
    [
      "too many components",
      "TOO_LARGE",
      (s) => editInput(s, '"@path"', '"@path" ' + Array.from({ length: 16 }, (_, i) => `"x-${i}"`).join(" ")),
    ],
    [
      "a control character in a covered field",
      "MALFORMED_INPUT",
      (s) => withHeaders(s, { "content-type": "application/json\nx" }),
    ],
  ];

  for (const [what, code, mutate] of cases) {
    it(`${what}: ${code}`, async () => {
      const h = await harness();
      const signed = await h.sign(sampleRequest());
      const mutated = await mutate(signed, h);
      const verifier = h.verifier();
      await rejectsWith(() => verifier.verify(mutated), code, what);
      assert.equal(verifier.replayCache.size, 0, "a refused request recorded its nonce");
      // The genuine request still goes through afterwards: the refusal changed nothing.
      await verifier.verify(signed);
    });
  }

  it("the default port and host case are not changes: the same authority", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    await h.verifier().verify({ ...signed, url: signed.url.replace("node.example", "NODE.example:443") });
  });
});

describe("request authentication: policy options", () => {
  it("authorities: @authority must be covered and name this node", async () => {
    const h = await harness();
    const verifier = h.verifier({ authorities: ["node.example"] });
    await verifier.verify(await h.sign(sampleRequest()));
    const elsewhere = await h.sign(sampleRequest({ url: "https://other.example/v1/entries" }));
    await rejectsWith(() => verifier.verify(elsewhere), "AUTH_INVALID");
    const keys = h.keys.get("org:hospital")!;
    const request = sampleRequest();
    const added = await signRequest(nodeCrypto, request, {
      keyid: "org:hospital",
      secretKey: keys.secretKey,
      clock: () => h.clientMs,
      coverAuthority: false,
    });
    const uncovered = withHeaders(request, added);
    await h.verifier().verify(uncovered);
    await rejectsWith(() => verifier.verify(uncovered), "AUTH_INVALID");
  });

  it("tag: must match when the node asks for one", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    await h.verifier({ tag: "medledger" }).verify(signed);
    await rejectsWith(() => h.verifier({ tag: "medledger-v2" }).verify(signed), "AUTH_INVALID");
  });

  it("refuses bad options and a resolver that returns a bad key", async () => {
    const h = await harness();
    for (const skewSeconds of [-1, 1.5, 3601, Number.NaN]) {
      await rejectsWith(() => h.verifier({ skewSeconds }), "INVALID_ARGUMENT", String(skewSeconds));
    }
    await rejectsWith(() => new ReplayCache(0), "INVALID_ARGUMENT");
    const signed = await h.sign(sampleRequest());
    await rejectsWith(
      () => h.verifier({ resolveKey: () => new Uint8Array(31) }).verify(signed),
      "KEY_INVALID",
    );
    await rejectsWith(() => h.verifier({ clock: () => Number.NaN }).verify(signed), "INTERNAL");
    await rejectsWith(() => h.verifier().verify({ ...signed, url: "/v1/entries" }), "INVALID_ARGUMENT");
  });

  it("notBefore: refuses signatures created before the node started", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    await rejectsWith(() => h.verifier({ notBefore: T0 + 1 }).verify(signed), "AUTH_INVALID");
    await h.verifier({ notBefore: T0 }).verify(signed);
    await rejectsWith(() => h.verifier({ notBefore: 1.5 }), "INVALID_ARGUMENT");
  });

  it("accepts an async resolver", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    await h.verifier({ resolveKey: async (keyid) => h.keys.get(keyid)?.publicKey }).verify(signed);
  });
});

describe("request authentication: the clock window", () => {
  it(`accepts created up to ${DEFAULT_SKEW_SECONDS} s either side of the node's clock, and no further`, async () => {
    const h = await harness();
    for (const [offset, ok] of [
      [-DEFAULT_SKEW_SECONDS, true],
      [-DEFAULT_SKEW_SECONDS - 1, false],
      [DEFAULT_SKEW_SECONDS, true],
      [DEFAULT_SKEW_SECONDS + 1, false],
      [0, true],
    ] as const) {
      h.clientMs = T0_MS + offset * 1000;
      const signed = await h.sign(sampleRequest());
      const verifier = h.verifier();
      if (ok) await verifier.verify(signed);
      else await rejectsWith(() => verifier.verify(signed), "AUTH_INVALID", `offset ${offset}`);
    }
  });

  it("uses the configured window, and whole seconds", async () => {
    const h = await harness();
    h.clientMs = T0_MS - 61_000;
    const old = await h.sign(sampleRequest());
    await rejectsWith(() => h.verifier({ skewSeconds: 60 }).verify(old), "AUTH_INVALID");
    await h.verifier({ skewSeconds: 61 }).verify(old);
    h.clientMs = T0_MS + 999;
    h.nodeMs = T0_MS + 300_999;
    await h.verifier().verify(await h.sign(sampleRequest()));
  });

  it("never lets the node's time go backwards: a stepped-back clock does not revive a dropped nonce", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    const verifier = h.verifier();
    await verifier.verify(signed);
    // 400 s later another request arrives; the first one's nonce leaves the cache.
    h.nodeMs = T0_MS + 400_000;
    h.clientMs = h.nodeMs;
    await verifier.verify(await h.sign(sampleRequest()));
    assert.equal(verifier.replayCache.size, 1);
    // The clock is stepped back to 100 s after the first request, inside its window by the wall clock.
    h.nodeMs = T0_MS + 100_000;
    await rejectsWith(() => verifier.verify(signed), "AUTH_INVALID");
  });
});

describe("request authentication: replays", () => {
  it("refuses the same request twice, then as stale once its window has passed", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    const verifier = h.verifier();
    await verifier.verify(signed);
    await rejectsWith(() => verifier.verify(signed), "AUTH_REPLAYED");
    h.nodeMs = T0_MS + 299_000;
    await rejectsWith(() => verifier.verify(signed), "AUTH_REPLAYED");
    h.nodeMs = T0_MS + 301_000;
    await rejectsWith(() => verifier.verify(signed), "AUTH_INVALID");
    assert.equal(verifier.replayCache.size, 0);
  });

  it("accepts exactly one of two copies verified at the same time", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    const verifier = h.verifier();
    const results = await Promise.allSettled([
      verifier.verify(signed),
      verifier.verify(signed),
      verifier.verify(signed),
    ]);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const r of results) if (r.status === "rejected") assert.ok(isLedgerError(r.reason, "AUTH_REPLAYED"));
  });

  it("keys nonces by keyid: the same nonce from two keys is two requests", async () => {
    const h = await harness();
    const fixedNonce: CryptoSuite = { ...nodeCrypto, randomBytes: (n) => new Uint8Array(n).fill(7) };
    const request = sampleRequest();
    const sign = async (keyid: string) =>
      withHeaders(
        request,
        await signRequest(fixedNonce, request, {
          keyid,
          secretKey: h.keys.get(keyid)!.secretKey,
          clock: () => h.clientMs,
        }),
      );
    const verifier = h.verifier();
    await verifier.verify(await sign("org:hospital"));
    await verifier.verify(await sign("org:lab"));
    // Same key, same nonce, different request: still a replayed nonce.
    await rejectsWith(async () => verifier.verify(await sign("org:lab")), "AUTH_REPLAYED");
  });

  it("records a nonce only for a request that verified", async () => {
    const h = await harness();
    const signed = await h.sign(sampleRequest());
    const verifier = h.verifier();
    await rejectsWith(() => verifier.verify(flipSignatureBit(signed)), "SIGNATURE_INVALID");
    await rejectsWith(() => verifier.verify({ ...signed, body: utf8("tampered") }), "DIGEST_MISMATCH");
    assert.equal(verifier.replayCache.size, 0);
    await verifier.verify(signed);
  });
});

describe("request authentication: the replay cache's cap", () => {
  it("fails closed at the cap, keeps every nonce until it expires, then accepts again", async () => {
    const h = await harness();
    const verifier = h.verifier({ replayCache: new ReplayCache(3) });
    const accepted: HttpRequest[] = [];
    for (let i = 0; i < 3; i++) {
      h.clientMs = T0_MS + i * 1000;
      const signed = await h.sign(sampleRequest());
      await verifier.verify(signed);
      accepted.push(signed);
    }
    const fourth = await h.sign(sampleRequest());
    await rejectsWith(() => verifier.verify(fourth), "AUTH_REPLAY_CACHE_FULL");
    // Full, yet a replay is still recognised as one: nothing was forgotten to make room.
    await rejectsWith(() => verifier.verify(accepted[0]!), "AUTH_REPLAYED");
    assert.equal(verifier.replayCache.size, 3);
    // The first request's window ends at T0 + 300: one second later its nonce leaves, room for one.
    h.nodeMs = T0_MS + 301_000;
    await verifier.verify(fourth);
    await rejectsWith(async () => verifier.verify(await h.sign(sampleRequest())), "AUTH_REPLAY_CACHE_FULL");
    await rejectsWith(() => verifier.verify(fourth), "AUTH_REPLAYED");
  });

  it("keeps a pair only as long as its signature is acceptable (expires shortens it)", () => {
    const cache = new ReplayCache(10);
    cache.advance(100);
    cache.add("k", "n1", 105);
    cache.add("k", "n2", 400);
    assert.throws(
      () => cache.add("k", "n1", 105),
      (e: unknown) => isLedgerError(e, "AUTH_REPLAYED"),
    );
    cache.advance(105);
    assert.ok(cache.has("k", "n1"));
    cache.advance(106);
    assert.ok(!cache.has("k", "n1"));
    assert.equal(cache.size, 1);
    cache.add("k", "n1", 500);
    // Time given out of order is ignored: the cache's time never goes back.
    assert.equal(cache.advance(50), 106);
  });

  it("agrees with a plain model on random operations", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant("add" as const),
              nonce: fc.integer({ min: 0, max: 20 }),
              ttl: fc.integer({ min: 0, max: 50 }),
            }),
            fc.record({ op: fc.constant("advance" as const), by: fc.integer({ min: -10, max: 30 }) }),
          ),
          { maxLength: 200 },
        ),
        fc.integer({ min: 1, max: 15 }),
        (ops, cap) => {
          const cache = new ReplayCache(cap);
          const model = new Map<string, number>();
          let now = 1000;
          let floor = cache.advance(now);
          for (const step of ops) {
            if (step.op === "advance") {
              now += step.by;
              floor = cache.advance(now);
              assert.equal(floor, Math.max(floor, now));
              for (const [k, exp] of model) if (exp < floor) model.delete(k);
            } else {
              const key = String(step.nonce);
              const expiresAt = floor + step.ttl;
              let expected: ErrorCode | "ok" = "ok";
              if (model.has(key)) expected = "AUTH_REPLAYED";
              else if (model.size >= cap) expected = "AUTH_REPLAY_CACHE_FULL";
              let got: ErrorCode | "ok" = "ok";
              try {
                cache.add("k", key, expiresAt);
              } catch (err) {
                assert.ok(isLedgerError(err));
                got = err.code;
              }
              assert.equal(got, expected);
              if (got === "ok") model.set(key, expiresAt);
            }
            assert.equal(cache.size, model.size);
            for (let n = 0; n <= 20; n++) assert.equal(cache.has("k", String(n)), model.has(String(n)));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Property: any single change to a signed request is refused
// ---------------------------------------------------------------------------------------------------

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789";

const arbitraryRequest: fc.Arbitrary<HttpRequest> = fc
  .record({
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
    path: fc.array(fc.string({ unit: fc.constantFrom(...alnum), minLength: 1, maxLength: 8 }), {
      minLength: 1,
      maxLength: 4,
    }),
    query: fc.option(
      fc.array(
        fc.tuple(
          fc.string({ unit: fc.constantFrom(...alnum), minLength: 1, maxLength: 5 }),
          fc.string({ unit: fc.constantFrom(...alnum), maxLength: 5 }),
        ),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
      { nil: undefined },
    ),
    body: fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }),
    contentType: fc.option(
      fc.constantFrom("application/json", "application/fhir+json", "application/octet-stream"),
      { nil: undefined },
    ),
  })
  .map(({ method, path, query, body, contentType }) => ({
    method,
    url: `https://node.example/${path.join("/")}${query === undefined ? "" : "?" + query.map(([k, v]) => `${k}=${v}`).join("&")}`,
    headers: contentType === undefined ? {} : { "content-type": contentType },
    body,
  }));

/** Replace the character at `index` of `text` with a different one from `alphabet`. */
function replaceChar(text: string, index: number, pick: number, alphabet: string): string {
  const i = index % text.length;
  const choices = alphabet.replace(text[i]!, "");
  return text.slice(0, i) + choices[pick % choices.length]! + text.slice(i + 1);
}

const PRINTABLE = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join("");
const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Every meaningful single change of a signed request (changes that cannot matter, such as host case, are not among them). */
function mutations(signed: HttpRequest, at: number, pick: number): [string, HttpRequest][] {
  const url = new URL(signed.url);
  const out: [string, HttpRequest][] = [];
  out.push([
    "method",
    {
      ...signed,
      method: ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"].find(
        (m) => m !== signed.method && m.length > pick % 3,
      )!,
    },
  ]);
  const path = url.pathname;
  const pathAt = 1 + (at % (path.length - 1));
  if (path[pathAt] !== "/")
    out.push(["path", { ...signed, url: signed.url.replace(path, replaceChar(path, pathAt, pick, alnum)) }]);
  if (url.search !== "") {
    const search = url.search;
    const i = 1 + (at % (search.length - 1));
    out.push(["query", { ...signed, url: signed.url.replace(search, replaceChar(search, i, pick, alnum)) }]);
    out.push(["query removed", { ...signed, url: signed.url.replace(search, "") }]);
  } else {
    out.push(["query added", { ...signed, url: signed.url + "?a=1" }]);
  }
  out.push(["authority", { ...signed, url: signed.url.replace("node.example", "node2.example") }]);
  if (signed.body !== undefined) {
    const body = signed.body.slice();
    body[at % body.length]! ^= 1 << (pick % 8);
    out.push(["body byte", { ...signed, body }]);
    out.push(["body removed", { ...signed, body: undefined }]);
    out.push(["body extended", { ...signed, body: new Uint8Array([...signed.body, 0]) }]);
    const digest = field(signed, "content-digest");
    out.push([
      "content-digest",
      withHeaders(signed, { "content-digest": replaceChar(digest, 9 + (at % 44), pick, BASE64) }),
    ]);
    out.push(["content-digest removed", withHeaders(signed, { "content-digest": undefined })]);
  } else {
    out.push(["body added", { ...signed, body: new Uint8Array([pick & 255]) }]);
  }
  const contentType = signed.headers["content-type"];
  if (typeof contentType === "string") {
    out.push([
      "content-type",
      withHeaders(signed, { "content-type": replaceChar(contentType, at, pick, alnum) }),
    ]);
    out.push(["content-type removed", withHeaders(signed, { "content-type": undefined })]);
  }
  const input = field(signed, "signature-input");
  out.push([
    "signature-input",
    withHeaders(signed, { "signature-input": replaceChar(input, at, pick, PRINTABLE) }),
  ]);
  const signature = field(signed, "signature");
  const sigAt = 6 + (at % 85); // inside the 88 base64 characters, before the final "=="
  out.push(["signature", withHeaders(signed, { signature: replaceChar(signature, sigAt, pick, BASE64) })]);
  out.push(["signature removed", withHeaders(signed, { signature: undefined })]);
  out.push(["signature-input removed", withHeaders(signed, { "signature-input": undefined })]);
  return out;
}

describe("property: any single change to a signed request is refused", () => {
  it("holds for random requests and random changes", async () => {
    const h = await harness();
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(
        arbitraryRequest,
        fc.nat(),
        fc.nat(),
        fc.constantFrom(...h.keys.keys()),
        async (request, at, pick, keyid) => {
          const signed = await h.sign(request, keyid);
          for (const [what, mutated] of mutations(signed, at, pick)) {
            const verifier = h.verifier();
            await assert.rejects(
              () => verifier.verify(mutated),
              (err: unknown) => isLedgerError(err),
              `${what} was accepted: ${JSON.stringify({ ...mutated, body: mutated.body && toBase64(mutated.body) })}`,
            );
            checked++;
          }
          await h.verifier().verify(signed);
        },
      ),
      { numRuns: 150 },
    );
    assert.ok(checked > 1000);
  });
});
