/**
 * The validation queue (docs/api.md, "The validation queue"), as a story:
 * 1. the hospital uploads a record's ciphertext and queues the record it signed as author; the queue
 *    refuses what could never be accepted (changing nothing); 2. the validator lists its pending items,
 *    reads the item and its ciphertext (no access event needed for a queue item), a stranger may not;
 * 3. the node restarts and the item is still there; 4. the validator attests: the record is accepted into
 *    the ledger and the item says so; 5. the validator rejects a second record with a reason and a note,
 *    which the author sees, and the ledger never hears of it; 6. an item whose chain moved on while it
 *    waited is refused by the ledger as CHAIN_BROKEN; 7. paging.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBase64, toBase64 } from "../../src/core/encoding/bytes.ts";
import { parseEntry, signingMessage } from "../../src/core/ledger/entry.ts";
import {
  accept,
  accessEntry,
  admitOrg,
  buildRecord,
  crypto,
  enroll,
  startHarness,
  upload,
  type Actor,
  type BuiltRecord,
  type Harness,
  type Patient,
} from "./harness.ts";

interface Item {
  queueId: string;
  status: string;
  author: string;
  validator: string;
  patient: string;
  kind: string;
  entry: string;
  reason: string | null;
  note: string | null;
  result: { accepted: boolean; reason?: string } | null;
}

describe("the validation queue", () => {
  let h: Harness;
  let ana: Patient;
  let stranger: Actor;
  let first: BuiltRecord;
  let queueId: string;

  before(async () => {
    h = await startHarness();
    stranger = await admitOrg(h, "stranger", ["author"]);
    ana = await enroll(h, h.hospital);
  });
  after(async () => h.close());

  const queue = (record: BuiltRecord, as: Actor = h.hospital) =>
    h.call("POST", "/v1/queue", { as, json: { entry: toBase64(record.bytes) } });
  const code = (answer: { json<T>(): T }) =>
    answer.json<{ error: { code: string; message: string } }>().error;
  /** The validator's attestation: its Ed25519 signature in role validator over the entry. */
  const attestation = async (entry: string, validator: Actor = h.validator) =>
    toBase64(
      await crypto.ed25519Sign(
        validator.sign.secretKey,
        signingMessage(parseEntry(fromBase64(entry)), "validator"),
      ),
    );

  it("1. the hospital queues a record signed as author; doomed records are refused", async () => {
    first = await buildRecord(ana, { author: h.hospital, validator: h.validator, attested: false });
    const missingBlob = await queue(first);
    assert.equal(missingBlob.status, 400, "its ciphertext was not uploaded yet");
    assert.match(code(missingBlob).message, /was not uploaded/);
    assert.equal((await upload(h, h.hospital, first.blob)).status, 201);
    const sizeBefore = h.node.size;
    const queued = await queue(first);
    assert.equal(queued.status, 201);
    ({ queueId } = queued.json<{ queueId: string; status: string }>());
    assert.equal(queued.json<{ status: string }>().status, "pending");
    assert.equal((await queue(first)).status, 200, "the same bytes again: the same item");
    assert.equal(h.node.size, sizeBefore, "the ledger has not heard of it");

    const attested = await buildRecord(ana, { author: h.hospital, validator: h.validator });
    await upload(h, h.hospital, attested.blob);
    assert.equal(code(await queue(attested)).code, "ENTRY_INVALID", "only the author's signature");
    assert.equal((await queue(first, h.validator)).status, 403, "only the author queues its record");
    const stale = await buildRecord(
      { ...ana, head: "00".repeat(32) },
      { author: h.hospital, validator: h.validator, attested: false },
    );
    await upload(h, h.hospital, stale.blob);
    assert.match(code(await queue(stale)).message, /^CHAIN_BROKEN/);
    const notValidator = await buildRecord(ana, { author: h.hospital, validator: stranger, attested: false });
    await upload(h, h.hospital, notValidator.blob);
    assert.match(code(await queue(notValidator)).message, /^ROLE_MISSING/);
    assert.equal(h.node.size, sizeBefore, "nothing refused reached the ledger");
  });

  it("2. the validator lists and reads its item and the ciphertext; a stranger may not", async () => {
    const list = await h.call("GET", "/v1/queue?role=validator&status=pending", { as: h.validator });
    assert.equal(list.status, 200);
    const items = list.json<{ items: Item[]; next: string | null }>();
    assert.deepEqual(
      items.items.map((i) => i.queueId),
      [queueId],
    );
    assert.equal(items.next, null);
    const mine = await h.call("GET", "/v1/queue?role=author", { as: h.hospital });
    assert.deepEqual(
      mine.json<{ items: Item[] }>().items.map((i) => i.queueId),
      [queueId],
    );
    const item = (await h.call("GET", `/v1/queue/${queueId}`, { as: h.validator })).json<Item>();
    assert.equal(item.status, "pending");
    assert.equal(item.author, "hospital");
    assert.equal(item.patient, ana.id);
    assert.equal(item.entry, toBase64(first.bytes));
    assert.equal((await h.call("GET", `/v1/queue/${queueId}`, { as: stranger })).status, 403);
    assert.equal((await h.call("GET", `/v1/queue/${"0".repeat(64)}`, { as: h.validator })).status, 404);
    const ciphertext = await h.call("GET", `/v1/blobs/${first.hash}`, { as: h.validator });
    assert.equal(ciphertext.status, 200, "the validator of a pending item reads its ciphertext");
    assert.deepEqual(ciphertext.bytes, first.blob);
    assert.equal((await h.call("GET", `/v1/blobs/${first.hash}`, { as: stranger })).status, 403);
  });

  it("3. the queue survives a restart of the node", async () => {
    await h.restart();
    const item = await h.call("GET", `/v1/queue/${queueId}`, { as: h.hospital });
    assert.equal(item.status, 200);
    assert.equal(item.json<Item>().status, "pending");
  });

  it("4. the validator attests: the record is in the ledger, and the item says so", async () => {
    const item = (await h.call("GET", `/v1/queue/${queueId}`, { as: h.validator })).json<Item>();
    const forged = await h.call("POST", `/v1/queue/${queueId}/attest`, {
      as: h.validator,
      json: { signature: await attestation(item.entry, stranger) },
    });
    assert.equal(forged.status, 400, "a signature that does not verify changes nothing");
    assert.equal(
      (await h.call("GET", `/v1/queue/${queueId}`, { as: h.validator })).json<Item>().status,
      "pending",
    );
    const byAuthor = await h.call("POST", `/v1/queue/${queueId}/attest`, {
      as: h.hospital,
      json: { signature: await attestation(item.entry) },
    });
    assert.equal(byAuthor.status, 403, "only the item's validator attests");
    const answer = await h.call("POST", `/v1/queue/${queueId}/attest`, {
      as: h.validator,
      json: { signature: await attestation(item.entry) },
    });
    assert.equal(answer.status, 200, answer.text);
    const verdict = answer.json<{ status: string; result: { accepted: boolean; id: string } }>();
    assert.equal(verdict.status, "attested");
    assert.equal(verdict.result.accepted, true);
    assert.ok(h.node.state.records.has(first.record), "the record is in the ledger");
    ana.head = verdict.result.id;
    const settled = (await h.call("GET", `/v1/queue/${queueId}`, { as: h.hospital })).json<Item>();
    assert.equal(settled.status, "attested");
    assert.equal(settled.result?.accepted, true);
    const again = await h.call("POST", `/v1/queue/${queueId}/attest`, {
      as: h.validator,
      json: { signature: await attestation(item.entry) },
    });
    assert.equal(again.status, 409);
  });

  it("5. the validator rejects with a reason; the author sees it, the ledger never hears of it", async () => {
    const second = await buildRecord(ana, { author: h.hospital, validator: h.validator, attested: false });
    await upload(h, h.hospital, second.blob);
    const { queueId: id } = (await queue(second)).json<{ queueId: string }>();
    const size = h.node.size;
    const badReason = await h.call("POST", `/v1/queue/${id}/reject`, {
      as: h.validator,
      json: { reason: "BORED" },
    });
    assert.equal(badReason.status, 400);
    const rejected = await h.call("POST", `/v1/queue/${id}/reject`, {
      as: h.validator,
      json: { reason: "FHIR_INVALID", note: "Observation.code is missing" },
    });
    assert.equal(rejected.status, 200);
    assert.deepEqual(rejected.json(), { status: "rejected" });
    const seen = (await h.call("GET", `/v1/queue/${id}`, { as: h.hospital })).json<Item>();
    assert.equal(seen.status, "rejected");
    assert.equal(seen.reason, "FHIR_INVALID");
    assert.equal(seen.note, "Observation.code is missing");
    assert.equal(h.node.size, size);
    assert.ok(!h.node.state.records.has(second.record));
  });

  it("6. an item whose patient chain moved on while it waited: the ledger refuses it, CHAIN_BROKEN", async () => {
    const waiting = await buildRecord(ana, { author: h.hospital, validator: h.validator, attested: false });
    await upload(h, h.hospital, waiting.blob);
    const { queueId: id } = (await queue(waiting)).json<{ queueId: string }>();
    await accept(h, h.hospital, await accessEntry(ana, h.hospital, [first.record], { type: "care" }), ana);
    const answer = await h.call("POST", `/v1/queue/${id}/attest`, {
      as: h.validator,
      json: { signature: await attestation(toBase64(waiting.bytes)) },
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(
      (({ status, reason }) => ({ status, reason }))(answer.json<{ status: string; reason: string }>()),
      { status: "rejected", reason: "CHAIN_BROKEN" },
    );
    const seen = (await h.call("GET", `/v1/queue/${id}`, { as: h.hospital })).json<Item>();
    assert.equal(seen.status, "rejected");
    assert.equal(seen.reason, "CHAIN_BROKEN");
  });

  it("7. paging through the validator's items", async () => {
    const ids: string[] = [];
    let after = "";
    for (;;) {
      const page = (
        await h.call("GET", `/v1/queue?role=validator&limit=1${after}`, { as: h.validator })
      ).json<{ items: Item[]; next: string | null }>();
      ids.push(...page.items.map((i) => i.queueId));
      if (page.next === null) break;
      after = `&after=${page.next}`;
    }
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids).size, 3);
    assert.equal((await h.call("GET", "/v1/queue?role=validator&limit=0", { as: h.validator })).status, 400);
    assert.equal((await h.call("GET", "/v1/queue", { as: h.validator })).status, 400, "role is required");
    assert.equal((await h.call("GET", "/v1/queue?role=author", { as: ana })).status, 403);
  });
});
