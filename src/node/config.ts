/**
 * A node's data folder (docs/node.md, "The data folder"): `node.json` (the configuration), `ledger.db` (the
 * SQLite store), `keys/` (the log key and the demo actors' key files) and `node.lock` while it runs. This
 * module reads and writes those files; every byte read is bounded and checked, since a data folder can be
 * copied from anywhere.
 */
import { open, readFile, unlink, writeFile } from "node:fs/promises";
import { isAbsolute, join, normalize, sep } from "node:path";
import { z } from "zod";
import { LedgerError } from "../core/errors.ts";
import { parseJson } from "../core/encoding/jcs.ts";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { generateCosignatureKey, parseCosignatureSignerKey, type Clock } from "../core/note/cosignature.ts";
import { parseNoteSignerKey, parseNoteVerifierKey, type NoteSigner } from "../core/note/signed-note.ts";

/** The "format" member of node.json. */
export const NODE_CONFIG_FORMAT = "medledger-node";
/** The node.json version this code reads and writes. */
export const NODE_CONFIG_VERSION = 1;
/** The configuration file in a data folder. */
export const NODE_CONFIG_FILE = "node.json";
/** The store file of a new node, relative to the data folder. */
export const NODE_STORE_FILE = "ledger.db";
/** The node-local state of the HTTP API (validation queue, witness records; src/server/local-store.ts). */
export const NODE_LOCAL_STATE_FILE = "queue.db";
/** The keys folder (mode 0700). */
export const NODE_KEYS_DIR = "keys";
/** The checkpoint signer key file in the keys folder (mode 0600, unencrypted: docs/node.md, "Keys"). */
export const LOG_KEY_FILE = "log.key";
/** The witness key file in the keys folder: cosigns checkpoints (C2SP tlog-cosignature), mode 0600, unencrypted. */
export const WITNESS_KEY_FILE = "witness.key";
/** The demo passphrases of the actor key files (mode 0600). */
export const PASSPHRASES_FILE = "PASSPHRASES.txt";
/** The lock file that keeps two processes from sequencing one store. */
export const NODE_LOCK_FILE = "node.lock";
/** Store meta key of the log origin. */
export const META_ORIGIN = "origin";
/** Store meta key of the log's verifier key (the same string as node.json `logKey`). */
export const META_LOG_VKEY = "log_vkey";

/** Bound on node.json, the log key and the passphrases file. */
const MAX_CONFIG_BYTES = 64 * 1024;

/** C2SP tlog-checkpoint origin as genesis takes it: printable ASCII without space or "+", 1..255 chars. */
const ORIGIN_PATTERN = /^[\x21-\x2a\x2c-\x7e]{1,255}$/;
/** A store file relative to the data folder: "sqlite:" and a relative path with no ".." segment. */
const STORE_PATTERN = /^sqlite:[^\0]{1,1024}$/;

const NodeConfigSchema = z.strictObject({
  format: z.literal(NODE_CONFIG_FORMAT),
  version: z.literal(NODE_CONFIG_VERSION),
  origin: z.string().regex(ORIGIN_PATTERN, "must be a log origin: printable ASCII, no space, no '+'"),
  store: z.string().regex(STORE_PATTERN, 'must be "sqlite:" and a path relative to the data folder'),
  logKey: z.string().min(1).max(1024),
});

/** The contents of node.json. */
export type NodeConfig = z.infer<typeof NodeConfigSchema>;

/** True when a string is a valid log origin. */
export function isValidOrigin(origin: string): boolean {
  return typeof origin === "string" && ORIGIN_PATTERN.test(origin);
}

/** Check a node configuration (from node.json or a caller): every field, and the log key's syntax. */
export function checkNodeConfig(crypto: CryptoSuite, value: unknown): NodeConfig {
  const parsed = NodeConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? "" : `${issue.path.map(String).join(".") || "node.json"}: `;
    throw new LedgerError("MALFORMED_INPUT", `invalid node configuration: ${where}${issue?.message ?? ""}`);
  }
  storeFilePath("", parsed.data.store);
  parseNoteVerifierKey(crypto, parsed.data.logKey);
  return parsed.data;
}

