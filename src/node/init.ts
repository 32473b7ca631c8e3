/**
 * `medledger node init`: create a node's data folder (docs/node.md, "The data folder") with its log key,
 * the demo genesis actors' key files, node.json and the store, then append the genesis entry as seq 0, so a
 * fresh node has a tree of size 1 and a checkpoint of size 1.
 *
 * The genesis is the smallest useful region: a consortium of one key (k = 1 of n = 1), one hospital org with
 * the role author and one validator org with the role validator. More orgs join later with org.admit.
 */
import { chmod, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LedgerError } from "../core/errors.ts";
import { toHex } from "../core/encoding/bytes.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import {
  createKeyFile,
  encodeKeyFile,
  generateKeyFileKeys,
  type KeyFileContents,
  type KeyFileOptions,
  type KeyKind,
} from "../core/crypto/keyfile.ts";
import { buildEntry, encodeEntry, signEntry } from "../core/ledger/entry.ts";
import type { OrgRole } from "../core/ledger/schema.ts";
import { generateNoteKey } from "../core/note/signed-note.ts";
import {
  LOG_KEY_FILE,
  NODE_CONFIG_FILE,
  NODE_CONFIG_FORMAT,
  NODE_CONFIG_VERSION,
  NODE_KEYS_DIR,
  NODE_LOCAL_STATE_FILE,
  NODE_LOCK_FILE,
  NODE_STORE_FILE,
  PASSPHRASES_FILE,
  formatNodeConfig,
  writeWitnessKey,
  fsCode,
  isValidOrigin,
  lockDataDir,
  type NodeConfig,
} from "./config.ts";
import { createNode } from "./node.ts";

/** The demo hospital org: role author. */
export const GENESIS_AUTHOR_ORG = "hospital";
/** The demo validator org: role validator. */
export const GENESIS_VALIDATOR_ORG = "validator";
/** The consortium's key file (k = 1 of n = 1). */
export const CONSORTIUM_KEY_FILE = "consortium-1.json";

/** The key file of a genesis org. */
export function orgKeyFile(org: string): string {
  return `org-${org}.json`;
}

/** What `node init` needs. */
export interface InitNodeInput {
  readonly dir: string;
  readonly crypto: CryptoSuite;
  /** The log origin (default: `medledger.example/node-<8 random hex digits>`). */
  readonly origin?: string;
  /** Replace the node files of a folder that is not empty. */
  readonly force?: boolean;
  /** Key-file options (tests lower the scrypt cost with allowWeakKdf). */
  readonly keyFileOptions?: KeyFileOptions;
}

/** What `node init` made. */
export interface InitNodeResult {
  readonly dir: string;
  readonly origin: string;
  readonly logKey: string;
  /** The C2SP verifier key of the node's witness (keys/witness.key). */
  readonly witnessKey: string;
  readonly size: bigint;
  readonly root: string;
  readonly genesis: string;
  readonly orgs: readonly { readonly id: string; readonly roles: readonly OrgRole[] }[];
}

/** Files and folders `node init` writes, which --force replaces. */
const NODE_FILES = [
  NODE_CONFIG_FILE,
  NODE_STORE_FILE,
  `${NODE_STORE_FILE}-wal`,
  `${NODE_STORE_FILE}-shm`,
  // The queue and the witness records belong to the log being replaced.
  NODE_LOCAL_STATE_FILE,
  `${NODE_LOCAL_STATE_FILE}-wal`,
  `${NODE_LOCAL_STATE_FILE}-shm`,
  NODE_KEYS_DIR,
];

/** A random passphrase for a demo key file: 24 hex digits (96 bits). */
function newPassphrase(crypto: CryptoSuite): string {
  return toHex(crypto.randomBytes(12));
}

