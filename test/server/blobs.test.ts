/**
 * Blob uploads (docs/api.md, "Blobs"): 1. an org uploads ciphertext, and uploading it again is a 200;
 * 2. a body whose SHA-256 is not the path is refused and nothing is stored; 3. a body over the bound is
 * refused, announced (content-length) or streamed (chunked), and nothing is stored; 4. an unsigned upload
 * is refused before its body is read, a patient may not upload, and the content-type must be octet-stream.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { toHex } from "../../src/core/encoding/bytes.ts";
import { crypto, enroll, startHarness, upload, type Harness } from "./harness.ts";

const MAX = 4096;

describe("blobs", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ blobBytes: MAX });
  });
  after(async () => h.close());

  const stored = (bytes: Uint8Array) => h.node.store.hasBlob(crypto.sha256(bytes));

  it("1. upload, then the same again", async () => {
    const blob = crypto.randomBytes(1000);
    const first = await upload(h, h.hospital, blob);
    assert.equal(first.status, 201);
    assert.deepEqual(first.json(), { hash: toHex(crypto.sha256(blob)), size: 1000 });
    assert.equal((await upload(h, h.hospital, blob)).status, 200);
    assert.ok(stored(blob));
    const empty = await upload(h, h.hospital, new Uint8Array(0));
    assert.equal(empty.status, 201, "an empty blob is a blob");
  });

  it("2. a body that is not the hash in the path: 400, nothing stored", async () => {
    const claimed = crypto.randomBytes(100);
    const sent = crypto.randomBytes(100);
    const answer = await h.call("PUT", `/v1/blobs/${toHex(crypto.sha256(claimed))}`, {
      as: h.hospital,
      body: sent,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, "INVALID_ARGUMENT");
    assert.ok(!stored(claimed) && !stored(sent));
  });

  it("3a. over the bound, announced by content-length: 413, nothing stored", async () => {
    const big = crypto.randomBytes(MAX + 1);
    const answer = await upload(h, h.hospital, big);
    assert.equal(answer.status, 413);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, "TOO_LARGE");
    assert.ok(!stored(big));
  });

  it("3b. over the bound, streamed in chunks: 413 once the bound is passed, nothing stored", async () => {
    const big = crypto.randomBytes(MAX * 4);
    const path = `/v1/blobs/${toHex(crypto.sha256(big))}`;
    const headers = await h.signHeaders("PUT", path, h.hospital, big, {
      "content-type": "application/octet-stream",
    });
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${h.url}${path}`, {
        method: "PUT",
        headers: { ...headers, "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      let at = 0;
      const next = (): void => {
        if (at >= big.length) {
          req.end();
          return;
        }
        const chunk = big.subarray(at, at + 1024);
        at += 1024;
        req.write(chunk, () => setTimeout(next, 2));
      };
      next();
    });
    assert.equal(status, 413);
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, "TOO_LARGE");
    assert.ok(!stored(big));
  });

  it("4. unsigned, by a patient, or of the wrong content-type: refused", async () => {
    const blob = crypto.randomBytes(50);
    const path = `/v1/blobs/${toHex(crypto.sha256(blob))}`;
    const unsigned = await h.call("PUT", path, {
      body: blob,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(unsigned.status, 401);
    assert.equal(unsigned.json<{ error: { code: string } }>().error.code, "AUTH_REQUIRED");
    const ana = await enroll(h, h.hospital);
    assert.equal((await upload(h, ana, blob)).status, 403);
    const wrongType = await h.call("PUT", path, {
      as: h.hospital,
      body: blob,
      headers: { "content-type": "text/plain" },
    });
    assert.equal(wrongType.status, 400);
    assert.ok(!stored(blob));
  });
});
