/**
 * A real node on a temporary SQLite data folder (initNode with a cheap KDF, as bench/append.ts does), its
 * HTTP API on a real socket, and the actors of the tests: the genesis hospital (author) and validator, the
 * consortium key, further orgs admitted through the API, and patients. Requests are signed with the
 * src/core/http signer, exactly as the SDK signs them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromHex, toBase64, toHex, utf8 } from "../../src/core/encoding/bytes.ts";
import { encodeEnvelope, sealEnvelope } from "../../src/core/crypto/envelope.ts";
import { generateKeyFileKeys, unlockKeyFile } from "../../src/core/crypto/keyfile.ts";
import type { KeyPair } from "../../src/core/crypto/suite.ts";
import { signRequest } from "../../src/core/http/index.ts";
import { buildEntry, encodeEntry, entryId, newRandomId, signEntry } from "../../src/core/ledger/entry.ts";
import type { Entry, SignatureRole } from "../../src/core/ledger/schema.ts";
import { NODE_KEYS_DIR, readPassphrase, readSmallFile } from "../../src/node/config.ts";
import {
  CONSORTIUM_KEY_FILE,
  GENESIS_AUTHOR_ORG,
  GENESIS_VALIDATOR_ORG,
  initNode,
  orgKeyFile,
} from "../../src/node/init.ts";
import { createNode, type LedgerNode } from "../../src/node/node.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { createServer, type MedledgerServer, type ServerOptions } from "../../src/server/app.ts";
import type { ServerLimits } from "../../src/server/limits.ts";

export { crypto };

/** Someone who signs requests and entries. */
export interface Actor {
  readonly keyid: string;
  readonly id: string;
  readonly sign: KeyPair;
  readonly enc: KeyPair;
}

/** A patient, with the head of its chain as the tests built it. */
export interface Patient extends Actor {
  head: string | null;
}

/** An HTTP answer. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly bytes: Uint8Array;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

/** Options of a call. */
export interface CallOptions {
  readonly as?: Actor;
  readonly json?: unknown;
  readonly body?: Uint8Array;
  readonly headers?: Record<string, string>;
  /** Sign with this clock (milliseconds) instead of now. */
  readonly clock?: () => number;
}

