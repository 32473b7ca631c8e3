/**
 * Every workflow command end to end, as real child processes against a real node process
 * (`medledger node start --data DIR --port 0`): orgs, patients, MRN links, records (add, queue, show,
 * validate, reject, amend, --wait, attachments), grants (create, list, sync, revoke), history and the
 * access log; each happy path with --json (exactly one JSON document on stdout), refusals (exit 1 with the
 * right code), usage errors (exit 2), trust on first use and pinning, and --help on every command.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CliIo } from "../../src/cli/io.ts";
import { runCli } from "../../src/cli/program.ts";
import { demoPng } from "../../src/cli/demo.ts";
import { generateNoteKey } from "../../src/core/note/signed-note.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { daysAgo, startNodeFixture, type NodeFixture } from "./fixture.ts";
import { medledger, medledgerWith, startMedledger, type Run } from "./run.ts";

type Doc = Record<string, unknown>;

/** A successful --json run: exit 0, exactly one JSON document with ok: true. */
function ok(run: Run): Doc {
  assert.equal(run.status, 0, `exit ${run.status}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  const lines = run.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one JSON document on stdout, got: ${run.stdout}`);
  const doc = JSON.parse(lines[0]!) as Doc;
  assert.equal(doc.ok, true);
  return doc;
}

/** A refusal: exit 1 and the code, as JSON when --json was given, else a FAIL line on stderr. */
function refused(run: Run, code: string): Doc | null {
  assert.equal(
    run.status,
    1,
    `expected exit 1 (${code}), got ${run.status}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
  );
  assert.ok(!run.stderr.includes("    at "), "no stack trace");
  if (run.stdout.trim() === "") {
    assert.match(run.stderr, new RegExp(`^FAIL ${code}: `, "m"));
    return null;
  }
  const doc = JSON.parse(run.stdout) as Doc;
  assert.equal(doc.ok, false);
  assert.equal(doc.code, code, String(doc.message));
  assert.equal(doc.exitCode, 1);
  return doc;
}

/** A usage error: exit 2, nothing on stdout without --json, one JSON document with it. */
function usage(run: Run, pattern?: RegExp): void {
  assert.equal(
    run.status,
    2,
    `expected exit 2, got ${run.status}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
  );
  assert.ok(!run.stderr.includes("    at "), "no stack trace");
  if (run.stdout.trim() !== "") {
    const doc = JSON.parse(run.stdout) as Doc;
    assert.equal(doc.ok, false);
    assert.equal(doc.exitCode, 2);
    if (pattern !== undefined) assert.match(String(doc.message), pattern);
  } else if (pattern !== undefined) {
    assert.match(run.stderr, pattern);
  }
}