/** The file path a node.json `store` value names, inside `dir`; refuses absolute paths and "..". */
export function storeFilePath(dir: string, store: string): string {
  const path = store.slice("sqlite:".length);
  const normal = normalize(path);
  if (
    isAbsolute(path) ||
    normal === ".." ||
    normal.startsWith(`..${sep}`) ||
    normal.includes(`${sep}..${sep}`)
  ) {
    throw new LedgerError("MALFORMED_INPUT", "node.json store must be a path inside the data folder");
  }
  return join(dir, normal);
}

/** Read a small file whole, at most MAX_CONFIG_BYTES; a missing file is INVALID_ARGUMENT. */
export async function readSmallFile(path: string, what: string): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (cause) {
    throw new LedgerError("INVALID_ARGUMENT", `cannot read ${what}: ${fsCode(cause)}`, { cause });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new LedgerError("INVALID_ARGUMENT", `${what} is not a regular file`);
    if (stat.size > MAX_CONFIG_BYTES)
      throw new LedgerError("TOO_LARGE", `${what} is over ${MAX_CONFIG_BYTES} bytes`);
    const buffer = new Uint8Array(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_BYTES)
        throw new LedgerError("TOO_LARGE", `${what} is over ${MAX_CONFIG_BYTES} bytes`);
    }
    return buffer.slice(0, length);
  } finally {
    await handle.close();
  }
}

/** Read and check `DIR/node.json`. */
export async function readNodeConfig(crypto: CryptoSuite, dir: string): Promise<NodeConfig> {
  const bytes = await readSmallFile(join(dir, NODE_CONFIG_FILE), NODE_CONFIG_FILE);
  let value: unknown;
  try {
    value = parseJson(bytes, { maxDepth: 4, maxBytes: MAX_CONFIG_BYTES });
  } catch (cause) {
    throw new LedgerError("MALFORMED_INPUT", `${NODE_CONFIG_FILE} is not valid JSON`, { cause });
  }
  return checkNodeConfig(crypto, value);
}

/** The JSON text of node.json (members in contract order, two-space indented, final newline). */
export function formatNodeConfig(config: NodeConfig): string {
  const { format, version, origin, store, logKey } = config;
  return `${JSON.stringify({ format, version, origin, store, logKey }, null, 2)}\n`;
}

/** Read `DIR/keys/log.key` and check it is the signer of the configured verifier key. */
export async function readLogSigner(
  crypto: CryptoSuite,
  dir: string,
  config: NodeConfig,
): Promise<NoteSigner> {
  const bytes = await readSmallFile(
    join(dir, NODE_KEYS_DIR, LOG_KEY_FILE),
    `${NODE_KEYS_DIR}/${LOG_KEY_FILE}`,
  );
  const signer = await parseNoteSignerKey(
    crypto,
    new TextDecoder("utf-8", { fatal: true }).decode(bytes).trim(),
  );
  if (signer.verifier.verifierKey !== config.logKey) {
    throw new LedgerError("KEY_INVALID", `${NODE_KEYS_DIR}/${LOG_KEY_FILE} is not the key node.json names`);
  }
  return signer;
}

/** The name of a node's witness key: its log origin and "/witness" (a valid note key name, as origins are). */
export function witnessKeyName(origin: string): string {
  return `${origin}/witness`;
}

/** Create `DIR/keys/witness.key` (mode 0600) for a node of that origin; refuses to overwrite one. */
export async function writeWitnessKey(crypto: CryptoSuite, dir: string, origin: string): Promise<string> {
  const key = await generateCosignatureKey(crypto, witnessKeyName(origin));
  await writeFile(join(dir, NODE_KEYS_DIR, WITNESS_KEY_FILE), `${key.signerKey}\n`, {
    mode: 0o600,
    flag: "wx",
  });
  return key.verifierKey;
}

