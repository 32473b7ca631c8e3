/**
 * A real node process for workflow tests: a data folder made by initNode (with a cheap KDF for the genesis
 * actors' key files, as test/server/harness.ts does), served by `medledger node start --data DIR --port 0`
 * in a child process whose READY line gives the URL. The genesis actors' key files (consortium, hospital,
 * validator) are copied to a keys folder outside the node's, each with a passphrase file; more actors get
 * key files made with the SDK (cheap KDF too, so every command that unlocks one stays fast).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NODE_KEYS_DIR, PASSPHRASES_FILE, parsePassphrases } from "../../src/node/config.ts";
import {
  CONSORTIUM_KEY_FILE,
  GENESIS_AUTHOR_ORG,
  GENESIS_VALIDATOR_ORG,
  initNode,
  orgKeyFile,
} from "../../src/node/init.ts";
import { nodeCrypto as crypto } from "../../src/platform/node-crypto.ts";
import { createOrgKeyFile, createPatientKeyFile } from "../../src/sdk/index.ts";
import { startMedledger, type Service } from "./run.ts";

/** The cheap scrypt cost of test key files. */
export const WEAK_KDF = { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true } as const;

/** A running node process and the actors' key files. */
export interface NodeFixture {
  readonly root: string;
  /** The node's data folder. */
  readonly dataDir: string;
  /** The actors' key files and passphrase files. */
  readonly keysDir: string;
  readonly origin: string;
  readonly logKey: string;
  url: string;
  service: Service;
  /** The key file of an actor. */
  keyFile(name: string): string;
  /** The passphrase file of an actor. */
  passFile(name: string): string;
  /** The passphrase of an actor. */
  passphrase(name: string): string;
  /** `--as KEYFILE --passphrase-file FILE --node URL` of an actor. */
  as(name: string): string[];
  /** A new org key file (not admitted), cheap KDF; returns its public keys. */
  newOrg(id: string): Promise<{ signKey: string; encKey: string }>;
  /** A new patient key file (not enrolled), cheap KDF; returns the patient id. */
  newPatient(name: string): Promise<string>;
  /** Stop the node process and start it again on the same folder. */
  restart(): Promise<void>;
  /** Stop the node; remove the folder. */
  close(): Promise<void>;
}

/** Start a node process on a fresh folder. `actorKeysInNode: false` moves the genesis key files out of it. */
export async function startNodeFixture(
  options: { readonly actorKeysInNode?: boolean } = {},
): Promise<NodeFixture> {
  const root = mkdtempSync(join(tmpdir(), "medledger-wf-"));
  const dataDir = join(root, "node");
  const keysDir = join(root, "keys");
  const init = await initNode({
    dir: dataDir,
    crypto,
    origin: `wf-${Date.now()}.medledger.example/log`,
    keyFileOptions: WEAK_KDF,
  });
  mkdirSync(keysDir, { mode: 0o700 });
  const nodeKeys = join(dataDir, NODE_KEYS_DIR);
  const passphrases = parsePassphrases(readFileSync(join(nodeKeys, PASSPHRASES_FILE), "utf8"));
  const stored = new Map<string, string>();
  const keep = (name: string, passphrase: string): void => {
    stored.set(name, passphrase);
    writeFileSync(join(keysDir, `${name}.pass`), `${passphrase}\n`, { mode: 0o600 });
  };
  for (const [name, file] of [
    ["consortium", CONSORTIUM_KEY_FILE],
    [GENESIS_AUTHOR_ORG, orgKeyFile(GENESIS_AUTHOR_ORG)],
    [GENESIS_VALIDATOR_ORG, orgKeyFile(GENESIS_VALIDATOR_ORG)],
  ] as const) {
    copyFileSync(join(nodeKeys, file), join(keysDir, `${name}.json`));
    keep(name, passphrases.get(file)!);
    if (options.actorKeysInNode === false) rmSync(join(nodeKeys, file));
  }
  if (options.actorKeysInNode === false) rmSync(join(nodeKeys, PASSPHRASES_FILE));
  const start = async (): Promise<{ service: Service; url: string }> => {
    const service = await startMedledger(
      ["node", "start", "--data", dataDir, "--port", "0"],
      /^READY medledger node /,
    );
    const url = /url (\S+)$/.exec(service.line)![1]!;
    return { service, url };
  };
  let running = await start();
  const fixture: NodeFixture = {
    root,
    dataDir,
    keysDir,
    origin: init.origin,
    logKey: init.logKey,
    url: running.url,
    service: running.service,
    keyFile: (name) => join(keysDir, `${name}.json`),
    passFile: (name) => join(keysDir, `${name}.pass`),
    passphrase: (name) => stored.get(name)!,
    as: (name) => [
      "--as",
      fixture.keyFile(name),
      "--passphrase-file",
      fixture.passFile(name),
      "--node",
      fixture.url,
    ],
    async newOrg(id) {
      const passphrase = `pass-${id}-${Math.random().toString(16).slice(2)}`;
      const created = await createOrgKeyFile(crypto, { orgId: id, passphrase, ...WEAK_KDF });
      writeFileSync(fixture.keyFile(id), created.file, { mode: 0o600 });
      keep(id, passphrase);
      return { signKey: created.signKey, encKey: created.encKey };
    },
    async newPatient(name) {
      const passphrase = `pass-${name}-${Math.random().toString(16).slice(2)}`;
      const created = await createPatientKeyFile(crypto, { passphrase, ...WEAK_KDF });
      writeFileSync(fixture.keyFile(name), created.file, { mode: 0o600 });
      keep(name, passphrase);
      return created.patientId;
    },
    async restart() {
      await fixture.service.stop();
      running = await start();
      fixture.service = running.service;
      fixture.url = running.url;
    },
    async close() {
      await fixture.service.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** Today minus `days`, UTC, YYYY-MM-DD. */
export function daysAgo(days: number): string {
  return new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
}
