/**
 * The SDK end to end, over a real socket against the node's real HTTP API (src/server/app.ts) on an
 * in-process node, as a story in numbered steps: keys and trust; an org admitted; Ana enrolled and her MRN
 * linked; a lab result written, validated and read by Ana; a bad record rejected; a psychotherapy note Ana
 * cannot decrypt; a laboratory that cannot read until granted, reads what the grant covers (and nothing
 * else), gets new records wrapped for it, is caught up by the patient's sync, and cannot read what is
 * written after revocation; an amendment; the access log; tampered responses refused; an absent patient.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBase64, toBase64, toHex } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { generateCosignatureKey } from "../../src/core/note/cosignature.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { createServer, type MedledgerServer } from "../../src/server/app.ts";
import {
  MedledgerClient,
  createOrgKeyFile,
  createPatientKeyFile,
  isRejected,
  unlockIdentity,
  type History,
  type HistoryItem,
  type Identity,
  type RecordInput,
  type TrustState,
} from "../../src/sdk/index.ts";
import { startRegion, type Region } from "./support.ts";

const WEAK = { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true } as const;
const MRN = "urn:oid:1.2.3.4.hospital";

function refusedWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isLedgerError(err), `expected a LedgerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `${err.code}: ${err.message}`);
    return true;
  };
}

function urlOf(input: string | URL | Request): string {
  return typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
}

function recordsOf(history: History): HistoryItem[] {
  return history.items.filter((i) => i.record !== undefined);
}

function statusOf(history: History, record: string): string | undefined {
  return history.items.find((i) => i.record?.id === record)?.record?.status;
}

describe("the SDK against a real node API", () => {
  let region: Region;
  let server: MedledgerServer;
  let url: string;
  let ana: Identity;
  let clinic: Identity;
  const trustUpdates: TrustState[] = [];
  const ms = (): number => region.clock.now * 1000;
  const client = (identity?: Identity, fetchFn?: typeof fetch, trust?: TrustState): MedledgerClient =>
    new MedledgerClient({
      baseUrl: url,
      crypto,
      ...(identity === undefined ? {} : { identity }),
      trust: trust ?? region.trust(),
      now: ms,
      ...(fetchFn === undefined ? {} : { fetch: fetchFn }),
      onTrustUpdate: (t) => {
        trustUpdates.push(t);
      },
    });
  const lab = (patient: string, date = "2026-10-14", title = "HbA1c"): RecordInput => ({
    patient,
    validator: "validator",
    type: "laboratory-result",
    sensitivity: "normal",
    date,
    title,
    resource: { resourceType: "Observation", status: "final", subject: { reference: `Patient/${patient}` } },
  });
  /** Write a record as `author` and have the validator attest it; returns the record id. */
  const written = async (author: Identity, input: RecordInput): Promise<string> => {
    const { queueId, record } = await client(author).addRecord(input);
    const result = await client(region.validator).validateRecord(queueId);
    assert.ok(result.accepted);
    return record;
  };
  const records: Record<string, string> = {};

  before(async () => {
    region = await startRegion(crypto);
    server = await createServer({
      node: region.node,
      crypto,
      clock: ms,
      limits: { ratePerSecond: 100_000, rateBurst: 100_000 },
    });
    url = await server.listen({ host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    await server.close();
    await region.close();
  });

  it("1. key files unlock into identities; the client pins the node and remembers its checkpoint", async () => {
    const created = await createPatientKeyFile(crypto, { passphrase: "correct horse", ...WEAK });
    ana = await unlockIdentity(crypto, created.file, "correct horse");
    assert.equal(ana.kind, "patient");
    assert.equal(ana.id, created.patientId);
    assert.equal(ana.keyid, `patient:${created.patientId}`);
    await assert.rejects(unlockIdentity(crypto, created.file, "wrong"), refusedWith("PASSPHRASE_WRONG"));
    const c = client(ana);
    const info = await c.node();
    assert.equal(info.origin, region.node.origin);
    const verified = await c.checkpoint();
    assert.equal(verified.checkpoint.size, region.node.size);
    assert.equal(c.trust.checkpoint, region.node.checkpoint()!.note);
    assert.equal(trustUpdates.length, 1);
    const other = await startRegion(crypto);
    try {
      const wrong = client(ana, undefined, other.trust());
      await assert.rejects(wrong.node(), refusedWith("KEY_INVALID"));
      await assert.rejects(wrong.checkpoint(), refusedWith("SIGNATURE_INVALID"));
    } finally {
      await other.close();
    }
  });

  it("2. the consortium admits a clinic from its key file", async () => {
    const file = await createOrgKeyFile(crypto, { orgId: "clinic", passphrase: "clinic pass", ...WEAK });
    clinic = await unlockIdentity(crypto, file.file, "clinic pass");
    assert.equal(clinic.keyid, "org:clinic");
    assert.ok(clinic.blindingKey !== undefined && clinic.blindingKey.length === 32);
    const result = await client().admitOrg(
      { orgId: "clinic", roles: ["author"], signKey: file.signKey, encKey: file.encKey },
      [region.consortium],
    );
    assert.ok(result.accepted);
    const orgs = await client(region.hospital).orgs();
    assert.deepEqual(
      orgs.map((o) => o.id),
      ["clinic", "hospital", "lab", "validator"],
    );
    await assert.rejects(
      client().admitOrg({ orgId: "clinic", roles: ["author"], signKey: file.signKey, encKey: file.encKey }, [
        region.consortium,
      ]),
      // The same signed bytes again: refused as a duplicate entry (a re-signed one would be ORG_EXISTS).
      (err) => isRejected(err, "DUPLICATE_ID"),
    );
  });

  it("3. the hospital enrols Ana and links its MRN; it finds her by MRN, nobody else can", async () => {
    const hospital = client(region.hospital);
    assert.ok((await hospital.enrollPatient(ana)).accepted);
    await hospital.linkIdentifier(ana, MRN, "MRN-0001");
    assert.equal(await hospital.findPatient(MRN, "MRN-0001"), ana.id);
    assert.equal(await hospital.findPatient(MRN, "MRN-0002"), null);
    assert.equal(await client(region.lab).findPatient(MRN, "MRN-0001"), null);
    await hospital.unlinkIdentifier(ana, MRN, "MRN-0001");
    assert.equal(await hospital.findPatient(MRN, "MRN-0001"), null);
    await hospital.linkIdentifier(ana, MRN, "MRN-0001");
    await assert.rejects(hospital.linkIdentifier(ana, MRN, "MRN-0001"), (err) =>
      isRejected(err, "IDENTIFIER_LINKED"),
    );
  });

  it("4. the hospital writes a lab result with an attachment; the validator opens and attests it", async () => {
    const pdf = new Uint8Array(1024 * 1024 + 10);
    pdf.set(crypto.randomBytes(1024 * 1024));
    pdf.set(crypto.randomBytes(10), 1024 * 1024);
    const { queueId, record } = await client(region.hospital).addRecord({
      ...lab(ana.id),
      attachments: [{ name: "report.pdf", contentType: "application/pdf", bytes: pdf }],
    });
    records.first = record;
    const validator = client(region.validator);
    const pending = await validator.queue("validator", "pending");
    assert.deepEqual(
      pending.map((q) => q.queueId),
      [queueId],
    );
    const opened = await validator.openQueueItem(queueId);
    assert.equal(opened.payload?.title, "HbA1c");
    assert.deepEqual(opened.findings, []);
    assert.ok((await validator.validateRecord(queueId)).accepted);
    await assert.rejects(validator.validateRecord(queueId), refusedWith("INVALID_ARGUMENT"));

    const history = await client(ana).history(ana.id);
    assert.equal(history.complete, true);
    const [item] = recordsOf(history);
    assert.equal(item!.record!.status, "decrypted");
    assert.equal(item!.record!.payload!.resource.resourceType, "Observation");
    assert.deepEqual(item!.record!.attachments![0]!.bytes, pdf);
    assert.deepEqual(
      history.items.map((i) => i.kind),
      ["record.append", "patient.enroll", "identifier.link", "identifier.unlink", "identifier.link"],
    );
  });

  it("5. the validator rejects a record and its author sees why; the author's SDK refuses content that fails the checks", async () => {
    const { queueId } = await client(region.hospital).addRecord({
      ...lab(ana.id),
      type: "image",
      resource: { resourceType: "ImagingStudy", status: "available" },
    });
    const validator = client(region.validator);
    assert.deepEqual((await validator.openQueueItem(queueId)).findings, []);
    await validator.rejectRecord(queueId, "OTHER", "wrong patient's study");
    const rejected = await client(region.hospital).queue("author", "rejected");
    assert.deepEqual(
      rejected.map((q) => [q.queueId, q.reason, q.note]),
      [[queueId, "OTHER", "wrong patient's study"]],
    );
    await assert.rejects(
      client(region.hospital).addRecord({ ...lab(ana.id), resource: { resourceType: "Procedure" } }),
      refusedWith("INVALID_ARGUMENT"),
    );
  });

  it("6. a psychotherapy note is attested unread; Ana sees that it exists, not what it says", async () => {
    const { queueId, record } = await client(region.hospital).addRecord({
      ...lab(ana.id),
      type: "clinical-note",
      sensitivity: "psychotherapy-note",
      title: "Session 4",
      resource: { resourceType: "DocumentReference", status: "current" },
    });
    const opened = await client(region.validator).openQueueItem(queueId);
    assert.equal(opened.payload, null);
    assert.ok((await client(region.validator).validateRecord(queueId)).accepted);
    records.note = record;
    const history = await client(ana).history(ana.id);
    const item = history.items.find((i) => i.record?.id === record)!;
    assert.equal(item.record!.status, "withheld");
    assert.equal(item.record!.withheldFromPatient, true);
    assert.equal(item.record!.payload, undefined);
    // Its author reads it, after an access event on the basis of care.
    const mine = await client(region.hospital).history(ana.id);
    assert.equal(statusOf(mine, record), "decrypted");
  });

  it("7. the laboratory reads nothing until granted, then exactly what the grant covers", async () => {
    records.image = await written(region.hospital, {
      ...lab(ana.id),
      type: "image",
      title: "Chest X-ray",
      resource: { resourceType: "ImagingStudy", status: "available" },
    });
    const labClient = client(region.lab);
    await assert.rejects(labClient.history(ana.id), refusedWith("NOT_PERMITTED"));
    const granted = await client(ana).grant({
      grantee: "lab",
      categories: ["laboratory-result"],
      purpose: "treatment",
      expires: "2026-12-31",
    });
    records.grant = granted.grant;
    assert.equal(granted.shared, 1);
    const history = await labClient.history(ana.id);
    assert.equal(statusOf(history, records.first!), "decrypted");
    assert.equal(statusOf(history, records.image), "no-key");
    assert.equal(statusOf(history, records.note!), "withheld");
  });

  it("8. a lab result written after the grant is wrapped for the laboratory by its author", async () => {
    records.second = await written(region.hospital, lab(ana.id, "2026-10-20", "Ferritin"));
    const item = (await client(ana).history(ana.id)).items.find((i) => i.record?.id === records.second)!;
    const envelopes = (item.entry.body as { envelopes: { to: string }[] }).envelopes.map((e) => e.to);
    assert.ok(envelopes.includes("org:lab"));
    assert.equal(statusOf(await client(region.lab).history(ana.id), records.second), "decrypted");
  });

  it("9. an author admitted after the grant cannot read its scope and wraps nothing; the patient's sync closes the gap", async () => {
    const file = await createOrgKeyFile(crypto, { orgId: "surgery", passphrase: "s", ...WEAK });
    const surgery = await unlockIdentity(crypto, file.file, "s");
    await client().admitOrg(
      { orgId: "surgery", roles: ["author"], signKey: file.signKey, encKey: file.encKey },
      [region.consortium],
    );
    await client(surgery).linkIdentifier(ana, "urn:surgery", "S-17");
    records.clinic = await written(surgery, lab(ana.id, "2026-10-21", "Potassium"));
    assert.equal(statusOf(await client(region.lab).history(ana.id), records.clinic), "no-key");
    assert.deepEqual(await client(ana).syncGrants(), { shared: 1 });
    assert.deepEqual(await client(ana).syncGrants(), { shared: 0 });
    assert.equal(statusOf(await client(region.lab).history(ana.id), records.clinic), "decrypted");
  });

  it("10. after revocation the laboratory gets no new keys and no ciphertext", async () => {
    assert.ok((await client(ana).revoke(records.grant!)).accepted);
    records.third = await written(region.hospital, lab(ana.id, "2026-10-28", "Lipids"));
    const history = await client(region.lab)
      .history(ana.id)
      .catch((err: unknown) => err);
    // The laboratory had a read basis through the grant only: now it has none at all.
    assert.ok(isLedgerError(history, "NOT_PERMITTED"), String(history));
    const mine = await client(ana).history(ana.id);
    const third = mine.items.find((i) => i.record?.id === records.third)!;
    assert.ok(
      !(third.entry.body as { envelopes: { to: string }[] }).envelopes.some((e) => e.to === "org:lab"),
    );
  });

  it("10b. break-glass: the laboratory declares an emergency and reads what its own envelopes open", async () => {
    const labClient = client(region.lab);
    // Without a read basis the node shows the laboratory no chain head; the ED has it from the patient's
    // card here (taken from the node's state: the API has no route for it yet).
    const head = region.node.state.patients.get(ana.id)!.head;
    const { emergency } = await labClient.declareEmergency(ana.id, "patient-unconscious", { head });
    const history = await labClient.history(ana.id);
    // Wrapped for it by the author while the grant was in force: its own envelope, read under the emergency.
    assert.equal(statusOf(history, records.second!), "decrypted");
    // Shared under the revoked grant: the key is held, the right to the ciphertext is not.
    assert.equal(statusOf(history, records.first!), "no-access");
    assert.equal(statusOf(history, records.clinic!), "no-access");
    assert.equal(statusOf(history, records.third!), "no-key");
    const log = await client(ana).accessLog(ana.id);
    assert.ok(log.some((e) => e.type === "emergency" && e.entry === emergency && e.org === "lab"));
    assert.ok(
      log.some(
        (e) =>
          e.type === "access" &&
          e.basis.type === "emergency" &&
          e.basis.emergency === emergency &&
          e.records.includes(records.second!),
      ),
    );
  });

  it("11. an amendment supersedes a record and never overwrites it", async () => {
    const { queueId, record } = await client(region.hospital).amendRecord({
      ...lab(ana.id, "2026-10-14", "HbA1c (corrected)"),
      supersedes: records.first!,
    });
    assert.ok((await client(region.validator).validateRecord(queueId)).accepted);
    const history = await client(ana).history(ana.id);
    const old = history.items.find((i) => i.record?.id === records.first)!.record!;
    const amended = history.items.find((i) => i.record?.id === record)!.record!;
    assert.equal(old.supersededBy, record);
    assert.equal(amended.supersedes, records.first);
    assert.equal(old.payload!.title, "HbA1c");
    assert.equal(amended.payload!.title, "HbA1c (corrected)");
    // Clinical order: by month, then ledger order.
    const months = history.items.map((i) => i.month);
    assert.deepEqual(months, [...months].sort());
  });

  it("12. the access log shows every org's access to Ana's keys, on its basis", async () => {
    const log = await client(ana).accessLog(ana.id);
    const access = log.filter((e) => e.type === "access");
    assert.ok(
      access.some((e) => e.org === "lab" && e.basis.type === "grant" && e.records.includes(records.first!)),
    );
    assert.ok(access.some((e) => e.org === "hospital" && e.basis.type === "care"));
    assert.ok(access.some((e) => e.org === "lab" && e.records.includes(records.clinic!)));
    assert.ok(!access.some((e) => e.records.includes(records.third!) && e.org === "lab"));
  });

  it("13. tampered responses are refused and leave the trust state as it was", async () => {
    const flipHistory: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!urlOf(input).includes("/history")) return response;
      const page = (await response.json()) as { entries: { bytes: string }[] };
      const bytes = fromBase64(page.entries[1]!.bytes);
      bytes[10]! ^= 1;
      page.entries[1]!.bytes = toBase64(bytes);
      return new Response(JSON.stringify(page), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    };
    const c = client(ana, flipHistory);
    await assert.rejects(c.history(ana.id), refusedWith("PROOF_INVALID"));
    assert.equal(c.trust.checkpoint, null);
    const flipBlob: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!urlOf(input).includes("/v1/blobs/")) return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[bytes.length - 1]! ^= 1;
      return new Response(bytes, { status: 200, headers: { "content-type": "application/octet-stream" } });
    };
    await assert.rejects(client(ana, flipBlob).history(ana.id), refusedWith("DECRYPTION_FAILED"));
    const absentWitness = await generateCosignatureKey(crypto, "witness.example/absent");
    const dropQuorum = client(ana, undefined, {
      ...region.trust(),
      witnesses: [absentWitness.verifierKey],
      quorum: 1,
    });
    await assert.rejects(dropQuorum.history(ana.id), refusedWith("QUORUM_NOT_MET"));
    const huge: typeof fetch = async () =>
      new Response(new Uint8Array(5 * 1024 * 1024), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    await assert.rejects(client(region.hospital, huge).orgs(), refusedWith("TOO_LARGE"));
    const garbage: typeof fetch = async () =>
      new Response('{"orgs": [{"id": "Not An Org"}]}', {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    await assert.rejects(client(region.hospital, garbage).orgs(), refusedWith("MALFORMED_INPUT"));
  });

  it("14. a patient without entries is proven absent; unsigned and unknown callers are refused", async () => {
    await assert.rejects(client(ana).history(toHex(crypto.randomBytes(16))), refusedWith("NOT_FOUND"));
    const stranger = await createPatientKeyFile(crypto, { passphrase: "x", ...WEAK });
    const nobody = await unlockIdentity(crypto, stranger.file, "x");
    await assert.rejects(client(nobody).history(ana.id), refusedWith("AUTH_INVALID"));
    await assert.rejects(client().orgs(), refusedWith("INVALID_ARGUMENT"));
    // An entry the node refuses before the ledger sees it is a RejectedError with the rejection code.
    await assert.rejects(client(region.hospital).submit([new TextEncoder().encode("{}")]), (err) =>
      isRejected(err, "SCHEMA"),
    );
  });
});
