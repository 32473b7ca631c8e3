/**
 * The read rights of docs/api.md section 4, enforced by the server, as a story:
 * 1. the hospital enrols Ana and writes a record (validated by the validator) and a psychotherapy note;
 * 2. who may read Ana's history and her record: Ana, the author, the validator; not the clinic, not a
 *    stranger org; 3. ciphertext: Ana gets her record's but never her psychotherapy note's; an org only
 *    under its own recent access event (the author under care; the validator never for the note);
 * 4. Ana grants the clinic: it reads the history, and downloads a record wrapped for it and a record whose
 *    key Ana shared, each only under a grant-basis access event naming it; 5. Ana revokes: the clinic
 *    reads nothing any more, its recent access event notwithstanding; 6. an access event older than an
 *    hour opens nothing; 7. a stranger's emergency declaration opens the history for 72 hours, never
 *    ciphertext it holds no envelope for.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  accept,
  accessEntry,
  admitOrg,
  buildRecord,
  emergencyEntry,
  enroll,
  grantEntry,
  revokeEntry,
  shareEntry,
  startHarness,
  upload,
  type Actor,
  type BuiltRecord,
  type Harness,
  type Patient,
} from "./harness.ts";

describe("read rights (docs/api.md section 4)", () => {
  let h: Harness;
  let ana: Patient;
  let clinic: Actor;
  let stranger: Actor;
  let checker: Actor;
  let record: BuiltRecord;
  let note: BuiltRecord;
  let forClinic: BuiltRecord;
  let grant: string;
  let clinicEvent: string;

  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  const status = async (path: string, as: Actor, headers: Record<string, string> = {}) =>
    (await h.call("GET", path, { as, headers })).status;
  const history = (as: Actor) => status(`/v1/patients/${ana.id}/history`, as);
  const blob = (r: BuiltRecord, as: Actor, event?: string) =>
    status(`/v1/blobs/${r.hash}`, as, event === undefined ? {} : { "medledger-access": event });

  it("1. the hospital enrols Ana, writes a validated record and a psychotherapy note", async () => {
    clinic = await admitOrg(h, "clinic", ["author"]);
    stranger = await admitOrg(h, "stranger", ["author"]);
    checker = await admitOrg(h, "checker", ["validator"]);
    ana = await enroll(h, h.hospital);
    record = await buildRecord(ana, { author: h.hospital, validator: h.validator });
    assert.equal((await upload(h, h.hospital, record.blob)).status, 201);
    await accept(h, h.hospital, record.bytes, ana);
    note = await buildRecord(ana, { author: h.hospital, validator: h.validator, withheld: true });
    assert.equal((await upload(h, h.hospital, note.blob)).status, 201);
    await accept(h, h.hospital, note.bytes, ana);
  });

  it("2. the history and the record: Ana, the author and the validator; not the clinic nor a stranger", async () => {
    assert.equal(await history(ana), 200);
    assert.equal(await history(h.hospital), 200);
    assert.equal(await history(h.validator), 200);
    assert.equal(await history(clinic), 403);
    assert.equal(await history(stranger), 403);
    // Patient info (keys, chain head, grants: ledger data) is open to authors, who need it to write.
    assert.equal(await status(`/v1/patients/${ana.id}`, clinic), 200);
    assert.equal(await status(`/v1/patients/${ana.id}`, checker), 403);
    assert.equal(await status(`/v1/entries/${record.id}`, stranger), 403);
    assert.equal(await status(`/v1/entries/${record.id}`, h.validator), 200);
  });

  it("3. ciphertext: Ana's own record yes, her psychotherapy note never; orgs only under an access event", async () => {
    assert.equal(await blob(record, ana), 200);
    assert.equal(await blob(note, ana), 403, "a psychotherapy note is withheld from its patient");
    assert.equal(await blob(record, h.hospital), 403, "no access event, no ciphertext");
    const care = await accept(
      h,
      h.hospital,
      await accessEntry(ana, h.hospital, [note.record, record.record], { type: "care" }),
      ana,
    );
    assert.equal(await blob(record, h.hospital, care), 200);
    assert.equal(await blob(note, h.hospital, care), 200, "the author reads its own note");
    assert.equal(await blob(record, h.validator, care), 403, "another org's access event opens nothing");
    const validatorCare = await accept(
      h,
      h.validator,
      await accessEntry(ana, h.validator, [record.record], { type: "care" }),
      ana,
    );
    assert.equal(await blob(record, h.validator, validatorCare), 200);
    assert.equal(
      await blob(note, h.validator, validatorCare),
      403,
      "the validator never reads a withheld note",
    );
    assert.equal(await blob(record, stranger), 403);
    assert.equal(await blob(record, clinic, care), 403);
    assert.equal(await status(`/v1/blobs/${"0".repeat(64)}`, ana), 404, "no such blob");
  });

  it("4. after Ana's grant the clinic reads her history, and ciphertext it holds a key for, under its access event", async () => {
    grant = await accept(h, ana, await grantEntry(ana, clinic), ana);
    assert.equal(await history(clinic), 200);
    assert.equal(await status(`/v1/patients/${ana.id}`, clinic), 200);
    forClinic = await buildRecord(ana, { author: h.hospital, validator: h.validator, grantees: [clinic] });
    assert.equal((await upload(h, h.hospital, forClinic.blob)).status, 201);
    await accept(h, h.hospital, forClinic.bytes, ana);
    assert.equal(await blob(forClinic, clinic), 403, "no access event yet");
    clinicEvent = await accept(
      h,
      clinic,
      await accessEntry(ana, clinic, [forClinic.record], { type: "grant", grant }),
      ana,
    );
    assert.equal(await blob(forClinic, clinic, clinicEvent), 200);
    assert.equal(await blob(record, clinic, clinicEvent), 403, "the event does not name that record");
    // The older record was not wrapped for the clinic: Ana shares its key, then the clinic may fetch it.
    await accept(h, ana, await shareEntry(ana, grant, clinic, [record.record]), ana);
    const shared = await accept(
      h,
      clinic,
      await accessEntry(ana, clinic, [record.record], { type: "grant", grant }),
      ana,
    );
    assert.equal(await blob(record, clinic, shared), 200);
  });

  it("5. after revocation the clinic reads nothing, whatever access event it holds", async () => {
    await accept(h, ana, await revokeEntry(ana, grant), ana);
    assert.equal(await history(clinic), 403);
    assert.equal(await blob(forClinic, clinic, clinicEvent), 403);
    assert.equal(await history(ana), 200, "Ana still reads her own history");
  });

  it("6. an access event more than an hour old opens nothing", async () => {
    const care = await accept(
      h,
      h.hospital,
      await accessEntry(ana, h.hospital, [record.record], { type: "care" }),
      ana,
    );
    assert.equal(await blob(record, h.hospital, care), 200);
    h.clockOffset += 3601_000;
    assert.equal(await blob(record, h.hospital, care), 403);
    const fresh = await accept(
      h,
      h.hospital,
      await accessEntry(ana, h.hospital, [record.record], { type: "care" }),
      ana,
    );
    assert.equal(await blob(record, h.hospital, fresh), 200);
  });

  it("7. a stranger's emergency declaration opens the history for 72 hours, never ciphertext without a key", async () => {
    const emergency = await accept(h, stranger, await emergencyEntry(ana, stranger), ana);
    assert.equal(await history(stranger), 200);
    const event = await accept(
      h,
      stranger,
      await accessEntry(ana, stranger, [record.record], { type: "emergency", emergency }),
      ana,
    );
    assert.equal(await blob(record, stranger, event), 403, "it holds no envelope for the record");
    h.clockOffset += 73 * 3600_000;
    assert.equal(await history(stranger), 403);
  });
});