describe("medledger workflows against a node process", { timeout: 900_000 }, () => {
  let f: NodeFixture;
  let anaId = "";
  let zoeId = "";
  const ids: Record<string, string> = {};
  const file = (name: string): string => join(f.root, name);
  const cli = (...args: string[]): Promise<Run> => medledger(...args);
  const resource = (name: string, value: Doc): string => {
    writeFileSync(file(name), JSON.stringify(value));
    return file(name);
  };

  before(async () => {
    f = await startNodeFixture();
    mkdirSync(file("out"));
  });
  after(async () => {
    const status = await f.service.stop();
    assert.equal(status, 0, f.service.output().stderr);
    assert.match(f.service.output().stdout, /\nSTOPPED\n$/);
    await f.close();
  });

  it("1. org create writes a key file (0600) and prints its public keys; it never replaces a file", async () => {
    writeFileSync(file("clinic.pass"), "clinic passphrase\n", { mode: 0o600 });
    const doc = ok(
      await cli(
        "org",
        "create",
        "--org",
        "clinic",
        "--out",
        file("clinic.json"),
        "--passphrase-file",
        file("clinic.pass"),
        "--json",
      ),
    );
    assert.equal(doc.org, "clinic");
    assert.match(String(doc.signKey), /^[0-9a-f]{64}$/);
    assert.equal(statSync(file("clinic.json")).mode & 0o777, 0o600);
    usage(
      await medledgerWith(
        { MEDLEDGER_PASSPHRASE: "another passphrase" },
        "org",
        "create",
        "--org",
        "clinic",
        "--out",
        file("clinic.json"),
      ),
      /already exists/,
    );
    usage(
      await medledgerWith(
        { MEDLEDGER_PASSPHRASE: "short" },
        "org",
        "create",
        "--org",
        "x",
        "--out",
        file("x.json"),
      ),
      /at least 8/,
    );
  });

  it("2. the consortium admits orgs; the first contact trusts on first use with a warning, later runs check the pinned key", async () => {
    const first = await cli(
      "org",
      "admit",
      "--org",
      "clinic",
      "--roles",
      "author",
      "--key-file",
      file("clinic.json"),
      ...f.as("consortium"),
      "--json",
    );
    const doc = ok(first);
    assert.equal(doc.org, "clinic");
    assert.match(String(doc.position), /^[0-9]+$/);
    assert.match(first.stderr, /^WARN trust on first use: pinned log /m);
    const trust = JSON.parse(readFileSync(`${f.keyFile("consortium")}.trust.json`, "utf8")) as Doc;
    assert.equal(trust.logKey, f.logKey);
    assert.equal(trust.origin, f.origin);
    assert.match(String(trust.checkpoint), /\n/);
    assert.equal(statSync(`${f.keyFile("consortium")}.trust.json`).mode & 0o777, 0o600);

    await f.newOrg("lab");
    const second = await cli(
      "org",
      "admit",
      "--org",
      "lab",
      "--roles",
      "author,validator",
      "--key-file",
      f.keyFile("lab"),
      ...f.as("consortium"),
      "--json",
    );
    assert.deepEqual(ok(second).roles, ["author", "validator"]);
    assert.doesNotMatch(second.stderr, /trust on first use/);
    // Admitting the same org again is a ledger refusal.
    refused(
      await cli(
        "org",
        "admit",
        "--org",
        "lab",
        "--roles",
        "author",
        "--key-file",
        f.keyFile("lab"),
        ...f.as("consortium"),
        "--json",
      ),
      "ENTRY_INVALID",
    );
    // --log-key pins the key: the right one on a fresh trust file works without a warning...
    const pinned = await cli(
      "org",
      "list",
      ...f.as("hospital"),
      "--log-key",
      f.logKey,
      "--trust",
      file("pinned.trust.json"),
      "--json",
    );
    ok(pinned);
    assert.doesNotMatch(pinned.stderr, /trust on first use/);
    // ...another one is refused.
    const other = (await generateNoteKey(nodeCrypto, "other.example/log")).verifierKey;
    const wrong = await cli(
      "org",
      "list",
      ...f.as("hospital"),
      "--log-key",
      other,
      "--trust",
      file("other.trust.json"),
      "--json",
    );
    refused(wrong, "ORIGIN_MISMATCH");
    refused(
      await cli(
        "org",
        "list",
        ...f.as("hospital"),
        "--log-key",
        other,
        "--trust",
        file("pinned.trust.json"),
        "--json",
      ),
      "KEY_INVALID",
    );
  });

  it("3. org list shows every org with its roles", async () => {
    const doc = ok(await cli("org", "list", ...f.as("hospital"), "--json"));
    const orgs = doc.orgs as { id: string; roles: string[]; active: boolean }[];
    assert.deepEqual(orgs.map((o) => o.id).sort(), ["clinic", "hospital", "lab", "validator"]);
    assert.ok(orgs.every((o) => o.active));
  });

  it("4. patient create prints a new id; the hospital enrolls patients, both sign", async () => {
    writeFileSync(file("zoe.pass"), "zoe's own passphrase\n", { mode: 0o600 });
    const created = ok(
      await cli(
        "patient",
        "create",
        "--out",
        file("zoe.json"),
        "--passphrase-file",
        file("zoe.pass"),
        "--json",
      ),
    );
    zoeId = String(created.patient);
    assert.match(zoeId, /^[0-9a-f]{32}$/);
    const enrolled = ok(
      await cli(
        "patient",
        "enroll",
        ...f.as("hospital"),
        "--patient-key",
        file("zoe.json"),
        "--patient-passphrase-file",
        file("zoe.pass"),
        "--json",
      ),
    );
    assert.equal(enrolled.patient, zoeId);
    anaId = await f.newPatient("ana");
    const ana = await medledgerWith(
      { MEDLEDGER_PATIENT_PASSPHRASE: f.passphrase("ana") },
      "patient",
      "enroll",
      ...f.as("hospital"),
      "--patient-key",
      f.keyFile("ana"),
      "--json",
    );
    assert.equal(ok(ana).patient, anaId);
    // Enrolling twice is a ledger refusal.
    refused(
      await medledgerWith(
        { MEDLEDGER_PATIENT_PASSPHRASE: f.passphrase("ana") },
        "patient",
        "enroll",
        ...f.as("hospital"),
        "--patient-key",
        f.keyFile("ana"),
        "--json",
      ),
      "ENTRY_INVALID",
    );
  });

  it("5. MRNs are linked (both sign), found by their org only, and unlinked", async () => {
    const patientKey = (name: string): string[] => [
      "--patient-key",
      f.keyFile(name),
      "--patient-passphrase-file",
      f.passFile(name),
    ];
    ok(await cli("patient", "link", "--mrn", "H-0001", ...f.as("hospital"), ...patientKey("ana"), "--json"));
    ok(await cli("patient", "link", "--mrn", "L-0001", ...f.as("lab"), ...patientKey("ana"), "--json"));
    const found = ok(await cli("patient", "find", "--mrn", "H-0001", ...f.as("hospital"), "--json"));
    assert.equal(found.patient, anaId);
    const plain = await cli("patient", "find", "--mrn", "H-0001", ...f.as("hospital"));
    assert.equal(plain.stdout.trim(), anaId);
    // Another org's lookup of the hospital's MRN finds nothing (its blinding key differs).
    refused(await cli("patient", "find", "--mrn", "H-0001", ...f.as("lab"), "--json"), "NOT_FOUND");
    const zoe = ["--patient-key", file("zoe.json"), "--patient-passphrase-file", file("zoe.pass")];
    ok(
      await cli(
        "patient",
        "link",
        "--mrn",
        "H-0002",
        "--system",
        "urn:oid:1.2.3",
        ...f.as("hospital"),
        ...zoe,
        "--json",
      ),
    );
    assert.equal(
      ok(
        await cli(
          "patient",
          "find",
          "--mrn",
          "H-0002",
          "--system",
          "urn:oid:1.2.3",
          ...f.as("hospital"),
          "--json",
        ),
      ).patient,
      zoeId,
    );
    ok(
      await cli(
        "patient",
        "unlink",
        "--mrn",
        "H-0002",
        "--system",
        "urn:oid:1.2.3",
        ...f.as("hospital"),
        ...zoe,
        "--json",
      ),
    );
    refused(
      await cli(
        "patient",
        "find",
        "--mrn",
        "H-0002",
        "--system",
        "urn:oid:1.2.3",
        ...f.as("hospital"),
        "--json",
      ),
      "NOT_FOUND",
    );
  });

  it("6. a record is added, seen in both queues, shown decrypted to its validator and validated", async () => {
    const obs = resource("hba1c.json", {
      resourceType: "Observation",
      status: "final",
      subject: { reference: `Patient/${anaId}` },
      valueQuantity: { value: 7.1, unit: "%" },
    });
    const added = ok(
      await cli(
        "record",
        "add",
        ...f.as("lab"),
        "--patient",
        anaId,
        "--type",
        "laboratory-result",
        "--date",
        daysAgo(20),
        "--title",
        "HbA1c 7.1 %",
        "--resource",
        obs,
        "--validator",
        "validator",
        "--json",
      ),
    );
    assert.equal(added.status, "pending");
    const queueId = String(added.queueId);
    ids.hba1c = String(added.record);
    const pending = ok(await cli("record", "queue", "--status", "pending", ...f.as("validator"), "--json"));
    assert.deepEqual(
      (pending.items as { queueId: string }[]).map((i) => i.queueId),
      [queueId],
    );
    const mine = ok(await cli("record", "queue", "--role", "author", ...f.as("lab"), "--json"));
    assert.ok((mine.items as { queueId: string }[]).some((i) => i.queueId === queueId));
    const shown = ok(await cli("record", "show", queueId, ...f.as("validator"), "--json"));
    assert.equal((shown.payload as { title: string }).title, "HbA1c 7.1 %");
    assert.deepEqual(shown.findings, []);
    // Another org is not this item's validator.
    refused(await cli("record", "show", queueId, ...f.as("hospital"), "--json"), "NOT_PERMITTED");
    const validated = ok(await cli("record", "validate", queueId, ...f.as("validator"), "--json"));
    assert.match(String(validated.position), /^[0-9]+$/);
    // Validating it again is refused: it is no longer pending.
    refused(await cli("record", "validate", queueId, ...f.as("validator"), "--json"), "INVALID_ARGUMENT");
  });

  it("7. record add --wait returns once the validator attests; an image carries its attachment", async () => {
    writeFileSync(file("xray.png"), demoPng());
    const study = resource("study.json", {
      resourceType: "ImagingStudy",
      status: "available",
      subject: { reference: `Patient/${anaId}` },
    });
    const waiting = medledger(
      "record",
      "add",
      ...f.as("hospital"),
      "--patient",
      anaId,
      "--type",
      "image",
      "--date",
      daysAgo(15),
      "--title",
      "Chest X-ray",
      "--resource",
      study,
      "--attach",
      file("xray.png"),
      "--validator",
      "validator",
      "--wait",
      "--json",
    );
    let queueId: string | undefined;
    for (let i = 0; i < 60 && queueId === undefined; i++) {
      const pending = ok(await cli("record", "queue", "--status", "pending", ...f.as("validator"), "--json"));
      queueId = (pending.items as { queueId: string }[])[0]?.queueId;
    }
    assert.ok(queueId !== undefined, "the --wait record reached the queue");
    ok(await cli("record", "validate", queueId, ...f.as("validator"), "--json"));
    const done = ok(await waiting);
    assert.equal(done.status, "attested");
    assert.equal(done.queueId, queueId);
    ids.xray = String(done.record);
  });

  it("8. a validator rejects a record with a reason its author sees; the author's --wait fails with it", async () => {
    const obs = resource("k.json", {
      resourceType: "Observation",
      status: "final",
      subject: { reference: `Patient/${anaId}` },
    });
    const waiting = cli(
      "record",
      "add",
      ...f.as("lab"),
      "--patient",
      anaId,
      "--type",
      "laboratory-result",
      "--date",
      daysAgo(10),
      "--title",
      "Potassium",
      "--resource",
      obs,
      "--validator",
      "validator",
      "--wait",
      "--json",
    );
    let queueId: string | undefined;
    for (let i = 0; i < 60 && queueId === undefined; i++) {
      const pending = ok(await cli("record", "queue", "--status", "pending", ...f.as("validator"), "--json"));
      queueId = (pending.items as { queueId: string }[])[0]?.queueId;
    }
    assert.ok(queueId !== undefined, "the record reached the queue");
    const rejected = ok(
      await cli(
        "record",
        "reject",
        queueId,
        "--reason",
        "OTHER",
        "--note",
        "haemolysed sample",
        ...f.as("validator"),
        "--json",
      ),
    );
    assert.equal(rejected.status, "rejected");
    const seen = ok(
      await cli("record", "queue", "--role", "author", "--status", "rejected", ...f.as("lab"), "--json"),
    );
    const item = (seen.items as { queueId: string; reason: string; note: string }[]).find(
      (i) => i.queueId === queueId,
    );
    assert.equal(item?.reason, "OTHER");
    assert.equal(item?.note, "haemolysed sample");
    refused(
      await cli("record", "reject", queueId, "--reason", "OTHER", ...f.as("validator"), "--json"),
      "CONFLICT",
    );
    const failed = refused(await waiting, "ENTRY_INVALID");
    assert.match(String(failed?.message), /rejected: OTHER: haemolysed sample/);
  });

  it("9. an amendment supersedes a record; a psychotherapy note is validated unread", async () => {
    const obs = resource("hba1c2.json", {
      resourceType: "Observation",
      status: "amended",
      subject: { reference: `Patient/${anaId}` },
      valueQuantity: { value: 7.2, unit: "%" },
    });
    const amended = ok(
      await cli(
        "record",
        "amend",
        "--supersedes",
        ids.hba1c!,
        ...f.as("lab"),
        "--patient",
        anaId,
        "--type",
        "laboratory-result",
        "--date",
        daysAgo(20),
        "--title",
        "HbA1c 7.2 % (corrected)",
        "--resource",
        obs,
        "--validator",
        "validator",
        "--json",
      ),
    );
    assert.equal(amended.supersedes, ids.hba1c);
    ok(await cli("record", "validate", String(amended.queueId), ...f.as("validator"), "--json"));
    ids.hba1cAmended = String(amended.record);

    const note = resource("note.json", {
      resourceType: "DocumentReference",
      status: "current",
      subject: { reference: `Patient/${anaId}` },
    });
    const added = ok(
      await cli(
        "record",
        "add",
        ...f.as("hospital"),
        "--patient",
        anaId,
        "--type",
        "clinical-note",
        "--sensitivity",
        "psychotherapy-note",
        "--date",
        daysAgo(5),
        "--title",
        "Session notes",
        "--resource",
        note,
        "--validator",
        "validator",
        "--json",
      ),
    );
    const shown = ok(await cli("record", "show", String(added.queueId), ...f.as("validator"), "--json"));
    assert.equal(shown.payload, null);
    ok(await cli("record", "validate", String(added.queueId), ...f.as("validator"), "--json"));
    ids.note = String(added.record);
  });

  it("10. Ana grants the clinic her laboratory results; the clinic reads exactly those", async () => {
    const grant = ok(
      await cli(
        "grant",
        "create",
        "--to",
        "clinic",
        "--categories",
        "laboratory-result",
        "--expires",
        new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10),
        ...f.as("ana"),
        "--json",
      ),
    );
    ids.grant = String(grant.grant);
    assert.equal(grant.shared, 2, "the HbA1c and its amendment");
    const listed = ok(await cli("grant", "list", ...f.as("ana"), "--json"));
    const grants = listed.grants as {
      grant: string;
      grantee: string;
      active: boolean;
      scope: { categories: string[] };
    }[];
    assert.equal(grants.length, 1);
    assert.equal(grants[0]!.grant, ids.grant);
    assert.equal(grants[0]!.active, true);
    assert.deepEqual(grants[0]!.scope.categories, ["laboratory-result"]);
    ok(await cli("grant", "sync", ...f.as("ana"), "--json"));

    writeFileSync(file("clinic.pass2"), "clinic passphrase\n");
    const clinicAs = [
      "--as",
      file("clinic.json"),
      "--passphrase-file",
      file("clinic.pass2"),
      "--node",
      f.url,
    ];
    const read = ok(await cli("history", "--patient", anaId, ...clinicAs, "--json"));
    const statuses = new Map(
      (read.items as { record?: { id: string; status: string } }[]).flatMap((i) =>
        i.record === undefined ? [] : [[i.record.id, i.record.status]],
      ),
    );
    assert.equal(statuses.get(ids.hba1c!), "decrypted");
    assert.equal(statuses.get(ids.hba1cAmended!), "decrypted");
    assert.equal(statuses.get(ids.xray!), "no-key");
    assert.equal(statuses.get(ids.note!), "withheld");
    // The clinic has no basis at all for Zoe.
    refused(await cli("history", "--patient", zoeId, ...clinicAs, "--json"), "NOT_PERMITTED");
  });

  it("11. Ana reads her whole history in clinical order, writes the attachments, and sees the clinic in her access log", async () => {
    const out = file("out");
    const read = ok(await cli("history", ...f.as("ana"), "--out", out, "--json"));
    assert.equal(read.complete, true);
    assert.equal(read.patient, anaId);
    const items = read.items as {
      kind: string;
      month: string;
      verified: Doc;
      record?: {
        id: string;
        status: string;
        attachments?: { name: string; file?: string }[];
        supersededBy: string | null;
      };
    }[];
    const months = items.map((i) => i.month);
    assert.deepEqual(months, [...months].sort(), "clinical order");
    for (const i of items) assert.deepEqual(i.verified, { inclusion: true, chain: true, signatures: true });
    const byId = new Map(items.flatMap((i) => (i.record === undefined ? [] : [[i.record.id, i.record]])));
    assert.equal(byId.get(ids.note!)?.status, "withheld");
    assert.equal(byId.get(ids.hba1c!)?.supersededBy, ids.hba1cAmended);
    const attachment = byId.get(ids.xray!)?.attachments?.[0];
    assert.equal(attachment?.name, "xray.png");
    assert.deepEqual(readFileSync(attachment.file!), readFileSync(file("xray.png")));
    assert.equal(statSync(attachment.file!).mode & 0o777, 0o600);
    const plain = await cli("history", ...f.as("ana"));
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /withheld from the patient: it exists, its content is not shown/);

    const log = ok(await cli("access-log", ...f.as("ana"), "--json"));
    const events = log.events as {
      org: string;
      basis: { type: string; grant?: string };
      records: { id: string }[];
    }[];
    const clinic = events.filter((e) => e.org === "clinic");
    assert.equal(clinic.length, 1);
    assert.deepEqual(clinic[0]!.basis, { type: "grant", grant: ids.grant });
    assert.deepEqual(clinic[0]!.records.map((r) => r.id).sort(), [ids.hba1c!, ids.hba1cAmended!].sort());
  });

  it("12. Ana revokes the grant: the command says what revocation cannot undo; the clinic reads nothing more", async () => {
    const revoked = ok(await cli("grant", "revoke", ids.grant!, ...f.as("ana"), "--json"));
    assert.match(String(revoked.cannotUndo), /cannot undo what the grantee already downloaded/);
    const listed = ok(await cli("grant", "list", ...f.as("ana"), "--json"));
    assert.equal((listed.grants as { active: boolean; revoked: boolean }[])[0]!.revoked, true);
    writeFileSync(file("clinic.pass3"), "clinic passphrase");
    refused(
      await cli(
        "history",
        "--patient",
        anaId,
        "--as",
        file("clinic.json"),
        "--passphrase-file",
        file("clinic.pass3"),
        "--node",
        f.url,
        "--json",
      ),
      "NOT_PERMITTED",
    );
  });

  it("13. refusals: a wrong passphrase, a patient key where an org is needed, an unreachable node", async () => {
    refused(
      await cli(
        "org",
        "list",
        "--as",
        f.keyFile("hospital"),
        "--passphrase-file",
        f.passFile("lab"),
        "--node",
        f.url,
        "--json",
      ),
      "PASSPHRASE_WRONG",
    );
    usage(await cli("record", "queue", ...f.as("ana"), "--json"), /this command runs as an org/);
    const down = await cli(
      "org",
      "list",
      "--as",
      f.keyFile("hospital"),
      "--passphrase-file",
      f.passFile("hospital"),
      "--node",
      "http://127.0.0.1:1",
      "--trust",
      file("down.json"),
      "--json",
    );
    const doc = refused(down, "INTERNAL");
    assert.match(String(doc?.message), /cannot reach the node/);
  });

  it("14. usage errors exit 2, with one JSON document under --json", async () => {
    const as = f.as("lab");
    const runs = await Promise.all([
      cli(
        "record",
        "add",
        ...as,
        "--patient",
        anaId,
        "--type",
        "x-ray",
        "--date",
        "2026-01-01",
        "--title",
        "t",
        "--resource",
        "r",
        "--validator",
        "validator",
        "--json",
      ),
      cli(
        "record",
        "add",
        ...as,
        "--patient",
        anaId,
        "--type",
        "image",
        "--date",
        "2026-02-30",
        "--title",
        "t",
        "--resource",
        "r",
        "--validator",
        "validator",
      ),
      cli("record", "add", ...as, "--patient", anaId),
      cli("record", "validate", "not-a-queue-id", ...as, "--json"),
      cli(
        "grant",
        "create",
        ...f.as("ana"),
        "--to",
        "clinic",
        "--categories",
        "laboratory-result,psychotherapy-note",
        "--expires",
        "2030-01-01",
      ),
      cli(
        "grant",
        "create",
        ...f.as("ana"),
        "--to",
        "clinic",
        "--categories",
        "image",
        "--restricted",
        "psychotherapy-note",
        "--expires",
        "2030-01-01",
        "--json",
      ),
      cli("history", "--as", f.keyFile("ana"), "--node", f.url, "--json"),
      cli("history", "--as", f.keyFile("ana"), "--passphrase-file", f.passFile("ana"), "--json"),
      cli(
        "history",
        "--as",
        f.keyFile("ana"),
        "--passphrase-file",
        f.passFile("ana"),
        "--node",
        "ftp://example",
        "--json",
      ),
      cli(
        "history",
        "--as",
        file("missing.json"),
        "--passphrase-file",
        f.passFile("ana"),
        "--node",
        f.url,
        "--json",
      ),
      cli("history", ...as, "--json"),
      cli(
        "org",
        "admit",
        "--org",
        "clinic",
        "--roles",
        "author,owner",
        "--key-file",
        file("clinic.json"),
        ...f.as("consortium"),
      ),
      cli(
        "org",
        "admit",
        "--org",
        "other",
        "--roles",
        "author",
        "--key-file",
        file("clinic.json"),
        ...f.as("consortium"),
        "--json",
      ),
      cli("patient", "enroll", ...f.as("hospital"), "--patient-key", f.keyFile("ana")),
      cli("record", "queue", ...as, "--unknown-option"),
      cli("access-log", ...f.as("ana"), "extra-argument"),
    ]);
    const patterns = [
      /--type must be one of/,
      /--date must be a date/,
      /required option/,
      /the queue id must be 64/,
      /psychotherapy-note" is not one of/,
      /--restricted: "psychotherapy-note" is not one of/,
      /no passphrase/,
      /no node: give --node URL/,
      /http: or https:/,
      /cannot read key file/,
      /--patient ID is needed/,
      /"owner" is not one of/,
      /not of org other/,
      /no passphrase for --patient-key/,
      /unknown option/,
      /too many arguments/,
    ];
    runs.forEach((run, i) => usage(run, patterns[i]));
  });

  it("15. --help on every command, with examples on every workflow command", async () => {
    const commands = [
      ["demo"],
      ["org", "create"],
      ["org", "admit"],
      ["org", "list"],
      ["patient", "create"],
      ["patient", "enroll"],
      ["patient", "link"],
      ["patient", "unlink"],
      ["patient", "find"],
      ["record", "add"],
      ["record", "amend"],
      ["record", "queue"],
      ["record", "show"],
      ["record", "validate"],
      ["record", "reject"],
      ["record", "resubmit"],
      ["grant", "create"],
      ["grant", "revoke"],
      ["grant", "sync"],
      ["grant", "list"],
      ["history"],
      ["access-log"],
    ];
    const help = async (args: string[]): Promise<{ code: number; text: string }> => {
      let text = "";
      const io: CliIo = {
        out: (l) => (text += `${l}\n`),
        err: (l) => (text += `${l}\n`),
        writeOut: (t) => (text += t),
        writeErr: (t) => (text += t),
        readFile: () => Promise.reject(new Error("no files")),
      };
      return { code: await runCli([...args, "--help"], io, nodeCrypto), text };
    };
    for (const args of commands) {
      const { code, text } = await help(args);
      assert.equal(code, 0, args.join(" "));
      assert.match(text, new RegExp(`^Usage: medledger ${args.join(" ")} `), args.join(" "));
      assert.match(
        text,
        /\nExamples:\n {2}\$ (\S+=\S+ )?(npx )?medledger /,
        `${args.join(" ")} has examples`,
      );
    }
    for (const group of [["org"], ["patient"], ["record"], ["grant"], ["tlog"], ["node"], []]) {
      const { code, text } = await help(group);
      assert.equal(code, 0);
      assert.match(text, /Commands:/);
    }
    const top = await help([]);
    for (const name of [
      "demo",
      "node",
      "org",
      "patient",
      "record",
      "grant",
      "history",
      "access-log",
      "tlog",
      "verify",
    ]) {
      assert.match(top.text, new RegExp(`\\n  ${name}\\b`), name);
    }
    // And once through a real child process.
    const child = await medledger("history", "--help");
    assert.equal(child.status, 0);
    assert.match(child.stdout, /Examples:/);
  });

  it("16. the node survives a restart; the client's remembered checkpoint stays consistent", async () => {
    await f.restart();
    const doc = ok(await cli("org", "list", ...f.as("hospital"), "--json"));
    assert.ok((doc.orgs as unknown[]).length >= 4);
    assert.ok(existsSync(`${f.keyFile("hospital")}.trust.json`));
    // A trust file whose remembered checkpoint is not this log's is refused.
    const trustFile = `${f.keyFile("hospital")}.trust.json`;
    const trust = JSON.parse(readFileSync(trustFile, "utf8")) as Doc;
    writeFileSync(
      file("forged.trust.json"),
      JSON.stringify({ ...trust, checkpoint: String(trust.checkpoint).replace(/\n[0-9]+\n/, "\n999999\n") }),
    );
    const forged = await cli(
      "org",
      "list",
      ...f.as("hospital"),
      "--trust",
      file("forged.trust.json"),
      "--json",
    );
    refused(forged, "CHECKPOINT_INVALID");
  });
});

