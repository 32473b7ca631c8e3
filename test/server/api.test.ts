/**
 * The node's HTTP API endpoint by endpoint, over a real socket against a real node (docs/api.md section 3):
 * 1. the public endpoints (health, node, checkpoints, proofs) and what they prove; 2. the hospital submits
 * entries, sees a ledger rejection as a 200 verdict, and is refused (changing nothing) for entries it does
 * not sign or that do not decode; 3. a patient's history, paged, every proof checked as the SDK will check
 * it, and a non-membership proof for a patient with no entries; 4. patients, orgs, lookup by blinded
 * identifier, the access log; 5. the OpenAPI document lists exactly the registered routes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBase64, fromHex, toBase64, toHex } from "../../src/core/encoding/bytes.ts";
import { parseJson } from "../../src/core/encoding/jcs.ts";
import { blindIdentifier, buildEntry } from "../../src/core/ledger/entry.ts";
import { leafHash } from "../../src/core/merkle/hash.ts";
import { verifyConsistency, verifyInclusion } from "../../src/core/merkle/proofs.ts";
import { openCheckpoint } from "../../src/core/note/checkpoint.ts";
import { parseCosignatureVerifierKey } from "../../src/core/note/cosignature.ts";
import { parseNoteVerifierKey } from "../../src/core/note/signed-note.ts";
import { patientIndexKey } from "../../src/core/patient-index/hashing.ts";
import {
  indexProofFromJson,
  verifyMembership,
  verifyNonMembership,
  type MembershipProof,
  type NonMembershipProof,
} from "../../src/core/patient-index/proof.ts";
import { buildHistoryPage } from "../../src/server/history.ts";
import {
  accept,
  accessEntry,
  buildRecord,
  crypto,
  enroll,
  grantEntry,
  signed,
  startHarness,
  submit,
  upload,
  type Harness,
  type Patient,
} from "./harness.ts";

const sha = (data: Uint8Array): Uint8Array => crypto.sha256(data);

interface Page {
  patient: string;
  checkpoint: string;
  size: string;
  indexProof: unknown;
  chain: { head: string; length: number };
  entries: {
    seq: string;
    position: string;
    id: string;
    ledgerTime: number;
    bytes: string;
    inclusion: string[];
  }[];
  next: string | null;
}

describe("the node's HTTP API", () => {
  let h: Harness;
  let ana: Patient;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  it("1. health, node, checkpoint (cosigned by the node's witness), checkpoints by size", async () => {
    const health = await h.call("GET", "/v1/health");
    assert.equal(health.status, 200);
    assert.deepEqual(health.json(), { ok: true, size: "1" });
    const node = (await h.call("GET", "/v1/node")).json<{
      origin: string;
      logKey: string;
      witnessKey: string;
      size: string;
    }>();
    assert.equal(node.origin, "server.medledger.example/log");
    assert.equal(node.size, "1");
    assert.equal(node.witnessKey, h.server.witnessKey);
    const latest = await h.call("GET", "/v1/checkpoint");
    assert.equal(latest.status, 200);
    assert.match(latest.headers.get("content-type") ?? "", /^text\/plain/);
    const witness = parseCosignatureVerifierKey(crypto, node.witnessKey);
    const opened = await openCheckpoint(latest.text, node.origin, parseNoteVerifierKey(crypto, node.logKey), [
      witness,
    ]);
    assert.equal(opened.checkpoint.size, 1n);
    assert.deepEqual(opened.witnesses, [witness], "the node cosigned its own checkpoint");
    const bySize = await h.call("GET", "/v1/checkpoints/1");
    assert.equal(bySize.text, latest.text);
    const missing = await h.call("GET", "/v1/checkpoints/99");
    assert.equal(missing.status, 404);
    assert.equal(missing.json<{ error: { code: string } }>().error.code, "NOT_FOUND");
  });

  it("2. submitting entries: accepted, a ledger rejection as a verdict, refusals that change nothing", async () => {
    ana = await enroll(h, h.hospital);
    const found = await h.call("GET", `/v1/entries/${ana.head}`, { as: ana });
    assert.equal(found.status, 200);
    const row = found.json<{ seq: string; position: string; status: string; reason: null; bytes: string }>();
    assert.equal(row.status, "accepted");
    assert.equal(toHex(crypto.sha256(fromBase64(row.bytes))), ana.head);

    // A record on a stale head: the ledger rejects it, and says so in a 200.
    const stale = { ...ana, head: "00".repeat(32) };
    const broken = await buildRecord(stale, { author: h.hospital, validator: h.validator });
    const [verdict] = await submit(h, h.hospital, [broken.bytes]);
    assert.equal(verdict?.accepted, false);
    assert.equal(verdict?.reason, "CHAIN_BROKEN");

    const sizeBefore = h.node.size;
    const rowsBefore = h.node.store.entryCount();
    // Not signed by the caller: 403.
    const other = await buildRecord(ana, { author: h.hospital, validator: h.validator });
    const notMine = await h.call("POST", "/v1/entries", { as: h.validator, json: { entries: [] } });
    assert.equal(notMine.status, 400, "an empty list is malformed");
    const refused = await h.call("POST", "/v1/entries", {
      as: ana,
      json: { entries: [toBase64(other.bytes)] },
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, "NOT_PERMITTED");
    // Bytes that do not decode: 400 ENTRY_INVALID, and nothing reaches the ordered stream.
    const junk = await h.call("POST", "/v1/entries", {
      as: h.hospital,
      json: { entries: [toBase64(new TextEncoder().encode('{"v":1}'))] },
    });
    assert.equal(junk.status, 400);
    assert.equal(junk.json<{ error: { code: string } }>().error.code, "ENTRY_INVALID");
    const extra = await h.call("POST", "/v1/entries", {
      as: h.hospital,
      json: { entries: [toBase64(other.bytes)], more: 1 },
    });
    assert.equal(extra.status, 400, "unknown members are refused");
    assert.equal(h.node.size, sizeBefore);
    assert.equal(h.node.store.entryCount(), rowsBefore);
  });

  it("3. inclusion and consistency proofs verify against the checkpoints", async () => {
    for (let i = 0; i < 3; i++) {
      const record = await buildRecord(ana, { author: h.hospital, validator: h.validator });
      assert.equal((await upload(h, h.hospital, record.blob)).status, 201);
      await accept(h, h.hospital, record.bytes, ana);
    }
    const size = h.node.size;
    const note = (await h.call("GET", "/v1/checkpoint")).text;
    const logKey = parseNoteVerifierKey(crypto, h.node.logKey.verifierKey);
    const { checkpoint } = await openCheckpoint(note, h.node.origin, logKey);
    assert.equal(checkpoint.size, size);
    const position = 2n;
    const inclusion = (await h.call("GET", `/v1/proofs/inclusion?position=${position}&size=${size}`)).json<{
      proof: string[];
    }>();
    const leaf = h.node.store.entryByPosition(position)!.bytes;
    verifyInclusion(sha, {
      index: position,
      size,
      leafHash: leafHash(sha, leaf),
      proof: inclusion.proof.map((p) => fromBase64(p)),
      root: checkpoint.rootHash,
    });
    const old = await openCheckpoint(h.node.store.checkpointAt(2n)!, h.node.origin, logKey);
    const consistency = (await h.call("GET", `/v1/proofs/consistency?from=2&to=${size}`)).json<{
      proof: string[];
    }>();
    verifyConsistency(sha, {
      size1: 2n,
      size2: size,
      root1: old.checkpoint.rootHash,
      root2: checkpoint.rootHash,
      proof: consistency.proof.map((p) => fromBase64(p)),
    });
    const beyond = await h.call("GET", `/v1/proofs/inclusion?position=0&size=${size + 1n}`);
    assert.equal(beyond.status, 400);
    assert.equal(beyond.json<{ error: { code: string } }>().error.code, "INDEX_OUT_OF_RANGE");
    assert.equal((await h.call("GET", "/v1/proofs/inclusion?position=0")).status, 400);
    assert.equal((await h.call("GET", "/v1/proofs/consistency?from=3&to=2")).status, 400);
  });

  it("4. the history, paged two at a time, proves every entry and the chain's completeness", async () => {
    const logKey = parseNoteVerifierKey(crypto, h.node.logKey.verifierKey);
    const key = patientIndexKey(sha, ana.id);
    const entries: Page["entries"] = [];
    let size: string | undefined;
    let after: string | null = null;
    let page: Page;
    do {
      const query: string = `limit=2${after === null ? "" : `&after=${after}`}${size === undefined ? "" : `&size=${size}`}`;
      const answer = await h.call("GET", `/v1/patients/${ana.id}/history?${query}`, { as: ana });
      assert.equal(answer.status, 200, answer.text);
      page = answer.json<Page>();
      size ??= page.size;
      assert.equal(page.size, size, "every page hangs on the first page's checkpoint");
      const { checkpoint } = await openCheckpoint(page.checkpoint, h.node.origin, logKey);
      const indexLine = checkpoint.extensions[0]!.split(" ")[1]!;
      verifyMembership(
        sha,
        fromBase64(indexLine),
        key,
        { head: fromHex(page.chain.head), length: page.chain.length },
        indexProofFromJson(page.indexProof) as MembershipProof,
      );
      for (const entry of page.entries) {
        verifyInclusion(sha, {
          index: BigInt(entry.position),
          size: checkpoint.size,
          leafHash: leafHash(sha, fromBase64(entry.bytes)),
          proof: entry.inclusion.map((p) => fromBase64(p)),
          root: checkpoint.rootHash,
        });
        assert.ok(entry.ledgerTime > 1_700_000_000);
      }
      entries.push(...page.entries);
      after = page.next;
    } while (after !== null);
    assert.equal(entries.length, page.chain.length);
    assert.equal(entries.length, 4, "enrolment and three records");
    // One unbroken chain from the enrolment to the head.
    let prev: string | null = null;
    for (const entry of entries) {
      const body = (parseJson(fromBase64(entry.bytes)) as { body: { prev: string | null } }).body;
      assert.equal(body.prev, prev);
      prev = entry.id;
    }
    assert.equal(prev, page.chain.head);
    // The exported page builder gives the same JSON as the endpoint.
    const direct = buildHistoryPage(h.node, ana.id, { limit: 2, size: BigInt(page.size) });
    const served = (
      await h.call("GET", `/v1/patients/${ana.id}/history?limit=2&size=${size}`, { as: ana })
    ).json<Page>();
    assert.deepEqual(direct, served);
  });

  it("5. a patient with no entries: 404 with a non-membership proof", async () => {
    const nobody = "ab".repeat(16);
    const answer = await h.call("GET", `/v1/patients/${nobody}/history`, { as: h.hospital });
    assert.equal(answer.status, 404);
    const body = answer.json<{
      error: { code: string };
      indexProof: unknown;
      checkpoint: string;
      size: string;
    }>();
    assert.equal(body.error.code, "NOT_FOUND");
    const { checkpoint } = await openCheckpoint(body.checkpoint, h.node.origin, h.node.logKey);
    assert.equal(checkpoint.size.toString(), body.size);
    verifyNonMembership(
      sha,
      fromBase64(checkpoint.extensions[0]!.split(" ")[1]!),
      patientIndexKey(sha, nobody),
      indexProofFromJson(body.indexProof) as NonMembershipProof,
    );
  });

  it("6. patients, orgs, lookup by blinded identifier, the access log", async () => {
    const orgs = (await h.call("GET", "/v1/orgs", { as: ana })).json<{
      orgs: { id: string; active: boolean }[];
    }>();
    assert.deepEqual(
      orgs.orgs.map((o) => o.id),
      ["hospital", "validator"],
    );
    // A link of an MRN blinded with the hospital's key, then a lookup by that blinded value.
    const blindingKey = crypto.randomBytes(32);
    const blinded = await blindIdentifier(crypto, blindingKey, "urn:test:mrn", "MRN-1");
    const link = buildEntry("identifier.link", {
      patient: ana.id,
      prev: ana.head!,
      org: "hospital",
      blinded,
    });
    await accept(
      h,
      h.hospital,
      await signed(link, [
        ["org", h.hospital],
        ["patient", ana],
      ]),
      ana,
    );
    const found = await h.call("POST", "/v1/lookup", { as: h.hospital, json: { blinded } });
    assert.equal(found.status, 200);
    assert.deepEqual(found.json(), { patient: ana.id });
    const otherOrg = await h.call("POST", "/v1/lookup", { as: h.validator, json: { blinded } });
    assert.equal(otherOrg.status, 404, "only the org's own links");
    // A grant shows in the patient's record with its encrypted scope.
    const grantId = await accept(h, ana, await grantEntry(ana, h.validator), ana);
    const patient = (await h.call("GET", `/v1/patients/${ana.id}`, { as: h.hospital })).json<{
      id: string;
      enrolledBy: string;
      chain: { head: string; length: number };
      grants: { id: string; grantee: string; active: boolean; scope: { ct: string } }[];
      orgs: { id: string }[];
    }>();
    assert.equal(patient.enrolledBy, "hospital");
    assert.equal(patient.chain.head, ana.head);
    assert.equal(patient.grants.length, 1);
    assert.equal(patient.grants[0]!.id, grantId);
    assert.equal(patient.grants[0]!.active, true);
    assert.equal(typeof patient.grants[0]!.scope.ct, "string");
    // The access log: an access event by the hospital under care.
    const record = h.node.state.records.values().next().value!;
    const eventId = await accept(
      h,
      h.hospital,
      await accessEntry(ana, h.hospital, [record.id], { type: "care" }),
      ana,
    );
    const log = await h.call("GET", `/v1/patients/${ana.id}/access-log`, { as: ana });
    assert.equal(log.status, 200);
    const events = log.json<{
      events: { entry: string; org: string; records: string[] }[];
      emergencies: unknown[];
    }>();
    assert.deepEqual(
      events.events.map((e) => [e.entry, e.org, e.records]),
      [[eventId, "hospital", [record.id]]],
    );
    assert.deepEqual(events.emergencies, []);
    const notPatient = await h.call("GET", `/v1/patients/${ana.id}/access-log`, { as: h.hospital });
    assert.equal(notPatient.status, 403);
  });

  it("7. the OpenAPI document parses and lists exactly the routes the server registers", async () => {
    const answer = await h.call("GET", "/v1/openapi.json");
    assert.equal(answer.status, 200);
    const doc = parseJson(answer.bytes) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    assert.equal(doc.openapi, "3.1.0");
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    const registered = h.server.routes.map((r) => `${r.method} ${r.path}`).sort();
    assert.deepEqual(documented, registered);
    // Every $ref points at a schema the document defines.
    const schemas = (doc as unknown as { components: { schemas: Record<string, unknown> } }).components
      .schemas;
    for (const [, name] of answer.text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)) {
      assert.ok(name !== undefined && name in schemas, `unresolved $ref ${name}`);
    }
    assert.ok(registered.length >= 22);
    const unknown = await h.call("GET", "/v1/nothing");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json<{ error: { code: string } }>().error.code, "NOT_FOUND");
  });
});