async function prepareDir(dir: string, force: boolean): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOENT") {
      throw new LedgerError("INVALID_ARGUMENT", `cannot use the data folder: ${fsCode(err)}`, { cause: err });
    }
  }
  if (names.length > 0) {
    if (!force) {
      throw new LedgerError("CONFLICT", "the data folder is not empty (use --force to replace a node in it)");
    }
    // Refuse to pull a running node's files from under it, even with --force.
    if (names.includes(NODE_LOCK_FILE)) await (await lockDataDir(dir)).release();
    for (const name of NODE_FILES) await rm(join(dir, name), { recursive: true, force: true });
  }
  await mkdir(join(dir, NODE_KEYS_DIR), { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask; the folders hold keys and health data, so set it exactly.
  await chmod(dir, 0o700);
  await chmod(join(dir, NODE_KEYS_DIR), 0o700);
}

/** Create a node's data folder and append its genesis. */
export async function initNode(input: InitNodeInput): Promise<InitNodeResult> {
  const { dir, crypto } = input;
  const origin = input.origin ?? `medledger.example/node-${toHex(crypto.randomBytes(4))}`;
  if (!isValidOrigin(origin)) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      "the origin must be 1 to 255 printable ASCII characters, no space or '+'",
    );
  }
  await prepareDir(dir, input.force === true);
  const keysDir = join(dir, NODE_KEYS_DIR);
  const secret = { mode: 0o600, flag: "wx" } as const;

  // The checkpoint key: its name is the origin, as C2SP tlog-checkpoint recommends.
  const logKey = await generateNoteKey(crypto, origin);
  await writeFile(join(keysDir, LOG_KEY_FILE), `${logKey.signerKey}\n`, secret);
  // The witness key: this node cosigns checkpoints it has checked (C2SP tlog-witness), its own log's first.
  const witnessKey = await writeWitnessKey(crypto, dir, origin);

  const passphrases: string[] = [];
  const actor = async (file: string, kind: KeyKind, label: string): Promise<KeyFileContents> => {
    const keys = await generateKeyFileKeys(crypto, kind, label);
    const passphrase = newPassphrase(crypto);
    const keyFile = await createKeyFile(
      crypto,
      {
        kind,
        label,
        signingSecretKey: keys.signing.secretKey,
        encryptionSecretKey: keys.encryption.secretKey,
      },
      passphrase,
      input.keyFileOptions,
    );
    await writeFile(join(keysDir, file), encodeKeyFile(keyFile), secret);
    passphrases.push(`${file} ${passphrase}`);
    return keys;
  };
  // Key files have no "consortium" kind yet: the consortium key is an org-kind file labelled as such.
  const consortium = await actor(CONSORTIUM_KEY_FILE, "org", "consortium-1");
  const author = await actor(orgKeyFile(GENESIS_AUTHOR_ORG), "org", GENESIS_AUTHOR_ORG);
  const validator = await actor(orgKeyFile(GENESIS_VALIDATOR_ORG), "validator", GENESIS_VALIDATOR_ORG);
  await writeFile(
    join(keysDir, PASSPHRASES_FILE),
    [
      "# Demo only: the passphrases of the key files in this folder, one per line: <file> <passphrase>.",
      "# A real deployment keeps them out of the data folder (docs/node.md, Keys).",
      ...passphrases,
      "",
    ].join("\n"),
    secret,
  );

  const config: NodeConfig = {
    format: NODE_CONFIG_FORMAT,
    version: NODE_CONFIG_VERSION,
    origin,
    store: `sqlite:${NODE_STORE_FILE}`,
    logKey: logKey.verifierKey,
  };
  await writeFile(join(dir, NODE_CONFIG_FILE), formatNodeConfig(config), { mode: 0o600, flag: "wx" });

  const orgs = [
    { id: GENESIS_AUTHOR_ORG, roles: ["author"] as OrgRole[], keys: author },
    { id: GENESIS_VALIDATOR_ORG, roles: ["validator"] as OrgRole[], keys: validator },
  ].sort((a, b) => (a.id < b.id ? -1 : 1));
  const genesis = await signEntry(
    crypto,
    buildEntry("genesis", {
      origin,
      consortium: { threshold: 1, keys: [toHex(consortium.signing.publicKey)] },
      orgs: orgs.map((o) => ({
        id: o.id,
        roles: o.roles,
        signKey: toHex(o.keys.signing.publicKey),
        encKey: toHex(o.keys.encryption.publicKey),
      })),
    }),
    "consortium",
    consortium.signing.secretKey,
  );

  const node = await createNode({ dir, crypto });
  try {
    const [result] = await node.submit([encodeEntry(genesis)]);
    if (result === undefined || !result.accepted || result.seq !== 0n) {
      throw new LedgerError(
        "INTERNAL",
        `genesis was not accepted as seq 0: ${JSON.stringify(result, bigints)}`,
      );
    }
    return {
      dir,
      origin,
      logKey: logKey.verifierKey,
      witnessKey,
      size: node.size,
      root: toHex(node.root()),
      genesis: result.id,
      orgs: orgs.map((o) => ({ id: o.id, roles: o.roles })),
    };
  } finally {
    await node.close();
  }
}

function bigints(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