describe("medledger demo (child process)", { timeout: 300_000 }, () => {
  it("starts with --port 0 --json, serves, and a demo patient's history works against it", async () => {
    const demo = await startMedledger(["demo", "--port", "0", "--json"], /^\{"ok":true,"event":"ready"/, {
      timeoutMs: 240_000,
    });
    try {
      const doc = JSON.parse(demo.line) as {
        url: string;
        dir: string;
        passphrases: string;
        patients: { name: string; id: string }[];
        commands: { argv: string[] }[];
        grant: { shared: number };
        rejected: { reason: string };
        kdf: { N: number };
      };
      assert.match(doc.url, /^http:\/\/127\.0\.0\.1:[0-9]+$/);
      assert.equal(statSync(doc.passphrases).mode & 0o777, 0o600);
      assert.equal(doc.kdf.N, 2 ** 14);
      assert.equal(doc.rejected.reason, "OTHER");
      assert.ok(doc.grant.shared >= 2);
      const history = ok(await cli(...doc.commands[0]!.argv, "--json"));
      const records = (
        history.items as { record?: { status: string; type?: string; sensitivity?: string } }[]
      ).flatMap((i) => (i.record === undefined ? [] : [i.record]));
      assert.deepEqual(
        [...new Set(records.filter((r) => r.status === "decrypted").map((r) => r.type))].sort(),
        ["clinical-note", "consultation", "image", "laboratory-result", "operation", "prescription"],
      );
      assert.ok(records.some((r) => r.sensitivity === "mental-health"));
      assert.equal(records.filter((r) => r.status === "withheld").length, 1);
      const imaging = ok(await cli(...doc.commands[1]!.argv, "--json"));
      const opened = (imaging.items as { record?: { status: string; type?: string } }[]).filter(
        (i) => i.record?.status === "decrypted",
      );
      assert.deepEqual([...new Set(opened.map((i) => i.record!.type))].sort(), [
        "image",
        "laboratory-result",
      ]);
      const log = ok(await cli(...doc.commands[2]!.argv, "--json"));
      assert.ok((log.events as { org: string }[]).some((e) => e.org === "imaging"));
    } finally {
      const status = await demo.stop();
      assert.equal(status, 0, demo.output().stderr);
      const dir = (JSON.parse(demo.line) as { dir: string }).dir;
      rmSync(dir, { recursive: true, force: true });
    }
    function cli(...args: string[]): Promise<Run> {
      return medledger(...args);
    }
  });
});
