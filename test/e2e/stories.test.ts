/**
 * Stories over real sockets against a real node process (`medledger node start --data DIR --port 0`), with
 * the client SDK as the client, told in numbered steps (issue 4, section 4):
 *
 * (a) a lab result written, validated and read by its patient;
 * (b) a second provider that cannot read until granted, can after, and cannot read records written after
 *     revocation, nor fetch their ciphertext;
 * (c) a grant limited to laboratory results that does not open imaging;
 * (d) a psychotherapy note its patient cannot decrypt, whose ciphertext the node refuses to the patient;
 * (e) a node operator with the database file and the node's own keys who can decrypt nothing;
 * (f) tampered responses (an entry, an inclusion proof, the checkpoint, a blob) refused by the SDK;
 * (g) replayed and forged requests refused with 401, changing nothing;
 * (h) every access in the access log.
 *
 * The genesis actors' key files are moved out of the node's folder (as in a real deployment, where each
 * org keeps its own keys), and the orgs the stories add have keys that never touch the disk.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createServer as createHttpServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { fromBase64, fromUtf8, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { openEnvelope } from "../../src/core/crypto/envelope.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import { signRequest } from "../../src/core/http/request-auth.ts";
import { parseEntry } from "../../src/core/ledger/entry.ts";
import type { Entry } from "../../src/core/ledger/schema.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import {
  MedledgerClient,
  accessEventEntry,
  identityFromKeys,
  newTrustState,
  recordAad,
  scopeAad,
  unlockIdentity,
  type History,
  type Identity,
  type RecordInput,
  type TrustState,
} from "../../src/sdk/index.ts";
import { openStore } from "../../src/store/index.ts";
import { daysAgo, startNodeFixture, type NodeFixture } from "../cli/fixture.ts";

/** A string that must never appear in clear outside the clients. */
const MARKER = `PLAINTEXT-MARKER-${toHex(crypto.randomBytes(8))}`;
const MRN_MARKER = `MRN-MARKER-${toHex(crypto.randomBytes(6))}`;

function refusedWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isLedgerError(err), `expected a LedgerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `${err.code}: ${err.message}`);
    return true;
  };
}

async function newIdentity(kind: "org" | "patient", id: string): Promise<Identity> {
  const [signing, encryption] = await Promise.all([crypto.ed25519Generate(), crypto.x25519Generate()]);
  return identityFromKeys(crypto, kind, id, signing, encryption);
}

function statusOf(history: History, record: string): string | undefined {
  return history.items.find((i) => i.record?.id === record)?.record?.status;
}

/** What the proxy does to responses. */
type Tamper = "none" | "entry" | "proof" | "checkpoint" | "history-checkpoint" | "blob";

/** A recorded request as it went through the proxy. */
interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/**
 * A small HTTP proxy between a client and the node: forwards every request as is (the Host header too, so
 * the RFC 9421 @authority the client signed still matches), records it, and changes responses in flight.
 */
async function startProxy(target: () => string): Promise<{
  url: string;
  tamper: Tamper;
  recorded: Recorded[];
  close(): Promise<void>;
}> {
  const state = { tamper: "none" as Tamper, recorded: [] as Recorded[] };
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      state.recorded.push({ method: req.method!, path: req.url!, headers, body });
      const upstream = new URL(target());
      const out = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on("data", (c: Buffer) => parts.push(c));
          answer.on("end", () => {
            const original = Buffer.concat(parts);
            const changed = tamper(state.tamper, req.url!, original, answer.statusCode ?? 500);
            const h: Record<string, string> = {};
            for (const [k, v] of Object.entries(answer.headers)) if (typeof v === "string") h[k] = v;
            h["content-length"] = String(changed.length);
            res.writeHead(answer.statusCode ?? 500, h);
            res.end(changed);
          });
        },
      );
      out.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      out.end(body);
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    get tamper() {
      return state.tamper;
    },
    set tamper(t: Tamper) {
      state.tamper = t;
    },
    recorded: state.recorded,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** Flip one character of a hex or base64 string at `index` to another valid one. */
function flipChar(text: string, index: number): string {
  const c = text[index]!;
  const replacement = c === "0" ? "1" : c === "A" ? "B" : /[0-9a-f]/.test(c) ? "0" : "A";
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

function tamper(mode: Tamper, url: string, body: Buffer, status: number): Buffer {
  if (mode === "none" || status >= 400) return body;
  if (mode === "blob" && url.startsWith("/v1/blobs/")) {
    const copy = Buffer.from(body);
    copy[copy.length - 1]! ^= 0x01;
    return copy;
  }
  if (mode === "checkpoint" && url.startsWith("/v1/checkpoint")) {
    // Change the root hash line of the signed note.
    const lines = body.toString("utf8").split("\n");
    lines[2] = flipChar(lines[2]!, 5);
    return Buffer.from(lines.join("\n"));
  }
  if (/^\/v1\/patients\/[0-9a-f]+\/history/.test(url)) {
    const page = JSON.parse(body.toString("utf8")) as {
      checkpoint: string;
      entries: { bytes: string; inclusion: string[] }[];
    };
    const last = page.entries[page.entries.length - 1]!;
    if (mode === "entry") {
      // Change one hex digit of the entry's patient chain link ("prev"): still a well-formed entry.
      const text = fromUtf8(fromBase64(last.bytes));
      const at = text.indexOf('"prev":"') + 8;
      last.bytes = toBase64(utf8(flipChar(text, at)));
    } else if (mode === "proof") {
      last.inclusion[0] = flipChar(last.inclusion[0]!, 3);
    } else if (mode === "history-checkpoint") {
      const lines = page.checkpoint.split("\n");
      lines[2] = flipChar(lines[2]!, 5);
      page.checkpoint = lines.join("\n");
    } else {
      return body;
    }
    return Buffer.from(JSON.stringify(page));
  }
  return body;
}

describe("stories over real sockets against a node process", { timeout: 600_000 }, () => {
  let f: NodeFixture;
  let trust: TrustState;
  const ids: Record<string, string> = {};
  let consortium: Identity;
  let hospital: Identity;
  let validator: Identity;
  let lab: Identity;
  let labQa: Identity;
  let clinic: Identity;
  let imaging: Identity;
  let imagingQa: Identity;
  let ana: Identity;
  /** What each org decrypted of Ana's records, to compare with her access log (h). */
  const decryptedBy = new Map<string, Set<string>>();

  const client = (identity: Identity, baseUrl = f.url): MedledgerClient =>
    new MedledgerClient({ baseUrl, crypto, identity, trust });
  const readAs = async (identity: Identity, patient: string): Promise<History> => {
    const history = await client(identity).history(patient);
    if (identity.kind === "org") {
      const seen = decryptedBy.get(identity.id) ?? new Set<string>();
      for (const item of history.items) if (item.record?.status === "decrypted") seen.add(item.record.id);
      decryptedBy.set(identity.id, seen);
    }
    return history;
  };
  const labResult = (patient: string, title: string, days: number): RecordInput => ({
    patient,
    validator: "lab-qa",
    type: "laboratory-result",
    sensitivity: "normal",
    date: daysAgo(days),
    title: `${title} ${MARKER}`,
    resource: {
      resourceType: "Observation",
      status: "final",
      subject: { reference: `Patient/${patient}` },
      note: [{ text: `specimen comment ${MARKER}` }],
    },
  });
  /** Write and attest a record (its validator attests at once); returns its record id. */
  const written = async (author: Identity, attester: Identity, input: RecordInput): Promise<string> => {
    const { queueId, record } = await client(author).addRecord(input);
    const result = await client(attester).validateRecord(queueId);
    assert.ok(result.accepted);
    return record;
  };
  /** A signed request sent straight to the node, as any holder of the key could send it. */
  const signedFetch = async (
    as: Identity,
    method: "GET" | "POST",
    path: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: { error?: { code: string } } }> => {
    const url = `${f.url}${path}`;
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    let body: Uint8Array | undefined;
    if (options.body !== undefined) {
      body = utf8(JSON.stringify(options.body));
      headers["content-type"] = "application/json; charset=utf-8";
    }
    Object.assign(
      headers,
      await signRequest(
        crypto,
        { method, url, headers, body },
        { keyid: as.keyid, secretKey: as.signing.secretKey, clock: Date.now },
      ),
    );
    const response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> }),
    });
    const text = await response.text();
    let parsed: { error?: { code: string } };
    try {
      parsed = JSON.parse(text) as { error?: { code: string } };
    } catch {
      parsed = {};
    }
    return { status: response.status, body: parsed };
  };
  /** The entry of a record, from a verified history. */
  const entryOf = (history: History, record: string): Entry =>
    history.items.find((i) => i.record?.id === record)!.entry;

  before(async () => {
    f = await startNodeFixture({ actorKeysInNode: false });
    trust = newTrustState({ origin: f.origin, logKey: f.logKey });
    const unlock = async (name: string): Promise<Identity> =>
      unlockIdentity(crypto, readFileSync(f.keyFile(name), "utf8"), f.passphrase(name));
    consortium = await unlock("consortium");
    hospital = await unlock("hospital");
    validator = await unlock("validator");
    lab = await newIdentity("org", "lab");
    labQa = await newIdentity("org", "lab-qa");
    clinic = await newIdentity("org", "clinic");
    imaging = await newIdentity("org", "imaging");
    imagingQa = await newIdentity("org", "imaging-qa");
    ana = await newIdentity("patient", toHex(crypto.randomBytes(16)));
  });
  after(async () => {
    await f.close();
  });

  it("(a) a lab result is written, validated and read by its patient", async () => {
    // 1. The consortium admits a laboratory, its validator, a clinic, an imaging centre and its validator.
    for (const [org, roles] of [
      [lab, ["author"]],
      [labQa, ["validator"]],
      [clinic, ["author"]],
      [imaging, ["author"]],
      [imagingQa, ["validator"]],
    ] as const) {
      await client(consortium).admitOrg(
        {
          orgId: org.id,
          roles,
          signKey: toHex(org.signing.publicKey),
          encKey: toHex(org.encryption.publicKey),
        },
        [consortium],
      );
    }
    // 2. The hospital enrols Ana (both sign); the laboratory links its MRN for her (both sign).
    await client(hospital).enrollPatient(ana);
    await client(lab).linkIdentifier(ana, "urn:oid:lab", MRN_MARKER);
    assert.equal(await client(lab).findPatient("urn:oid:lab", MRN_MARKER), ana.id);
    // 3. The laboratory writes an HbA1c; it waits in lab-qa's queue.
    const { queueId, record } = await client(lab).addRecord(labResult(ana.id, "HbA1c 7.4 %", 40));
    const pending = await client(labQa).queue("validator", "pending");
    assert.deepEqual(
      pending.map((i) => i.queueId),
      [queueId],
    );
    // 4. lab-qa opens it, finds nothing wrong, and attests it.
    const opened = await client(labQa).openQueueItem(queueId);
    assert.match(opened.payload!.title, /^HbA1c 7.4 %/);
    assert.deepEqual(opened.findings, []);
    const result = await client(labQa).validateRecord(queueId);
    assert.ok(result.accepted);
    ids.hba1c = record;
    // 5. Ana reads her history: complete, verified, the result decrypted on her side.
    const history = await readAs(ana, ana.id);
    assert.equal(history.complete, true);
    const item = history.items.find((i) => i.record?.id === record)!;
    assert.equal(item.record!.status, "decrypted");
    assert.equal(item.record!.payload!.title, `HbA1c 7.4 % ${MARKER}`);
    assert.deepEqual(item.verified, { inclusion: true, chain: true, signatures: true });
  });

  it("(b) a second provider reads nothing until granted, reads after, and nothing written after revocation", async () => {
    const hba1cCiphertext = (
      entryOf(await client(ana).history(ana.id), ids.hba1c!) as { body: { ciphertext: { hash: string } } }
    ).body.ciphertext.hash;
    // 1. The clinic has no read basis: no history, no ciphertext.
    await assert.rejects(client(clinic).history(ana.id), refusedWith("NOT_PERMITTED"));
    assert.equal((await signedFetch(clinic, "GET", `/v1/blobs/${hba1cCiphertext}`)).status, 403);
    // 2. Ana grants the clinic her laboratory results; the HbA1c's key is shared at once.
    const granted = await client(ana).grant({
      grantee: "clinic",
      categories: ["laboratory-result"],
      purpose: "second-opinion",
      expires: daysAgo(-30),
    });
    assert.equal(granted.shared, 1);
    ids.grant1 = granted.grant;
    // 3. The clinic reads it.
    const read = await readAs(clinic, ana.id);
    assert.equal(statusOf(read, ids.hba1c!), "decrypted");
    // 4. Ana revokes the grant.
    await client(ana).revoke(granted.grant);
    // 5. The laboratory writes a new result after the revocation: not wrapped for the clinic.
    ids.afterRevoke = await written(lab, labQa, labResult(ana.id, "Ferritin", 5));
    const after = await client(ana).history(ana.id);
    const entry = entryOf(after, ids.afterRevoke) as {
      body: { envelopes: { to: string }[]; ciphertext: { hash: string } };
    };
    assert.ok(!entry.body.envelopes.some((e) => e.to === "org:clinic"));
    // 6. The clinic can neither read the history nor fetch the new (or the old) ciphertext.
    await assert.rejects(client(clinic).history(ana.id), refusedWith("NOT_PERMITTED"));
    for (const hash of [entry.body.ciphertext.hash, hba1cCiphertext]) {
      const answer = await signedFetch(clinic, "GET", `/v1/blobs/${hash}`);
      assert.equal(answer.status, 403);
      assert.equal(answer.body.error?.code, "NOT_PERMITTED");
    }
  });

  it("(c) a grant limited to laboratory results does not open imaging", async () => {
    // 1. The imaging centre links its MRN for Ana and writes a chest X-ray with its image.
    await client(imaging).linkIdentifier(ana, "urn:oid:imaging", "I-1");
    ids.xray = await written(imaging, imagingQa, {
      patient: ana.id,
      validator: "imaging-qa",
      type: "image",
      sensitivity: "normal",
      date: daysAgo(20),
      title: `Chest X-ray ${MARKER}`,
      resource: {
        resourceType: "ImagingStudy",
        status: "available",
        subject: { reference: `Patient/${ana.id}` },
      },
      attachments: [{ name: "xray.txt", contentType: "text/plain", bytes: utf8(`pixels ${MARKER}`) }],
    });
    // 2. Ana grants the clinic laboratory results again.
    const granted = await client(ana).grant({
      grantee: "clinic",
      categories: ["laboratory-result"],
      purpose: "treatment",
      expires: daysAgo(-30),
    });
    ids.grant2 = granted.grant;
    assert.equal(granted.shared, 2, "the HbA1c and the ferritin");
    // 3. The clinic reads the lab results, not the image.
    const read = await readAs(clinic, ana.id);
    assert.equal(statusOf(read, ids.hba1c!), "decrypted");
    assert.equal(statusOf(read, ids.afterRevoke!), "decrypted");
    assert.equal(statusOf(read, ids.xray), "no-key");
    // 4. Even with an access event naming the image under its grant, the node releases no ciphertext of it.
    const xray = entryOf(read, ids.xray) as {
      body: { ciphertext: { hash: string }; blobs: { hash: string }[] };
    };
    const head = read.items.reduce((a, b) => (a.position > b.position ? a : b)).id;
    const event = await accessEventEntry(crypto, clinic, ana.id, head, [ids.xray], {
      type: "grant",
      grant: ids.grant2,
    });
    const [verdict] = await client(clinic).submit([event.bytes]);
    for (const hash of [xray.body.ciphertext.hash, ...xray.body.blobs.map((b) => b.hash)]) {
      const headers = verdict!.accepted ? { "medledger-access": event.id } : undefined;
      const answer = await signedFetch(
        clinic,
        "GET",
        `/v1/blobs/${hash}`,
        headers === undefined ? {} : { headers },
      );
      assert.equal(answer.status, 403, `blob ${hash}`);
    }
  });

  it("(d) a psychotherapy note: its patient cannot decrypt it, and the node refuses her its ciphertext", async () => {
    // 1. The hospital writes a psychotherapy note; the validator attests it unread.
    const { queueId, record } = await client(hospital).addRecord({
      patient: ana.id,
      validator: "validator",
      type: "clinical-note",
      sensitivity: "psychotherapy-note",
      date: daysAgo(3),
      title: `Session notes ${MARKER}`,
      resource: {
        resourceType: "DocumentReference",
        status: "current",
        subject: { reference: `Patient/${ana.id}` },
      },
    });
    const opened = await client(validator).openQueueItem(queueId);
    assert.equal(opened.payload, null);
    assert.ok((await client(validator).validateRecord(queueId)).accepted);
    ids.note = record;
    // 2. Ana sees that it exists, by whom and when, not what.
    const history = await readAs(ana, ana.id);
    const item = history.items.find((i) => i.record?.id === record)!;
    assert.equal(item.record!.status, "withheld");
    assert.equal(item.record!.payload, undefined);
    assert.equal(item.record!.author, "hospital");
    assert.match(item.month, /^[0-9]{4}-[0-9]{2}$/);
    // 3. Its key is wrapped for the author alone.
    const entry = item.entry as { body: { envelopes: { to: string }[]; ciphertext: { hash: string } } };
    assert.deepEqual(
      entry.body.envelopes.map((e) => e.to),
      ["org:hospital"],
    );
    // 4. The node refuses its ciphertext to Ana (and to the validator), serves it to its author.
    assert.equal((await signedFetch(ana, "GET", `/v1/blobs/${entry.body.ciphertext.hash}`)).status, 403);
    assert.equal(
      (await signedFetch(validator, "GET", `/v1/blobs/${entry.body.ciphertext.hash}`)).status,
      403,
    );
    const authorView = await readAs(hospital, ana.id);
    assert.equal(statusOf(authorView, record), "decrypted");
  });

  it("(e) a node operator with the database file and the node's keys can decrypt nothing", async () => {
    // 1. The operator copies the data folder (the node keeps running) and gathers every key in it.
    const copy = join(f.root, "operator");
    mkdirSync(copy);
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    walk(f.dataDir);
    for (const name of [
      "ledger.db",
      "ledger.db-wal",
      "ledger.db-shm",
      "queue.db",
      "queue.db-wal",
      "queue.db-shm",
    ]) {
      if (existsSync(join(f.dataDir, name))) copyFileSync(join(f.dataDir, name), join(copy, name));
    }
    const keyFiles = readdirSync(join(f.dataDir, "keys")).sort();
    assert.deepEqual(keyFiles, ["log.key", "witness.key"], "the node folder holds only the node's own keys");
    const secrets: Uint8Array[] = [];
    for (const name of keyFiles) {
      const text = readFileSync(join(f.dataDir, "keys", name), "utf8").trim();
      // PRIVATE+KEY+<name>+<keyid>+<base64 of type byte || seed> (C2SP signed-note signer keys).
      const raw = fromBase64(text.split("+").slice(4).join("+"));
      const seed = raw.subarray(raw.length - 32);
      secrets.push(seed, crypto.sha512(seed).subarray(0, 32), crypto.sha256(seed));
    }
    const candidates: KeyPair[] = [];
    for (const secretKey of secrets)
      candidates.push({ secretKey, publicKey: await crypto.x25519PublicKey(secretKey) });

    // 2. Every entry and blob of the database, read with medledger's own store code.
    const store = await openStore(`sqlite:${join(copy, "ledger.db")}`);
    const entries: Entry[] = [];
    const blobs: Uint8Array[] = [];
    try {
      for (let seq = 0n; ;) {
        const rows = store.readEntries(seq, 1000);
        if (rows.length === 0) break;
        for (const row of rows) {
          if (row.status === "accepted") entries.push(parseEntry(row.bytes));
          seq = row.seq + 1n;
        }
      }
      for (let after: Uint8Array | null = null; ;) {
        const hashes = store.listBlobs(after, 1000);
        if (hashes.length === 0) break;
        for (const hash of hashes) blobs.push(store.getBlob(hash)!);
        after = hashes[hashes.length - 1]!;
      }
    } finally {
      store.close();
    }
    assert.ok(entries.length > 20 && blobs.length >= 5, `${entries.length} entries, ${blobs.length} blobs`);

    // 3. Try to open every key envelope (records, key shares, grant scopes) with every key: nothing opens.
    const headers = new Map<string, { patient: string; record: string; author: string; month: string }>();
    for (const e of entries) {
      if (e.kind === "record.append" || e.kind === "record.amend") {
        const { patient, record, author, month } = e.body;
        headers.set(record, { patient, record, author, month });
      }
    }
    const envelopes: { env: string; to: string; aad: Uint8Array }[] = [];
    for (const e of entries) {
      if (e.kind === "record.append" || e.kind === "record.amend") {
        const aad = recordAad(headers.get(e.body.record)!);
        for (const env of e.body.envelopes) envelopes.push({ env: env.env, to: env.to, aad });
      } else if (e.kind === "key.share") {
        for (const k of e.body.keys)
          envelopes.push({ env: k.env, to: `org:?`, aad: recordAad(headers.get(k.record)!) });
      } else if (e.kind === "grant") {
        for (const env of e.body.scope.envelopes)
          envelopes.push({ env: env.env, to: env.to, aad: scopeAad(e.body.patient, e.body.grantee) });
      }
    }
    assert.ok(envelopes.length > 20);
    let opened = 0;
    for (const { env, to, aad } of envelopes) {
      for (const key of candidates) {
        for (const info of [utf8(to), new Uint8Array(0)]) {
          try {
            await openEnvelope(crypto, key, fromBase64(env), { info, aad });
            opened++;
          } catch {
            // Expected: no key of the node opens an envelope.
          }
        }
      }
    }
    assert.equal(opened, 0, "no envelope opens with the node's keys");
    // The attempt is real: the same envelopes open for their recipient (Ana's key opens hers).
    const mine = envelopes.filter((e) => e.to === ana.keyid);
    assert.ok(mine.length >= 3);
    for (const e of mine) {
      const key = await openEnvelope(crypto, ana.encryption, fromBase64(e.env), {
        info: utf8(e.to),
        aad: e.aad,
      });
      assert.equal(key.length, 32);
    }
    // 4. Nor does any blob open with any of those keys used directly as a data key.
    for (const blob of blobs) {
      for (const secret of secrets) {
        for (const header of headers.values()) {
          await assert.rejects(
            crypto.aeadOpen(
              "AES-256-GCM",
              secret,
              blob.subarray(0, 12),
              recordAad(header),
              blob.subarray(12),
            ),
          );
        }
      }
    }

    // 5. No plaintext anywhere: not in any file of the data folder, nor in any cell of its databases.
    for (const path of files) {
      if (!existsSync(path)) continue;
      const bytes = readFileSync(path);
      assert.equal(bytes.indexOf(MARKER), -1, `${path} holds the marker`);
      assert.equal(bytes.indexOf(MRN_MARKER), -1, `${path} holds the MRN`);
    }
    for (const name of ["ledger.db", "queue.db"]) {
      const db = new Database(join(copy, name), { readonly: true });
      try {
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
          name: string;
        }[];
        for (const { name: table } of tables) {
          for (const row of db.prepare(`SELECT * FROM "${table.replace(/"/g, '""')}"`).iterate() as Iterable<
            Record<string, unknown>
          >) {
            for (const value of Object.values(row)) {
              const text =
                value instanceof Uint8Array ? Buffer.from(value).toString("latin1") : String(value);
              assert.ok(
                !text.includes(MARKER) && !text.includes(MRN_MARKER),
                `${name}.${table} holds plaintext`,
              );
            }
          }
        }
      } finally {
        db.close();
      }
    }
  });

  it("(f) tampered responses are refused by the SDK, and the trust state does not move", async () => {
    const proxy = await startProxy(() => f.url);
    try {
      // 1. Through the proxy, unchanged, Ana reads her history.
      const good = new MedledgerClient({ baseUrl: proxy.url, crypto, identity: ana, trust });
      const baseline = await good.history(ana.id);
      assert.equal(baseline.complete, true);
      const remembered = good.trust.checkpoint;
      // 2. An entry byte, an inclusion proof hash, the checkpoint (alone or in the history), a blob byte.
      const cases: [Tamper, ErrorCode][] = [
        ["entry", "PROOF_INVALID"],
        ["proof", "PROOF_INVALID"],
        ["history-checkpoint", "SIGNATURE_INVALID"],
        ["checkpoint", "SIGNATURE_INVALID"],
        ["blob", "DECRYPTION_FAILED"],
      ];
      for (const [mode, code] of cases) {
        proxy.tamper = mode;
        const c = new MedledgerClient({ baseUrl: proxy.url, crypto, identity: ana, trust: good.trust });
        const attempt = mode === "checkpoint" ? c.checkpoint() : c.history(ana.id);
        await assert.rejects(attempt, refusedWith(code), mode);
        assert.equal(c.trust.checkpoint, remembered, `${mode}: the remembered checkpoint did not move`);
      }
      // 3. Untouched again, everything verifies.
      proxy.tamper = "none";
      assert.equal((await good.history(ana.id)).complete, true);
    } finally {
      await proxy.close();
    }
  });

  it("(g) a replayed or forged request is refused with 401 and changes nothing", async () => {
    const proxy = await startProxy(() => f.url);
    try {
      const health = async (): Promise<string> =>
        ((await (await fetch(`${f.url}/v1/health`)).json()) as { size: string }).size;
      // 1. The laboratory queues a record through the proxy, which keeps a copy of the request.
      const queued = await new MedledgerClient({
        baseUrl: proxy.url,
        crypto,
        identity: lab,
        trust,
      }).addRecord(labResult(ana.id, "Vitamin D", 2));
      const original = proxy.recorded.find((r) => r.method === "POST" && r.path === "/v1/queue")!;
      const queueBefore = (await client(lab).queue("author")).length;
      const sizeBefore = await health();
      /** Send a recorded request straight to the node, byte for byte (Host header included). */
      const send = (r: Recorded, body = r.body): Promise<{ status: number; code: string }> =>
        new Promise((done, fail) => {
          const target = new URL(f.url);
          const out = httpRequest(
            { host: target.hostname, port: target.port, method: r.method, path: r.path, headers: r.headers },
            (answer) => {
              const parts: Buffer[] = [];
              answer.on("data", (c: Buffer) => parts.push(c));
              answer.on("end", () => {
                const text = Buffer.concat(parts).toString("utf8");
                const code = (JSON.parse(text) as { error?: { code: string } }).error?.code ?? "";
                done({ status: answer.statusCode ?? 0, code });
              });
            },
          );
          out.on("error", fail);
          out.end(body);
        });
      // 2. The same signed request again: a replay.
      const replay = await send(original);
      assert.deepEqual(replay, { status: 401, code: "AUTH_REPLAYED" });
      // 3. The signature with another body (another entry): the digest does not match.
      const forgedBody = Buffer.from(
        original.body
          .toString("utf8")
          .replace(/"entry":"./, (m) => m.slice(0, -1) + (m.endsWith("A") ? "B" : "A")),
      );
      const forged = await send(original, forgedBody);
      assert.deepEqual(forged, { status: 401, code: "DIGEST_MISMATCH" });
      // 4. A request signed by another key under the laboratory's keyid.
      const impostor = await newIdentity("org", "lab");
      const stolen = await signedFetch(impostor, "POST", "/v1/queue/" + queued.queueId + "/reject", {
        body: { reason: "OTHER" },
      });
      assert.equal(stolen.status, 401);
      assert.equal(stolen.body.error?.code, "SIGNATURE_INVALID");
      // 5. Nothing changed: the queue, the item's status, the tree.
      assert.equal((await client(lab).queue("author")).length, queueBefore);
      assert.equal(
        (await client(lab).queue("author")).find((i) => i.queueId === queued.queueId)?.status,
        "pending",
      );
      assert.equal(await health(), sizeBefore);
      // The item is then validated as usual.
      assert.ok((await client(labQa).validateRecord(queued.queueId)).accepted);
      ids.vitaminD = queued.record;
    } finally {
      await proxy.close();
    }
  });

  it("(h) every access to Ana's records appears in her access log", async () => {
    // 1. The laboratory and the imaging centre read Ana's history as her care providers.
    await readAs(lab, ana.id);
    await readAs(imaging, ana.id);
    // 2. Ana's access log, from her verified history.
    const log = await client(ana).accessLog(ana.id);
    const logged = new Map<string, Set<string>>();
    for (const e of log) {
      if (e.type !== "access") continue;
      const set = logged.get(e.org) ?? new Set<string>();
      for (const r of e.records) set.add(r);
      logged.set(e.org, set);
      if (e.basis.type === "grant")
        assert.ok([ids.grant1, ids.grant2].includes(e.basis.grant), "a grant of Ana's");
    }
    // 3. Every record an org decrypted is in one of its access events, and every org that read is there.
    for (const [org, records] of decryptedBy) {
      for (const record of records)
        assert.ok(logged.get(org)?.has(record), `${org}'s access to ${record} is logged`);
    }
    assert.deepEqual([...logged.keys()].sort(), [...decryptedBy.keys()].sort());
    assert.deepEqual([...decryptedBy.keys()].sort(), ["clinic", "hospital", "imaging", "lab"]);
    assert.ok(logged.get("clinic")!.has(ids.hba1c!));
    assert.ok(!decryptedBy.get("clinic")!.has(ids.xray!), "the clinic never decrypted the image");
    // 4. The clinic's accesses name the grants they were made under, the revoked one first.
    const clinicGrants = log.flatMap((e) =>
      e.type === "access" && e.org === "clinic" && e.basis.type === "grant" ? [e.basis.grant] : [],
    );
    assert.equal(clinicGrants[0], ids.grant1);
    assert.ok(clinicGrants.slice(1).every((g) => g === ids.grant2));
  });
});
