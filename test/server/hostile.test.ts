/**
 * Hostile input (issue 4, "Property tests feed the API malformed, oversized and hostile input"): fast-check
 * throws arbitrary methods, paths, query strings, headers and bodies at the API, unsigned and validly
 * signed by an org (so that the parsers behind authentication see them too), plus hand-picked hostile
 * JSON (deep nesting, duplicate members, lone surrogates, huge numbers, oversized bodies) and bytes that
 * are not HTTP at all. Every answer is below 500 and, when it is an error, the JSON error body with a code
 * from docs/errors.md; after it all the ledger, its ordered stream, its blobs and the queue are unchanged.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { signRequest } from "../../src/core/http/index.ts";
import { crypto, enroll, startHarness, type Harness, type Patient } from "./harness.ts";

/** The codes docs/errors.md documents. */
const DOCUMENTED = new Set(
  [
    ...readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8").matchAll(/^\| `([A-Z_]+)`/gm),
  ].map((m) => m[1]!),
);

const BODY_BYTES = 8 * 1024;
const ENTRIES_BODY_BYTES = 16 * 1024;

interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array | undefined;
  readonly signed: boolean;
}

/** Percent-encode everything outside printable ASCII (Node's client refuses it raw). */
function safePath(path: string): string {
  let out = "";
  for (const ch of path) {
    const code = ch.codePointAt(0)!;
    out += code > 0x20 && code < 0x7f ? ch : encodeURIComponent(ch);
  }
  return out.startsWith("/") ? out : `/${out}`;
}

