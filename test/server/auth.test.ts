/**
 * Request authentication (docs/api.md section 2): the hospital's submission of a valid enrolment, sent
 * 1. unsigned, 2. signed by another key under the hospital's keyid, 3. under an unknown keyid, 4. signed
 * ten minutes ago, 5. with its body changed after signing, 6. twice (the second is a replay), 7. by an org
 * after its retirement. Each refusal is a 401 with its own code, and leaves the ledger, its ordered stream
 * and the queue exactly as they were.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { buildEntry, newRandomId } from "../../src/core/ledger/entry.ts";
import { accept, admitOrg, crypto, signed, startHarness, type Actor, type Harness } from "./harness.ts";

describe("request authentication", () => {
  let h: Harness;
  let body: Uint8Array;
  before(async () => {
    h = await startHarness();
    const [sign, enc] = await Promise.all([crypto.ed25519Generate(), crypto.x25519Generate()]);
    const id = newRandomId(crypto);
    const entry = buildEntry("patient.enroll", {
      patient: id,
      prev: null,
      org: "hospital",
      signKey: toHex(sign.publicKey),
      encKey: toHex(enc.publicKey),
    });
    const patient: Actor = { keyid: `patient:${id}`, id, sign, enc };
    const bytes = await signed(entry, [
      ["org", h.hospital],
      ["patient", patient],
    ]);
    body = utf8(JSON.stringify({ entries: [toBase64(bytes)] }));
  });
  after(async () => h.close());

  /** The node's observable state: tree size, entry rows, submissions. */
  const snapshot = () => [h.node.size, h.node.store.entryCount(), h.node.store.submissionCount()];

  const post = async (headers: Record<string, string>, payload = body) => {
    const response = await fetch(`${h.url}/v1/entries`, {
      method: "POST",
      headers,
      body: Buffer.from(payload),
    });
    return {
      status: response.status,
      body: (await response.json()) as { error?: { code: string; message: string } },
    };
  };

  const refusedWith = async (headers: Record<string, string>, code: string, payload = body) => {
    const before = snapshot();
    const answer = await post(headers, payload);
    assert.equal(answer.status, 401, JSON.stringify(answer.body));
    assert.equal(answer.body.error?.code, code);
    assert.doesNotMatch(answer.body.error?.message ?? "", /at .*\.ts:\d+/, "no stack trace");
    assert.deepEqual(snapshot(), before, "nothing changed");
  };

  it("1. unsigned: AUTH_REQUIRED", async () => {
    await refusedWith({ "content-type": "application/json" }, "AUTH_REQUIRED");
  });

  it("2. signed by another key under the hospital's keyid: SIGNATURE_INVALID", async () => {
    const forger: Actor = { ...h.hospital, sign: await crypto.ed25519Generate() };
    const headers = await h.signHeaders("POST", "/v1/entries", forger, body, {
      "content-type": "application/json",
    });
    await refusedWith(headers, "SIGNATURE_INVALID");
  });

  it("3. an unknown keyid: AUTH_INVALID", async () => {
    const stranger: Actor = { ...h.hospital, keyid: "org:nobody" };
    const headers = await h.signHeaders("POST", "/v1/entries", stranger, body, {
      "content-type": "application/json",
    });
    await refusedWith(headers, "AUTH_INVALID");
  });

  it("4. stale (created ten minutes ago): AUTH_INVALID", async () => {
    const answer = await h.call("POST", "/v1/entries", {
      as: h.hospital,
      body,
      headers: { "content-type": "application/json" },
      clock: () => Date.now() - 600_000,
    });
    assert.equal(answer.status, 401);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, "AUTH_INVALID");
    assert.match(answer.json<{ error: { message: string } }>().error.message, /window/);
  });

  it("5. body changed after signing: DIGEST_MISMATCH", async () => {
    const headers = await h.signHeaders("POST", "/v1/entries", h.hospital, body, {
      "content-type": "application/json",
    });
    const changed = utf8(new TextDecoder().decode(body).replace('"entries"', '"entries" '));
    await refusedWith(headers, "DIGEST_MISMATCH", changed);
  });

  it("6. the same signed request twice: the second is AUTH_REPLAYED", async () => {
    const headers = await h.signHeaders("POST", "/v1/entries", h.hospital, body, {
      "content-type": "application/json",
    });
    const first = await post(headers);
    assert.equal(first.status, 200);
    await refusedWith(headers, "AUTH_REPLAYED");
  });

  it("7. a retired org's key no longer authenticates", async () => {
    const clinic = await admitOrg(h, "clinic", ["author"]);
    assert.equal((await h.call("GET", "/v1/orgs", { as: clinic })).status, 200);
    const retire = buildEntry("org.retire", { org: "clinic" });
    await accept(h, h.consortium, await signed(retire, [["consortium", h.consortium]]));
    const answer = await h.call("GET", "/v1/orgs", { as: clinic });
    assert.equal(answer.status, 401);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, "AUTH_INVALID");
  });

  it("a signed endpoint called without a signature, and a public one with none needed", async () => {
    const orgs = await h.call("GET", "/v1/orgs");
    assert.equal(orgs.status, 401);
    assert.equal((await h.call("GET", "/v1/health")).status, 200);
  });
});