/**
 * Read the node's witness signer from `DIR/keys/witness.key`, creating the key first when the file is
 * missing (a data folder made before witness keys existed). Like log.key it is not encrypted, so an
 * unattended node restarts alone (docs/node.md, "Keys"). `clock` stamps each cosignature (POSIX seconds).
 */
export async function readWitnessSigner(
  crypto: CryptoSuite,
  dir: string,
  origin: string,
  clock?: Clock,
): Promise<NoteSigner> {
  const path = join(dir, NODE_KEYS_DIR, WITNESS_KEY_FILE);
  try {
    await writeWitnessKey(crypto, dir, origin);
  } catch (err) {
    // EEXIST: the key is there already, the usual case.
    if ((err as { code?: unknown }).code !== "EEXIST") {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        `cannot create ${NODE_KEYS_DIR}/${WITNESS_KEY_FILE}: ${fsCode(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  const bytes = await readSmallFile(path, `${NODE_KEYS_DIR}/${WITNESS_KEY_FILE}`);
  return parseCosignatureSignerKey(
    crypto,
    new TextDecoder("utf-8", { fatal: true }).decode(bytes).trim(),
    clock,
  );
}

/** Parse PASSPHRASES.txt: lines `<key file name> <passphrase>`; "#" starts a comment line. */
export function parsePassphrases(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const space = line.indexOf(" ");
    if (space <= 0)
      throw new LedgerError("MALFORMED_INPUT", `${PASSPHRASES_FILE}: a line is "<file> <passphrase>"`);
    out.set(line.slice(0, space), line.slice(space + 1));
  }
  return out;
}

/** Read the passphrase of a demo key file from `DIR/keys/PASSPHRASES.txt`. */
export async function readPassphrase(dir: string, file: string): Promise<string> {
  const bytes = await readSmallFile(join(dir, NODE_KEYS_DIR, PASSPHRASES_FILE), PASSPHRASES_FILE);
  const passphrase = parsePassphrases(new TextDecoder("utf-8", { fatal: true }).decode(bytes)).get(file);
  if (passphrase === undefined) {
    throw new LedgerError("INVALID_ARGUMENT", `${PASSPHRASES_FILE} has no passphrase for ${file}`);
  }
  return passphrase;
}

/** A held lock on a data folder; release() removes it. */
export interface NodeLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as { code?: unknown }).code === "EPERM";
  }
}

/**
 * Take the data folder's lock: `node.lock` created exclusively with our pid. One process sequences a store
 * at a time; a second `node start` or `node seed` on the same folder is refused (CONFLICT). A lock left by a
 * process that no longer exists (after SIGKILL) is taken over.
 */
export async function lockDataDir(dir: string): Promise<NodeLock> {
  const path = join(dir, NODE_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as { code?: unknown }).code !== "EEXIST") {
        throw new LedgerError("INVALID_ARGUMENT", `cannot lock the data folder: ${fsCode(err)}`, {
          cause: err,
        });
      }
    }
    const text = await readFile(path, "utf8").catch(() => "");
    const pid = /^[1-9][0-9]{0,9}\n?$/.test(text) ? Number(text.trim()) : NaN;
    if (Number.isSafeInteger(pid) && pid !== process.pid && alive(pid)) {
      throw new LedgerError("CONFLICT", `the node is already running (pid ${pid}); stop it first`);
    }
    if (pid === process.pid)
      throw new LedgerError("CONFLICT", "this process already runs a node on that folder");
    await unlink(path).catch(() => undefined);
  }
  throw new LedgerError("CONFLICT", "cannot take the data folder's lock");
}

/** A short name for a file-system error. */
export function fsCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOENT") return "no such file or folder";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  return typeof code === "string" ? code : "I/O error";
}
