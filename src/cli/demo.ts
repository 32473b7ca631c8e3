/**
 * `medledger demo [--data DIR] [--port N] [--json]`: one command, nothing else needed. It creates a node with
 * a small region (a hospital, a laboratory and an imaging centre as authors, each with its own validator
 * org), starts the node's HTTP API in this process, and then, as a client through the SDK only (exactly
 * what the other commands do), enrolls patients, links MRNs, writes and validates records of every kind,
 * grants, rejects a queue item and amends a record. It prints the node's URL, where the key files and their
 * passphrases are, and three commands to try, and serves until Ctrl-C or SIGTERM.
 *
 * Demo key files use a cheaper scrypt cost than real ones (N = 2^14 instead of 2^17) so the demo starts in
 * seconds; their passphrases sit next to them anyway. The printout says so.
 */
import { deflateSync } from "node:zlib";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { LedgerError, isLedgerError } from "../core/errors.ts";
import { toHex } from "../core/encoding/bytes.ts";
import type { ScryptParams } from "../core/crypto/suite.ts";
import type { OrgRole } from "../core/ledger/schema.ts";
import { ledgerDay } from "../core/ledger/state.ts";
import { NODE_KEYS_DIR, readPassphrase } from "../node/config.ts";
import { CONSORTIUM_KEY_FILE, GENESIS_AUTHOR_ORG, initNode, orgKeyFile } from "../node/init.ts";
import { createNode, type LedgerNode } from "../node/node.ts";
import { createServer, type MedledgerServer } from "../server/app.ts";
import {
  MedledgerClient,
  createOrgKeyFile,
  createPatientKeyFile,
  newTrustState,
  unlockIdentity,
  type Identity,
  type RecordInput,
  type RecordType,
  type Sensitivity,
  type TrustState,
} from "../sdk/index.ts";
import { CliError } from "./io.ts";
import { DEFAULT_PORT, untilSignal } from "./node.ts";
import { DEFAULT_MRN_SYSTEM } from "./patient.ts";
import { EXIT_USAGE, reportError, type CliContext } from "./report.ts";
import { TRUST_SUFFIX, bigintsAsStrings, formatTrustFile, progressBar, writeFileAtomic } from "./session.ts";

/** The scrypt cost of demo key files (real ones use N = 2^17): the passphrases sit next to them anyway. */
export const DEMO_KDF: ScryptParams = { N: 2 ** 14, r: 8, p: 1 };

interface DemoOptions {
  readonly data?: string;
  readonly host: string;
  readonly port: number;
  readonly json?: boolean;
}

/** An actor of the demo with its key file and passphrase. */
interface DemoActor {
  readonly name: string;
  readonly identity: Identity;
  readonly keyFile: string;
  readonly passphraseFile: string;
  readonly passphrase: string;
}

/** One record the demo wrote. */
interface DemoRecord {
  readonly patient: string;
  readonly record: string;
  readonly queueId: string;
  readonly type: RecordType;
  readonly sensitivity: Sensitivity;
  readonly title: string;
  readonly date: string;
  readonly author: string;
  readonly validator: string;
  readonly position: string | null;
  readonly supersedes?: string;
}

/** The orgs of the demo region besides the genesis ones: id, roles, who validates its records. */
const DEMO_ORGS: readonly { id: string; roles: OrgRole[]; description: string }[] = [
  { id: "laboratory", roles: ["author"], description: "a laboratory" },
  { id: "imaging", roles: ["author"], description: "an imaging centre" },
  { id: "hospital-qa", roles: ["validator"], description: "the hospital's validator" },
  { id: "lab-qa", roles: ["validator"], description: "the laboratory's validator" },
  { id: "imaging-qa", roles: ["validator"], description: "the imaging centre's validator" },
];

const VALIDATOR_OF: Readonly<Record<string, string>> = {
  hospital: "hospital-qa",
  laboratory: "lab-qa",
  imaging: "imaging-qa",
};

function portOption(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError("--port must be an integer from 0 to 65535");
  }
  return Number(value);
}

/** A word for shell commands: quoted only when it needs to be. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_/.:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The day `days` before today (UTC), YYYY-MM-DD. */
function daysAgo(days: number): string {
  return ledgerDay(Math.floor(Date.now() / 1000) - days * 86_400);
}