describe("hostile requests", () => {
  let h: Harness;
  let ana: Patient;
  before(async () => {
    h = await startHarness({
      bodyBytes: BODY_BYTES,
      entriesBodyBytes: ENTRIES_BODY_BYTES,
      blobBytes: 64 * 1024,
    });
    ana = await enroll(h, h.hospital);
  });
  after(async () => h.close());

  const snapshot = async () => ({
    size: h.node.size,
    entries: h.node.store.entryCount(),
    submissions: h.node.store.submissionCount(),
    blobs: h.node.store.listBlobs(null, 10_000).length,
    queue: (await h.call("GET", "/v1/queue?role=author", { as: h.hospital })).text,
  });

  /** Send one request as raw HTTP/1.1; resolves with the status, content-type and body. */
  const send = async (sent: Sent): Promise<{ status: number; type: string; body: string }> => {
    let headers = { ...sent.headers };
    if (sent.signed) {
      const added = await signRequest(
        crypto,
        { method: sent.method, url: h.url + sent.path, headers, body: sent.body },
        { keyid: h.hospital.keyid, secretKey: h.hospital.sign.secretKey, clock: () => h.now() },
      );
      headers = { ...headers, ...added };
    }
    return new Promise((resolve, reject) => {
      const req = request(h.url + sent.path, { method: sent.method, headers });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      });
      req.on("error", reject);
      req.end(sent.body === undefined ? undefined : Buffer.from(sent.body));
    });
  };

  const check = (sent: Sent, answer: { status: number; type: string; body: string }): void => {
    const what = `${sent.method} ${sent.path.slice(0, 80)} -> ${answer.status} ${answer.body.slice(0, 200)}`;
    assert.ok(answer.status < 500, what);
    // Without a valid signature, only the public endpoints can answer anything but an error.
    const publicPath = /^\/v1\/(health|node|checkpoint|openapi\.json|checkpoints\/|proofs\/|witness\/)/.test(
      sent.path,
    );
    if (!sent.signed && !publicPath) assert.ok(answer.status >= 400, what);
    if (answer.status >= 400 && sent.method !== "HEAD") {
      assert.match(answer.type, /^application\/json/, what);
      const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
      assert.ok(DOCUMENTED.has(body.error.code), `${body.error.code} is not in docs/errors.md: ${what}`);
      assert.doesNotMatch(body.error.message, /\n\s+at |node_modules|\.ts:\d+/, `no stack trace: ${what}`);
    }
  };

  const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toHex(b));
  const segment = fc.oneof(
    hex64,
    fc.constant(""),
    fc.constant(".."),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 20 }),
    fc.constant("a".repeat(300)),
    fc.constant("%00%ff%zz"),
  );
  const path = fc.oneof(
    fc.constantFrom(
      "/v1/health",
      "/v1/node",
      "/v1/checkpoint",
      "/v1/openapi.json",
      "/v1/orgs",
      "/v1/entries",
      "/v1/queue",
      "/v1/lookup",
      "/v1/witness/add-checkpoint",
    ),
    fc
      .tuple(
        fc.constantFrom(
          "/v1/checkpoints/",
          "/v1/entries/",
          "/v1/queue/",
          "/v1/blobs/",
          "/v1/patients/",
          "/v1/proofs/inclusion?position=",
          "/v1/proofs/consistency?from=0&to=",
        ),
        segment,
        fc.constantFrom(
          "",
          "/attest",
          "/reject",
          "/history",
          "/access-log",
          "?limit=0",
          "?role=x&role=y",
          "?size=-1",
        ),
      )
      .map(([a, b, c]) => a + b + c),
    fc.string({ maxLength: 60 }).map((s) => `/${s}`),
  );
  const jsonBody = fc.oneof(
    fc.json({ maxDepth: 4 }),
    fc
      .record({
        entries: fc.array(fc.oneof(fc.base64String({ maxLength: 200 }), fc.string()), { maxLength: 5 }),
      })
      .map((v) => JSON.stringify(v)),
    fc.record({ entry: fc.base64String({ maxLength: 300 }) }).map((v) => JSON.stringify(v)),
    fc.record({ signature: fc.string(), extra: fc.anything() }).map((v) => JSON.stringify(v)),
    fc.record({ reason: fc.string(), note: fc.string({ maxLength: 800 }) }).map((v) => JSON.stringify(v)),
    fc.record({ blinded: fc.oneof(hex64, fc.string()) }).map((v) => JSON.stringify(v)),
  );
  const body = fc.oneof(
    fc.constant(undefined),
    fc.uint8Array({ maxLength: 2048 }),
    jsonBody.map((text) => utf8(text)),
    fc.constantFrom(
      utf8(`${"[".repeat(5000)}${"]".repeat(5000)}`),
      utf8('{"entries":["a"],"entries":["b"]}'),
      utf8('{"blinded":"\\ud800"}'),
      utf8('{"signature":1e400}'),
      utf8('{"entry":123456789012345678901234567890}'),
      new Uint8Array(BODY_BYTES + 1).fill(0x20),
      new Uint8Array(ENTRIES_BODY_BYTES + 1).fill(0x5b),
      utf8(`old 0\n\n${"x".repeat(100)}`),
      Uint8Array.of(0xff, 0xfe, 0xfd),
    ),
  );
  const headerValue = fc.oneof(fc.string({ maxLength: 60 }), fc.constant("x".repeat(5000)));
  const headers = fc.record(
    {
      "content-type": fc.oneof(
        fc.constantFrom(
          "application/json",
          "application/json; charset=latin1",
          "application/octet-stream",
          "text/plain",
          "multipart/form-data; boundary=x",
        ),
        fc.string({ maxLength: 40 }),
      ),
      "signature-input": fc.oneof(
        headerValue,
        fc.constant('sig1=("@method" "@path");created=1;keyid="org:hospital";nonce="aaaaaaaaaaaaaaaaaaaa"'),
      ),
      signature: fc.oneof(headerValue, fc.constant(`sig1=:${toBase64(new Uint8Array(64))}:`)),
      "content-digest": headerValue,
      "medledger-access": fc.oneof(headerValue, hex64),
      host: fc.oneof(fc.constantFrom("evil.example", "[::1", "a b"), fc.string({ maxLength: 20 })),
    },
    { requiredKeys: [] },
  );
  const sent = fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
    path,
    headers,
    body,
    signed: fc.boolean(),
  });

  it("arbitrary requests, unsigned or signed: never a 5xx, always a documented code, nothing changed", async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(sent, async (raw) => {
        const request: Sent = {
          ...raw,
          path: safePath(raw.path),
          body: raw.method === "GET" || raw.method === "HEAD" ? undefined : raw.body,
          headers: Object.fromEntries(
            Object.entries(raw.headers).filter(([, v]) => /^[\x20-\x7e]*$/.test(v)),
          ),
        };
        let answer;
        try {
          answer = await send(request);
        } catch (err) {
          // The client itself may refuse to send something (an invalid Host for a URL): not the server's doing.
          if (request.signed && (err as { code?: unknown }).code === "INVALID_ARGUMENT") return;
          throw err;
        }
        check(request, answer);
      }),
      { numRuns: 400, includeErrorInReport: true },
    );
    assert.deepEqual(await snapshot(), before);
    // The server still answers normally afterwards.
    assert.equal((await h.call("GET", `/v1/patients/${ana.id}/history`, { as: ana })).status, 200);
  });

  it("hand-picked hostile bodies, signed: each refused with its own code, before anything is done", async () => {
    const cases: [string, Uint8Array, string, number][] = [
      [
        "application/json",
        utf8(`{"blinded":"${"a".repeat(64)}","blinded":"${"b".repeat(64)}"}`),
        "DUPLICATE_KEY",
        400,
      ],
      ["application/json", utf8(`${"[".repeat(50)}${"]".repeat(50)}`), "TOO_DEEP", 400],
      ["application/json", utf8('{"blinded":"\\ud800"}'), "INVALID_STRING", 400],
      ["application/json", utf8('{"blinded":1e400}'), "INVALID_NUMBER", 400],
      ["application/json", utf8(`{"blinded":"${"a".repeat(64)}","more":1}`), "MALFORMED_INPUT", 400],
      ["application/json", utf8("{"), "MALFORMED_INPUT", 400],
      ["application/json", Uint8Array.of(0x7b, 0xff, 0x7d), "MALFORMED_INPUT", 400],
      ["text/plain", utf8(`{"blinded":"${"a".repeat(64)}"}`), "MALFORMED_INPUT", 400],
      ["application/json", new Uint8Array(BODY_BYTES + 1).fill(0x20), "TOO_LARGE", 413],
    ];
    for (const [type, body, code, status] of cases) {
      const answer = await h.call("POST", "/v1/lookup", {
        as: h.hospital,
        body,
        headers: { "content-type": type },
      });
      assert.equal(answer.status, status, `${code}: ${answer.text}`);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, code, answer.text);
    }
    const tooMany = await h.call("POST", "/v1/entries", {
      as: h.hospital,
      json: { entries: Array.from({ length: 101 }, () => "AAAA") },
    });
    assert.equal(tooMany.status, 400, "at most 100 entries per submission");
    const tooBig = await h.call("POST", "/v1/entries", {
      as: h.hospital,
      json: { entries: ["A".repeat(ENTRIES_BODY_BYTES)] },
    });
    assert.equal(tooBig.status, 413);
  });

  it("bytes that are not HTTP get a JSON 400 and a closed connection", async () => {
    for (const garbage of [
      "GARBAGE\r\n\r\n",
      "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
      `GET /${"a".repeat(20_000)} HTTP/1.1\r\n\r\n`,
    ]) {
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(h.url).port), "127.0.0.1");
        let text = "";
        socket.setEncoding("utf8");
        socket.on("data", (d: string) => (text += d));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
        socket.end(garbage);
      });
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]);
      assert.ok(status >= 400 && status < 500, reply.slice(0, 100));
      const json = reply.slice(reply.indexOf("\r\n\r\n") + 4);
      assert.ok(DOCUMENTED.has((JSON.parse(json) as { error: { code: string } }).error.code), reply);
    }
  });

  it("past the cap of requests in flight: 429 with retry-after until one finishes", async () => {
    const capped = await startHarness({ maxInFlight: 1 });
    try {
      // An upload that holds the only slot: its headers and a first chunk sent, the rest held back.
      const blob = crypto.randomBytes(2048);
      const path = `/v1/blobs/${toHex(crypto.sha256(blob))}`;
      const headers = await capped.signHeaders("PUT", path, capped.hospital, blob, {
        "content-type": "application/octet-stream",
      });
      const upload = request(`${capped.url}${path}`, { method: "PUT", headers });
      const done = new Promise<number>((resolve, reject) => {
        upload.on("response", (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        upload.on("error", reject);
      });
      upload.write(blob.subarray(0, 1024));
      await new Promise((r) => setTimeout(r, 200));
      const busy = await capped.call("GET", "/v1/health");
      assert.equal(busy.status, 429);
      assert.equal(busy.json<{ error: { code: string } }>().error.code, "RATE_LIMITED");
      assert.match(busy.headers.get("retry-after") ?? "", /^[1-9][0-9]*$/);
      upload.end(blob.subarray(1024));
      assert.equal(await done, 201);
      assert.equal((await capped.call("GET", "/v1/health")).status, 200);
    } finally {
      await capped.close();
    }
  });

  it("a flood from one caller is rate limited with retry-after", async () => {
    const limited = await startHarness({ ratePerSecond: 1, rateBurst: 3 });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 6; i++) {
        const answer = await limited.call("GET", "/v1/orgs", { as: limited.hospital });
        statuses.push(answer.status);
        if (answer.status === 429) {
          retryAfter = answer.headers.get("retry-after");
          assert.equal(answer.json<{ error: { code: string } }>().error.code, "RATE_LIMITED");
        }
      }
      assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
      assert.ok(statuses.includes(429));
      assert.match(retryAfter ?? "", /^[1-9][0-9]*$/);
    } finally {
      await limited.close();
    }
  });
});