/** The running node and API of a test. */
export interface Harness {
  readonly dir: string;
  /** Milliseconds added to the clock of the node, the API and request signing (to move time on). */
  clockOffset: number;
  /** The shared clock, milliseconds. */
  now(): number;
  node: LedgerNode;
  server: MedledgerServer;
  url: string;
  readonly hospital: Actor;
  readonly validator: Actor;
  readonly consortium: Actor;
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  /** The headers a signed request carries, for tests that send raw requests. */
  signHeaders(
    method: string,
    path: string,
    as: Actor,
    body?: Uint8Array,
    headers?: Record<string, string>,
  ): Promise<Record<string, string>>;
  /** Stop the API and the node, and start both again on the same folder. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Start a node with its API on a free port. */
export async function startHarness(
  limits: Partial<ServerLimits> = {},
  options: Pick<ServerOptions, "witnessLogs"> = {},
): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), "medledger-server-"));
  const dir = join(root, "data");
  await initNode({
    dir,
    crypto,
    origin: "server.medledger.example/log",
    keyFileOptions: { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true },
  });
  // The demo key files of the data folder, unlocked with keys/PASSPHRASES.txt as `node seed` does.
  const unlock = async (file: string) =>
    unlockKeyFile(
      crypto,
      await readSmallFile(join(dir, NODE_KEYS_DIR, file), file),
      await readPassphrase(dir, file),
    );
  const consortiumKeys = await unlock(CONSORTIUM_KEY_FILE);
  const hospitalKeys = await unlock(orgKeyFile(GENESIS_AUTHOR_ORG));
  const validatorKeys = await unlock(orgKeyFile(GENESIS_VALIDATOR_ORG));
  const orgActor = (id: string, keys: { signing: KeyPair; encryption: KeyPair }): Actor => ({
    keyid: `org:${id}`,
    id,
    sign: keys.signing,
    enc: keys.encryption,
  });
  const serverLimits: Partial<ServerLimits> = { ratePerSecond: 10_000, rateBurst: 10_000, ...limits };
  const clock = { offset: 0 };
  const now = (): number => Date.now() + clock.offset;
  const open = async (): Promise<{ node: LedgerNode; server: MedledgerServer; url: string }> => {
    const node = await createNode({ dir, crypto, verifyWorkers: 0, now: () => Math.floor(now() / 1000) });
    const server = await createServer({
      ...options,
      node,
      crypto,
      dataDir: dir,
      limits: serverLimits,
      clock: now,
    });
    const url = await server.listen({ host: "127.0.0.1", port: 0 });
    return { node, server, url };
  };
  const first = await open();
  const harness: Harness = {
    dir,
    get clockOffset() {
      return clock.offset;
    },
    set clockOffset(ms: number) {
      clock.offset = ms;
    },
    now,
    ...first,
    hospital: orgActor(GENESIS_AUTHOR_ORG, hospitalKeys),
    validator: orgActor(GENESIS_VALIDATOR_ORG, validatorKeys),
    consortium: {
      keyid: `consortium:${toHex(consortiumKeys.signing.publicKey)}`,
      id: toHex(consortiumKeys.signing.publicKey),
      sign: consortiumKeys.signing,
      enc: consortiumKeys.encryption,
    },
    async signHeaders(method, path, as, body, headers = {}) {
      const signed = await signRequest(
        crypto,
        { method, url: harness.url + path, headers, body },
        { keyid: as.keyid, secretKey: as.sign.secretKey, clock: now },
      );
      return { ...headers, ...(signed as Record<string, string>) };
    },
    async call(method, path, options = {}) {
      const url = harness.url + path;
      let body = options.body;
      const headers: Record<string, string> = {};
      if (options.json !== undefined) {
        body = utf8(JSON.stringify(options.json));
        headers["content-type"] = "application/json";
      }
      Object.assign(headers, options.headers ?? {});
      if (options.as !== undefined) {
        const signed = await signRequest(
          crypto,
          { method, url, headers, body },
          { keyid: options.as.keyid, secretKey: options.as.sign.secretKey, clock: options.clock ?? now },
        );
        Object.assign(headers, signed);
      }
      const response = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: Buffer.from(body) }),
      });
      const bytes = new Uint8Array(await response.arrayBuffer());
      const text = new TextDecoder().decode(bytes);
      return {
        status: response.status,
        headers: response.headers,
        bytes,
        text,
        json: <T>() => JSON.parse(text) as T,
      };
    },
    async restart() {
      await harness.server.close();
      await harness.node.close();
      Object.assign(harness, await open());
    },
    async close() {
      await harness.server.close();
      await harness.node.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Sign an entry in each role and encode it. */
export async function signed(
  entry: Entry,
  signers: readonly (readonly [SignatureRole, Actor])[],
): Promise<Uint8Array> {
  let out = entry;
  for (const [role, actor] of signers) out = await signEntry(crypto, out, role, actor.sign.secretKey);
  return encodeEntry(out);
}

/** Submit entries over HTTP as `as`; returns the verdicts (and throws on a non-200). */
export async function submit(
  h: Harness,
  as: Actor,
  entries: readonly Uint8Array[],
): Promise<{ accepted: boolean; reason?: string; id: string; position?: string }[]> {
  const answer = await h.call("POST", "/v1/entries", {
    as,
    json: { entries: entries.map((e) => toBase64(e)) },
  });
  if (answer.status !== 200) throw new Error(`submit: ${answer.status} ${answer.text}`);
  return answer.json<{ results: { accepted: boolean; reason?: string; id: string; position?: string }[] }>()
    .results;
}

/** Submit one entry that must be accepted; advances the patient's head when given. */
export async function accept(h: Harness, as: Actor, bytes: Uint8Array, patient?: Patient): Promise<string> {
  const [result] = await submit(h, as, [bytes]);
  if (result?.accepted !== true) throw new Error(`not accepted: ${JSON.stringify(result)}`);
  if (patient !== undefined) patient.head = result.id;
  return result.id;
}

/** Admit an org (signed by the consortium key, submitted by the consortium). */
export async function admitOrg(h: Harness, id: string, roles: ("author" | "validator")[]): Promise<Actor> {
  const keys = await generateKeyFileKeys(crypto, "org", id);
  const entry = buildEntry("org.admit", {
    org: {
      id,
      roles,
      signKey: toHex(keys.signing.publicKey),
      encKey: toHex(keys.encryption.publicKey),
    },
  });
  await accept(h, h.consortium, await signed(entry, [["consortium", h.consortium]]));
  return { keyid: `org:${id}`, id, sign: keys.signing, enc: keys.encryption };
}

/** A new patient enrolled by an org. */
export async function enroll(h: Harness, org: Actor): Promise<Patient> {
  const [sign, enc] = await Promise.all([crypto.ed25519Generate(), crypto.x25519Generate()]);
  const id = newRandomId(crypto);
  const patient: Patient = { keyid: `patient:${id}`, id, sign, enc, head: null };
  const entry = buildEntry("patient.enroll", {
    patient: id,
    prev: null,
    org: org.id,
    signKey: toHex(sign.publicKey),
    encKey: toHex(enc.publicKey),
  });
  await accept(
    h,
    org,
    await signed(entry, [
      ["org", org],
      ["patient", patient],
    ]),
    patient,
  );
  return patient;
}

/** A key envelope for a recipient (the server never opens one: any data key will do). */
async function envelope(to: string, key: Uint8Array): Promise<{ to: string; env: string }> {
  const env = await sealEnvelope(crypto, key, crypto.randomBytes(32), {
    info: utf8(to),
    aad: utf8("medledger/test"),
  });
  return { to, env: toBase64(encodeEnvelope(env)) };
}

/** A record and its ciphertext. */
export interface BuiltRecord {
  readonly record: string;
  readonly bytes: Uint8Array;
  readonly id: string;
  readonly blob: Uint8Array;
  readonly hash: string;
}

/** Options of buildRecord. */
export interface RecordOptions {
  readonly author: Actor;
  readonly validator: Actor;
  readonly withheld?: boolean;
  /** Orgs (with active grants) the record is also wrapped for. */
  readonly grantees?: readonly Actor[];
  /** Sign as validator too (false: the author-signed bytes the queue takes). */
  readonly attested?: boolean;
  readonly month?: string;
}

/** A record.append on the patient's current head, with a fresh random ciphertext blob. */
export async function buildRecord(patient: Patient, options: RecordOptions): Promise<BuiltRecord> {
  if (patient.head === null) throw new Error("enrol first");
  const blob = crypto.randomBytes(300);
  const hash = toHex(crypto.sha256(blob));
  const record = newRandomId(crypto);
  const readers: [string, Uint8Array][] = options.withheld
    ? [[`org:${options.author.id}`, options.author.enc.publicKey]]
    : [
        [`org:${options.author.id}`, options.author.enc.publicKey],
        [`org:${options.validator.id}`, options.validator.enc.publicKey],
        [`patient:${patient.id}`, patient.enc.publicKey],
        ...(options.grantees ?? []).map((g): [string, Uint8Array] => [`org:${g.id}`, g.enc.publicKey]),
      ];
  readers.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const envelopes = await Promise.all(readers.map(([to, key]) => envelope(to, key)));
  const entry = buildEntry("record.append", {
    patient: patient.id,
    prev: patient.head,
    record,
    author: options.author.id,
    validator: options.validator.id,
    withheldFromPatient: options.withheld === true,
    month: options.month ?? "2025-01",
    ciphertext: { hash, size: blob.length },
    blobs: [],
    envelopes,
  });
  const signers: [SignatureRole, Actor][] = [["author", options.author]];
  if (options.attested !== false) signers.push(["validator", options.validator]);
  const bytes = await signed(entry, signers);
  return { record, bytes, id: entryId(crypto, bytes), blob, hash };
}

/** Upload a blob as an org. */
export async function upload(h: Harness, as: Actor, blob: Uint8Array): Promise<Answer> {
  return h.call("PUT", `/v1/blobs/${toHex(crypto.sha256(blob))}`, {
    as,
    body: blob,
    headers: { "content-type": "application/octet-stream" },
  });
}

/** A grant of the patient to an org, expiring on `expires`. */
export async function grantEntry(
  patient: Patient,
  grantee: Actor,
  expires = "2999-12-31",
): Promise<Uint8Array> {
  const scope = await Promise.all([
    envelope(`org:${grantee.id}`, grantee.enc.publicKey),
    envelope(`patient:${patient.id}`, patient.enc.publicKey),
  ]);
  scope.sort((a, b) => (a.to < b.to ? -1 : 1));
  const entry = buildEntry("grant", {
    patient: patient.id,
    prev: patient.head!,
    grantee: grantee.id,
    expires,
    scopeHash: toHex(crypto.randomBytes(32)),
    scope: { ct: toBase64(crypto.randomBytes(64)), envelopes: scope },
  });
  return signed(entry, [["patient", patient]]);
}

/** Share records' keys with a grantee under a grant (the server never opens the envelopes). */
export async function shareEntry(
  patient: Patient,
  grant: string,
  grantee: Actor,
  records: string[],
): Promise<Uint8Array> {
  const keys = await Promise.all(
    [...records].sort().map(async (record) => ({
      record,
      env: (await envelope(`org:${grantee.id}`, grantee.enc.publicKey)).env,
    })),
  );
  return signed(buildEntry("key.share", { patient: patient.id, prev: patient.head!, grant, keys }), [
    ["patient", patient],
  ]);
}

/** Revoke a grant. */
export async function revokeEntry(patient: Patient, grant: string): Promise<Uint8Array> {
  return signed(buildEntry("grant.revoke", { patient: patient.id, prev: patient.head!, grant }), [
    ["patient", patient],
  ]);
}

/** An access event by an org naming records on a basis. */
export async function accessEntry(
  patient: Patient,
  org: Actor,
  records: string[],
  basis: { type: "care" } | { type: "grant"; grant: string } | { type: "emergency"; emergency: string },
): Promise<Uint8Array> {
  const entry = buildEntry("access.event", {
    patient: patient.id,
    prev: patient.head!,
    org: org.id,
    records: [...records].sort(),
    basis,
  });
  return signed(entry, [["org", org]]);
}

/** The entry bytes of an emergency declaration. */
export async function emergencyEntry(patient: Patient, org: Actor): Promise<Uint8Array> {
  const entry = buildEntry("emergency.access", {
    patient: patient.id,
    prev: patient.head!,
    org: org.id,
    reason: "patient-unconscious",
  });
  return signed(entry, [["org", org]]);
}

/** Decode a hex id (for the store). */
export function hexBytes(hex: string): Uint8Array {
  return fromHex(hex);
}