// ------------------------------------------------------------------------------------------------------
// A small PNG for the imaging record (a soft round shape on black, 64 x 64, grey): RFC 2083.
// ------------------------------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A 64 x 64 8-bit greyscale PNG: two lung-like ellipses, the demo's "chest X-ray". */
export function demoPng(size = 64): Uint8Array {
  const rows = Buffer.alloc(size * (size + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const lung = (cx: number): number =>
        ((x - cx) / (size * 0.17)) ** 2 + ((y - size * 0.5) / (size * 0.32)) ** 2;
      const inside = Math.min(lung(size * 0.32), lung(size * 0.68));
      const spine = Math.abs(x - size / 2) < size * 0.05 ? 200 : 0;
      const value = inside < 1 ? 40 + Math.round(50 * inside) : 170;
      rows[y * (size + 1) + 1 + x] = Math.max(value, spine);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(rows)),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

// ------------------------------------------------------------------------------------------------------
// The demo
// ------------------------------------------------------------------------------------------------------

/** The demo folder: the one given (new or empty), or a fresh temporary one. */
async function demoFolder(data: string | undefined): Promise<string> {
  if (data === undefined) return mkdtemp(join(tmpdir(), "medledger-demo-"));
  const dir = resolve(data);
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOENT") {
      throw new CliError(
        EXIT_USAGE,
        "INVALID_ARGUMENT",
        `cannot use --data ${dir}: ${String((err as { code?: unknown }).code)}`,
      );
    }
  }
  if (names.length > 0) {
    throw new CliError(
      EXIT_USAGE,
      "CONFLICT",
      `--data ${dir} is not empty: give a new or empty folder (or no --data for a temporary one)`,
    );
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Everything the demo set up, as printed (and as the JSON document). */
interface DemoSummary {
  readonly url: string;
  readonly dir: string;
  readonly nodeDir: string;
  readonly keysDir: string;
  readonly passphrases: string;
  readonly passphrasesDir: string;
  readonly origin: string;
  readonly logKey: string;
  readonly witnessKey: string;
  readonly kdf: ScryptParams & { readonly note: string };
  readonly orgs: readonly { id: string; roles: readonly string[]; keyFile: string; passphraseFile: string }[];
  readonly consortium: { keyFile: string; passphraseFile: string };
  readonly patients: readonly {
    name: string;
    id: string;
    keyFile: string;
    passphraseFile: string;
    records: number;
  }[];
  readonly records: readonly DemoRecord[];
  readonly grant: {
    id: string;
    patient: string;
    grantee: string;
    categories: string[];
    expires: string;
    shared: number;
  };
  readonly rejected: {
    queueId: string;
    patient: string;
    author: string;
    validator: string;
    reason: string;
    note: string;
  };
  readonly commands: readonly { title: string; argv: string[]; shell: string }[];
}

/** The region's setup as a client: a list of steps, for the progress bar. */
class DemoBuilder {
  readonly #ctx: CliContext;
  readonly #dir: string;
  readonly #url: string;
  readonly #trust: TrustState;
  readonly actors = new Map<string, DemoActor>();
  readonly records: DemoRecord[] = [];
  readonly #passphraseLines: string[] = [];

  constructor(ctx: CliContext, dir: string, url: string, trust: TrustState) {
    this.#ctx = ctx;
    this.#dir = dir;
    this.#url = url;
    this.#trust = trust;
  }

  client(name: string): MedledgerClient {
    const actor = this.#actor(name);
    return new MedledgerClient({
      baseUrl: this.#url,
      crypto: this.#ctx.crypto,
      identity: actor.identity,
      trust: this.#trust,
    });
  }

  #actor(name: string): DemoActor {
    const actor = this.actors.get(name);
    if (actor === undefined) throw new LedgerError("INTERNAL", `no demo actor ${name}`);
    return actor;
  }

  id(name: string): string {
    return this.#actor(name).identity.id;
  }

  /** Keep a key file (text) with its passphrase in keys/ and passphrases/. */
  async keep(name: string, fileText: string, passphrase: string): Promise<DemoActor> {
    const keyFile = join(this.#dir, "keys", `${name}.json`);
    const passphraseFile = join(this.#dir, "passphrases", `${name}.txt`);
    await writeFile(keyFile, fileText, { mode: 0o600, flag: "wx" });
    await writeFile(passphraseFile, `${passphrase}\n`, { mode: 0o600, flag: "wx" });
    this.#passphraseLines.push(`${relative(this.#dir, keyFile)} ${passphrase}`);
    const identity = await unlockIdentity(this.#ctx.crypto, fileText, passphrase);
    const actor = { name, identity, keyFile, passphraseFile, passphrase };
    this.actors.set(name, actor);
    return actor;
  }

  newPassphrase(): string {
    return toHex(this.#ctx.crypto.randomBytes(12));
  }

  async writePassphrases(): Promise<string> {
    const path = join(this.#dir, "PASSPHRASES.txt");
    await writeFile(
      path,
      [
        "# medledger demo only: the passphrases of the key files in keys/, one per line: <key file> <passphrase>.",
        "# Real passphrases never sit next to their key files (docs/cli.md). Each is also in passphrases/<name>.txt.",
        ...this.#passphraseLines,
        "",
      ].join("\n"),
      { mode: 0o600, flag: "wx" },
    );
    await chmod(path, 0o600);
    return path;
  }

  /** Write a record as `author`, have its validator attest it at once (so no chain moves meanwhile). */
  async record(
    author: string,
    patient: string,
    content: Omit<RecordInput, "patient" | "validator">,
    supersedes?: string,
  ): Promise<DemoRecord> {
    const validator = VALIDATOR_OF[author]!;
    const input: RecordInput = { ...content, patient: this.id(patient), validator };
    const writer = this.client(author);
    const queued =
      supersedes === undefined
        ? await writer.addRecord(input)
        : await writer.amendRecord({ ...input, supersedes });
    const result = await this.client(validator).validateRecord(queued.queueId);
    const written: DemoRecord = {
      patient: this.id(patient),
      record: queued.record,
      queueId: queued.queueId,
      type: content.type,
      sensitivity: content.sensitivity,
      title: content.title,
      date: content.date,
      author,
      validator,
      position: result.accepted ? result.position.toString() : null,
      ...(supersedes === undefined ? {} : { supersedes }),
    };
    this.records.push(written);
    return written;
  }
}

/** FHIR R4 resources of the demo (small, valid-looking, about the patient). */
function fhir(
  resourceType: string,
  patient: string,
  fields: Record<string, unknown>,
): Record<string, unknown> {
  const subject = { reference: `Patient/${patient}` };
  return resourceType === "Encounter" || resourceType === "Procedure" || resourceType === "Observation"
    ? { resourceType, status: "final", subject, ...fields }
    : { resourceType, subject, ...fields };
}

async function runDemo(ctx: CliContext, opts: DemoOptions): Promise<void> {
  const dir = await demoFolder(opts.data);
  try {
    await runDemoIn(ctx, opts, dir);
  } catch (err) {
    // A temporary folder of a demo that did not start is of no use to anyone.
    if (opts.data === undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

async function runDemoIn(ctx: CliContext, opts: DemoOptions, dir: string): Promise<void> {
  const json = opts.json === true;
  const crypto = ctx.crypto;
  const nodeDir = join(dir, "node");
  const keysDir = join(dir, "keys");
  const passDir = join(dir, "passphrases");
  const bar = progressBar(json, "setting up the demo");
  const TOTAL_STEPS = 31;
  let step = 0;
  const tick = (): void => bar.update(++step, TOTAL_STEPS);

  // 1. The node: its keys, its store and a genesis (consortium key, hospital, and a spare validator org).
  const init = await initNode({
    dir: nodeDir,
    crypto,
    origin: `demo.medledger.example/node-${toHex(crypto.randomBytes(4))}`,
    keyFileOptions: { kdf: DEMO_KDF, allowWeakKdf: true },
  });
  tick();
  await mkdir(keysDir, { mode: 0o700 });
  await mkdir(passDir, { mode: 0o700 });
  await chmod(dir, 0o700);
  let node: LedgerNode | undefined;
  let server: MedledgerServer | undefined;
  const shutdown = async (): Promise<void> => {
    await server?.close();
    await node?.close();
  };
  try {
    node = await createNode({
      dir: nodeDir,
      crypto,
      onBatchError: (err) => ctx.io.err(`WARN batch failed: ${isLedgerError(err) ? err.code : "INTERNAL"}`),
    });
    server = await createServer({ node, crypto, dataDir: nodeDir, log: (line) => ctx.io.err(line) });
    let url: string;
    try {
      url = await server.listen({ host: opts.host, port: opts.port });
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      throw new CliError(
        EXIT_USAGE,
        "INVALID_ARGUMENT",
        `cannot listen on ${opts.host}:${opts.port} (${String(code)}): pass --port 0 for a free port, or another --port`,
      );
    }
    tick();
    const trust = newTrustState({ origin: init.origin, logKey: init.logKey });
    const demo = new DemoBuilder(ctx, dir, url, trust);

    // 2. The genesis actors' key files (consortium, hospital), copied next to the others with their passphrases.
    for (const [name, file] of [
      ["consortium", CONSORTIUM_KEY_FILE],
      ["hospital", orgKeyFile(GENESIS_AUTHOR_ORG)],
    ] as const) {
      const passphrase = await readPassphrase(nodeDir, file);
      const text = await readFile(join(nodeDir, NODE_KEYS_DIR, file), "utf8");
      await demo.keep(name, text, passphrase);
    }
    tick();

    // 3. The consortium admits the laboratory, the imaging centre and the three validator orgs.
    const consortium = demo.actors.get("consortium")!.identity;
    for (const org of DEMO_ORGS) {
      const passphrase = demo.newPassphrase();
      const created = await createOrgKeyFile(crypto, {
        orgId: org.id,
        passphrase,
        kdf: DEMO_KDF,
        allowWeakKdf: true,
      });
      await demo.keep(org.id, created.file, passphrase);
      await demo
        .client("consortium")
        .admitOrg({ orgId: org.id, roles: org.roles, signKey: created.signKey, encKey: created.encKey }, [
          consortium,
        ]);
      tick();
    }

    // 4. Patients: key files on their own "devices", enrolled by the hospital (both sign), MRNs linked.
    const patients = ["ana", "ben", "carla"] as const;
    for (const [i, name] of patients.entries()) {
      const passphrase = demo.newPassphrase();
      const created = await createPatientKeyFile(crypto, { passphrase, kdf: DEMO_KDF, allowWeakKdf: true });
      const patient = await demo.keep(name, created.file, passphrase);
      await demo.client("hospital").enrollPatient(patient.identity);
      await demo.client("hospital").linkIdentifier(patient.identity, DEFAULT_MRN_SYSTEM, `H-10000${i + 1}`);
      tick();
    }
    // The laboratory and the imaging centre register the patients they see with their own MRNs: that link
    // (signed by both) is their care relationship, without which a node shows them nothing of the patient.
    for (const [org, name, mrn] of [
      ["laboratory", "ana", "L-55501"],
      ["laboratory", "ben", "L-55502"],
      ["laboratory", "carla", "L-55503"],
      ["imaging", "ana", "I-9001"],
      ["imaging", "carla", "I-9002"],
    ] as const) {
      await demo.client(org).linkIdentifier(demo.actors.get(name)!.identity, DEFAULT_MRN_SYSTEM, mrn);
    }
    tick();

    // 5. Ana's records, of every kind, each validated by its author's validator.
    const ana = demo.id("ana");
    await demo.record("hospital", "ana", {
      type: "consultation",
      sensitivity: "normal",
      date: daysAgo(70),
      title: "Consultation: fatigue and thirst",
      resource: fhir("Encounter", ana, {
        class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB" },
        reasonCode: [{ text: "fatigue, polydipsia" }],
      }),
    });
    tick();
    await demo.record("laboratory", "ana", {
      type: "laboratory-result",
      sensitivity: "normal",
      date: daysAgo(68),
      title: "HbA1c 7.9 %",
      resource: fhir("Observation", ana, {
        code: { coding: [{ system: "http://loinc.org", code: "4548-4", display: "Hemoglobin A1c" }] },
        valueQuantity: { value: 7.9, unit: "%" },
      }),
    });
    tick();
    await demo.record("laboratory", "ana", {
      type: "laboratory-result",
      sensitivity: "normal",
      date: daysAgo(68),
      title: "Lipid panel",
      resource: fhir("DiagnosticReport", ana, {
        status: "final",
        code: { coding: [{ system: "http://loinc.org", code: "57698-3", display: "Lipid panel" }] },
        conclusion: "LDL 3.9 mmol/L, HDL 1.1 mmol/L",
      }),
    });
    tick();
    const prescription = await demo.record("hospital", "ana", {
      type: "prescription",
      sensitivity: "normal",
      date: daysAgo(65),
      title: "Metformin 500 mg twice daily",
      resource: fhir("MedicationRequest", ana, {
        status: "active",
        intent: "order",
        medicationCodeableConcept: { text: "metformin 500 mg tablet" },
        dosageInstruction: [{ text: "500 mg twice daily with meals" }],
      }),
    });
    tick();
    await demo.record("imaging", "ana", {
      type: "image",
      sensitivity: "normal",
      date: daysAgo(50),
      title: "Chest X-ray, PA view",
      resource: fhir("ImagingStudy", ana, {
        status: "available",
        modality: [{ system: "http://dicom.nema.org/resources/ontology/DCM", code: "DX" }],
        description: "Chest X-ray: no acute findings",
      }),
      attachments: [{ name: "chest-xray.png", contentType: "image/png", bytes: demoPng() }],
    });
    tick();
    await demo.record("hospital", "ana", {
      type: "operation",
      sensitivity: "normal",
      date: daysAgo(40),
      title: "Laparoscopic appendectomy",
      resource: fhir("Procedure", ana, {
        code: {
          coding: [
            { system: "http://snomed.info/sct", code: "6025007", display: "Laparoscopic appendectomy" },
          ],
        },
      }),
    });
    tick();
    await demo.record("hospital", "ana", {
      type: "clinical-note",
      sensitivity: "normal",
      date: daysAgo(39),
      title: "Diagnosis: type 2 diabetes mellitus",
      resource: fhir("Condition", ana, {
        clinicalStatus: { coding: [{ code: "active" }] },
        code: {
          coding: [
            { system: "http://snomed.info/sct", code: "44054006", display: "Type 2 diabetes mellitus" },
          ],
        },
      }),
    });
    tick();
    await demo.record("hospital", "ana", {
      type: "clinical-note",
      sensitivity: "mental-health",
      date: daysAgo(30),
      title: "Depression screening follow-up",
      resource: fhir("ClinicalImpression", ana, { status: "completed", summary: "PHQ-9 score 11, moderate" }),
    });
    tick();
    await demo.record("hospital", "ana", {
      type: "clinical-note",
      sensitivity: "psychotherapy-note",
      date: daysAgo(30),
      title: "Psychotherapy session notes",
      resource: fhir("DocumentReference", ana, {
        status: "current",
        description: "Therapist's process notes, session 4",
      }),
    });
    tick();
    await demo.record(
      "hospital",
      "ana",
      {
        type: "prescription",
        sensitivity: "normal",
        date: daysAgo(20),
        title: "Metformin 1000 mg twice daily (dose increased)",
        resource: fhir("MedicationRequest", ana, {
          status: "active",
          intent: "order",
          medicationCodeableConcept: { text: "metformin 1000 mg tablet" },
          dosageInstruction: [{ text: "1000 mg twice daily with meals" }],
        }),
      },
      prescription.record,
    );
    tick();

    // 6. Ana grants the imaging centre her laboratory results (it needs kidney function before a contrast CT).
    const expires = ledgerDay(Math.floor(Date.now() / 1000) + 180 * 86_400);
    const granted = await demo.client("ana").grant({
      grantee: "imaging",
      categories: ["laboratory-result"],
      purpose: "treatment",
      expires,
    });
    tick();
    // A result written after the grant: the laboratory wraps its key for the imaging centre itself.
    await demo.record("laboratory", "ana", {
      type: "laboratory-result",
      sensitivity: "normal",
      date: daysAgo(2),
      title: "Creatinine 78 umol/L (eGFR > 90)",
      resource: fhir("Observation", ana, {
        code: { coding: [{ system: "http://loinc.org", code: "2160-0", display: "Creatinine" }] },
        valueQuantity: { value: 78, unit: "umol/L" },
      }),
    });
    tick();

    // 7. Ben and Carla: a few records; one lab result for Ben is rejected by the laboratory's validator.
    await demo.record("hospital", "ben", {
      type: "consultation",
      sensitivity: "normal",
      date: daysAgo(15),
      title: "Consultation: sprained ankle",
      resource: fhir("Encounter", demo.id("ben"), { class: { code: "AMB" } }),
    });
    tick();
    await demo.record("hospital", "ben", {
      type: "prescription",
      sensitivity: "normal",
      date: daysAgo(15),
      title: "Ibuprofen 400 mg as needed",
      resource: fhir("MedicationRequest", demo.id("ben"), {
        status: "active",
        intent: "order",
        medicationCodeableConcept: { text: "ibuprofen 400 mg tablet" },
      }),
    });
    tick();
    const rejectedInput: RecordInput = {
      patient: demo.id("ben"),
      validator: "lab-qa",
      type: "laboratory-result",
      sensitivity: "normal",
      date: daysAgo(3),
      title: "Potassium 6.8 mmol/L",
      resource: fhir("Observation", demo.id("ben"), { valueQuantity: { value: 6.8, unit: "mmol/L" } }),
    };
    const rejectedQueued = await demo.client("laboratory").addRecord(rejectedInput);
    const rejectNote = "haemolysed specimen: the potassium is not reliable, please draw a new sample";
    await demo.client("lab-qa").rejectRecord(rejectedQueued.queueId, "OTHER", rejectNote);
    tick();
    await demo.record("laboratory", "carla", {
      type: "laboratory-result",
      sensitivity: "normal",
      date: daysAgo(8),
      title: "Ferritin 12 ug/L",
      resource: fhir("Observation", demo.id("carla"), { valueQuantity: { value: 12, unit: "ug/L" } }),
    });
    tick();
    await demo.record("imaging", "carla", {
      type: "image",
      sensitivity: "normal",
      date: daysAgo(7),
      title: "Knee X-ray",
      resource: fhir("ImagingStudy", demo.id("carla"), { status: "available", description: "Knee X-ray" }),
      attachments: [{ name: "knee-xray.png", contentType: "image/png", bytes: demoPng(48) }],
    });
    tick();

    // 8. Every key file gets a trust file pinning this node's log key and its latest checkpoint.
    const verifier = demo.client("consortium");
    await verifier.checkpoint();
    const pinned = verifier.trust;
    for (const actor of demo.actors.values()) {
      await writeFileAtomic(`${actor.keyFile}${TRUST_SUFFIX}`, formatTrustFile(url, pinned));
    }
    const passphrases = await demo.writePassphrases();
    tick();
    bar.stop();

    const summary = summarize({
      url,
      dir,
      nodeDir,
      keysDir,
      passDir,
      passphrases,
      origin: init.origin,
      logKey: init.logKey,
      witnessKey: server.witnessKey,
      demo,
      grant: { id: granted.grant, shared: granted.shared, expires },
      rejected: { queueId: rejectedQueued.queueId, note: rejectNote },
    });
    if (json) ctx.io.out(JSON.stringify({ ok: true, event: "ready", ...summary }, bigintsAsStrings));
    else for (const line of printout(summary)) ctx.io.out(line);

    const signal = await untilSignal();
    await shutdown();
    if (json) ctx.io.err(`STOPPED (${signal})`);
    else ctx.io.out("STOPPED");
  } catch (err) {
    bar.stop();
    await shutdown().catch(() => undefined);
    throw err;
  }
}

function summarize(input: {
  url: string;
  dir: string;
  nodeDir: string;
  keysDir: string;
  passDir: string;
  passphrases: string;
  origin: string;
  logKey: string;
  witnessKey: string;
  demo: DemoBuilder;
  grant: { id: string; shared: number; expires: string };
  rejected: { queueId: string; note: string };
}): DemoSummary {
  const { demo, url } = input;
  const files = (name: string): { keyFile: string; passphraseFile: string } => {
    const a = demo.actors.get(name)!;
    return { keyFile: a.keyFile, passphraseFile: a.passphraseFile };
  };
  const ana = demo.actors.get("ana")!;
  const imaging = demo.actors.get("imaging")!;
  const as = (a: DemoActor): string[] => [
    "--as",
    a.keyFile,
    "--passphrase-file",
    a.passphraseFile,
    "--node",
    url,
  ];
  const commands = [
    {
      title:
        "Ana reads her whole history, verified and decrypted on your machine (the psychotherapy note shows as withheld):",
      argv: ["history", ...as(ana)],
    },
    {
      title:
        "The imaging centre reads Ana's history under her grant: laboratory results and its own image open, nothing else:",
      argv: ["history", "--patient", ana.identity.id, ...as(imaging)],
    },
    {
      title:
        "Ana sees who obtained which of her records, when and under which grant (run the previous command first):",
      argv: ["access-log", ...as(ana)],
    },
  ].map((c) => ({ ...c, shell: ["npx", "medledger", ...c.argv].map(shellWord).join(" ") }));
  const orgs = [
    { id: "hospital", roles: ["author"] },
    ...DEMO_ORGS.map((o) => ({ id: o.id, roles: o.roles })),
  ];
  return {
    url,
    dir: input.dir,
    nodeDir: input.nodeDir,
    keysDir: input.keysDir,
    passphrases: input.passphrases,
    passphrasesDir: input.passDir,
    origin: input.origin,
    logKey: input.logKey,
    witnessKey: input.witnessKey,
    kdf: {
      ...DEMO_KDF,
      note: "demo key files use scrypt N = 2^14 instead of 2^17 so the demo starts in seconds; never use them for real data",
    },
    orgs: orgs.map((o) => ({ ...o, ...files(o.id) })),
    consortium: files("consortium"),
    patients: (["ana", "ben", "carla"] as const).map((name) => ({
      name,
      id: demo.id(name),
      ...files(name),
      records: demo.records.filter((r) => r.patient === demo.id(name)).length,
    })),
    records: demo.records,
    grant: {
      id: input.grant.id,
      patient: ana.identity.id,
      grantee: "imaging",
      categories: ["laboratory-result"],
      expires: input.grant.expires,
      shared: input.grant.shared,
    },
    rejected: {
      queueId: input.rejected.queueId,
      patient: demo.id("ben"),
      author: "laboratory",
      validator: "lab-qa",
      reason: "OTHER",
      note: input.rejected.note,
    },
    commands,
  };
}

function printout(s: DemoSummary): string[] {
  const ana = s.patients.find((p) => p.name === "ana")!;
  return [
    `medledger demo: a node with a small region is running at ${s.url}`,
    "",
    `  folder:       ${s.dir}`,
    `  node data:    ${s.nodeDir} (ledger.db, queue.db, the log and witness keys)`,
    `  key files:    ${s.keysDir} (orgs, patients and the consortium; each with a .trust.json pinning this node's log key)`,
    `  passphrases:  ${s.passphrases} (mode 0600), and one file per key in ${s.passphrasesDir}`,
    `  log:          ${s.origin}, key ${s.logKey}`,
    "  note:         demo key files use a cheaper scrypt cost (N = 2^14 instead of 2^17) so the demo starts in",
    "                seconds; their passphrases sit next to them: never use them for real data.",
    "",
    "  orgs:         hospital, laboratory, imaging (authors), validated by hospital-qa, lab-qa, imaging-qa",
    `  patients:     ${s.patients.map((p) => `${p.name} ${p.id} (${p.records} records)`).join(", ")}`,
    "  records:      a consultation, lab results, a chest X-ray with its image, a prescription and its amendment,",
    "                an operation, a clinical note, a mental-health record (restricted), a psychotherapy note",
    "                withheld from Ana; all validated. One lab result for ben was rejected by lab-qa.",
    `  grant:        ana -> imaging, laboratory results only, until ${s.grant.expires} (${s.grant.shared} records shared)`,
    "",
    "Try (from this repository's folder):",
    ...s.commands.flatMap((c, i) => [`  ${i + 1}. ${c.title}`, `     ${c.shell}`, ""]),
    `Ana's id is ${ana.id}. Every command has --help (npx medledger --help lists them all); add --json for machines.`,
    "Ctrl-C stops the node; the folder stays.",
  ];
}

/** Add `medledger demo`. */
export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description(
      "run a demo node with a small region (hospital, laboratory, imaging centre, their validators), patients, " +
        "records of every kind, a grant and a withheld note; prints its URL, key files and commands to try",
    )
    .option("--data <dir>", "the demo folder, new or empty (default: a new temporary folder)")
    .option("--host <address>", "the address the node listens on", "127.0.0.1")
    .option(
      `--port <n>`,
      `the node's port (0: a free one; default ${DEFAULT_PORT})`,
      portOption,
      DEFAULT_PORT,
    )
    .option("--json", "print one JSON document with the same facts once ready (and keep serving)")
    .addHelpText(
      "after",
      "\nExamples:\n  $ npx medledger demo\n  $ npx medledger demo --data ./demo --port 0 --json\n",
    )
    .action(async (opts: DemoOptions) => {
      try {
        await runDemo(ctx, opts);
      } catch (err) {
        reportError(ctx, opts.json === true, err);
      }
    });
}
