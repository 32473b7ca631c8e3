/**
 * Auditing a node's data folder (docs/verify.md): read node.json as hostile input, decide which log key to
 * trust (the auditor's own copy when given, else node.json's), open the store it names without creating
 * anything, run the audit with a pool of signature workers, and release everything. Node-only.
 */
import { open, stat } from "node:fs/promises";
import { isAbsolute, join, normalize, sep } from "node:path";
import { z } from "zod";
import type { CryptoSuite } from "../core/crypto/suite.ts";
import { LedgerError, isLedgerError, type ErrorCode } from "../core/errors.ts";
import { parseJson } from "../core/encoding/jcs.ts";
import { parseNoteVerifierKey } from "../core/note/signed-note.ts";
import { openStore } from "../store/index.ts";
import type { LedgerStore } from "../store/types.ts";
import { auditStore, type AuditProgress, type AuditReport } from "./audit.ts";
import {
  MAX_NODE_CONFIG_BYTES,
  NODE_CONFIG_FILE,
  NODE_CONFIG_FORMAT,
  NODE_CONFIG_VERSION,
} from "./contract.ts";
import { atStore, oneLine, type AuditFailure, type CheckName } from "./failure.ts";
import { SignaturePool } from "./pool.ts";

/**
 * Below this many entries the audit runs on one thread: starting workers costs more than they save (a
 * worker running from the TypeScript sources compiles them first).
 */
export const POOL_MIN_ENTRIES = 2000;

/** What to audit. */
export interface VerifyNodeOptions {
  /** The node's data folder. */
  readonly dir: string;
  /** The auditor's own copy of the log's verifier key; default: node.json's. */
  readonly logKey?: string;
  readonly crypto: CryptoSuite;
  /** Signature worker threads; 0 verifies everything on the calling thread. */
  readonly threads: number;
  readonly onProgress?: (progress: AuditProgress) => void;
}

const NodeConfigSchema = z.strictObject({
  format: z.literal(NODE_CONFIG_FORMAT),
  version: z.literal(NODE_CONFIG_VERSION),
  origin: z.string().min(1).max(255),
  store: z
    .string()
    .startsWith("sqlite:")
    .max(1024 + "sqlite:".length),
  logKey: z.string().min(1).max(1024),
});

/** A report for an audit that stopped before reading the store. */
function stoppedReport(failure: AuditFailure): AuditReport {
  return {
    ok: false,
    entries: 0,
    accepted: 0,
    rejected: 0,
    checkpoints: 0,
    blobs: 0,
    patients: 0,
    size: 0,
    root: "",
    indexRoot: "",
    failure,
    live: false,
    threads: 0,
    signatures: { prechecked: 0, inline: 0 },
    timings: { entriesMs: 0, indexMs: 0, patientsMs: 0, blobsMs: 0, totalMs: 0 },
  };
}

function nodeFault(where: string, code: ErrorCode, check: CheckName, message: string): AuditReport {
  return stoppedReport({ ...atStore(where, "node"), code, check, message: oneLine(message) });
}

/**
 * Read node.json, at most MAX_NODE_CONFIG_BYTES. A folder without one is not a node folder: that is a
 * usage error (INVALID_ARGUMENT), unlike a node.json that is there but wrong (an audit failure).
 */
async function readConfigBytes(dir: string): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(join(dir, NODE_CONFIG_FILE), "r");
  } catch (cause) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      `${JSON.stringify(dir)} is not a node data folder: no readable ${NODE_CONFIG_FILE}`,
      {
        cause,
      },
    );
  }
  try {
    const info = await handle.stat();
    if (!info.isFile())
      throw new LedgerError("INVALID_ARGUMENT", `${NODE_CONFIG_FILE} is not a regular file`);
    const buffer = new Uint8Array(MAX_NODE_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_NODE_CONFIG_BYTES) break;
    }
    return buffer.slice(0, length);
  } finally {
    await handle.close();
  }
}

/** The store file a node.json `store` value names: a relative path inside the folder, nothing else. */
function storePath(dir: string, store: string): string | undefined {
  const path = store.slice("sqlite:".length);
  if (path.length === 0 || path.includes("\0") || isAbsolute(path)) return undefined;
  const normal = normalize(path);
  if (normal === ".." || normal.startsWith(`..${sep}`) || normal.split(sep).includes("..")) return undefined;
  return join(dir, normal);
}

/** The store's entry count, or 0 when it cannot be read (the audit then reports why, at its place). */
function entryCountOrZero(store: LedgerStore): bigint {
  try {
    return store.entryCount();
  } catch {
    return 0n;
  }
}

/**
 * Audit a node's data folder. Throws LedgerError INVALID_ARGUMENT only when `dir` is not a node folder or
 * the given log key is unusable (usage errors); every fault in the folder's content is in the report.
 */
export async function verifyNodeFolder(options: VerifyNodeOptions): Promise<AuditReport> {
  const { dir, crypto } = options;
  if (options.logKey !== undefined) {
    try {
      parseNoteVerifierKey(crypto, options.logKey);
    } catch (cause) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        `--log-key: ${cause instanceof Error ? cause.message : "invalid key"}`,
        { cause },
      );
    }
  }
  const bytes = await readConfigBytes(dir);
  if (bytes.length > MAX_NODE_CONFIG_BYTES) {
    return nodeFault(
      NODE_CONFIG_FILE,
      "TOO_LARGE",
      "node-config",
      `${NODE_CONFIG_FILE} is over ${MAX_NODE_CONFIG_BYTES} bytes`,
    );
  }
  let value: unknown;
  try {
    value = parseJson(bytes, { maxDepth: 4, maxBytes: MAX_NODE_CONFIG_BYTES });
  } catch (err) {
    return nodeFault(
      NODE_CONFIG_FILE,
      "MALFORMED_INPUT",
      "node-config",
      `${NODE_CONFIG_FILE} is not valid JSON: ${isLedgerError(err) ? err.message : "parse error"}`,
    );
  }
  const parsed = NodeConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const member = issue?.path.map(String).join(".") || "document";
    return nodeFault(
      NODE_CONFIG_FILE,
      "MALFORMED_INPUT",
      "node-config",
      `${NODE_CONFIG_FILE} ${member}: ${issue?.message ?? "invalid"}`,
    );
  }
  const config = parsed.data;
  // The auditor's own key wins; node.json must then name the same key, or the folder is not that log's.
  if (options.logKey !== undefined && config.logKey !== options.logKey) {
    return nodeFault(
      `${NODE_CONFIG_FILE} logKey`,
      "KEY_INVALID",
      "log-key",
      `${NODE_CONFIG_FILE} names another log key than the one given`,
    );
  }
  const logKey = options.logKey ?? config.logKey;
  try {
    parseNoteVerifierKey(crypto, logKey);
  } catch (err) {
    return nodeFault(
      `${NODE_CONFIG_FILE} logKey`,
      "KEY_INVALID",
      "log-key",
      `not a log verifier key: ${isLedgerError(err) ? err.message : "invalid"}`,
    );
  }
  const path = storePath(dir, config.store);
  if (path === undefined) {
    return nodeFault(
      `${NODE_CONFIG_FILE} store`,
      "MALFORMED_INPUT",
      "node-config",
      "the store must be sqlite: and a path inside the data folder",
    );
  }
  // openStore creates a missing file; an audit must not, so the file must already be there.
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile()) {
    return nodeFault(
      `${NODE_CONFIG_FILE} store`,
      "STORE_CORRUPT",
      "node-config",
      "the store file node.json names does not exist",
    );
  }
  let store: LedgerStore;
  try {
    store = await openStore(`sqlite:${path}`);
  } catch (err) {
    return nodeFault(
      "store",
      isLedgerError(err) ? err.code : "STORE_CORRUPT",
      "store-read",
      `the store cannot be opened: ${err instanceof Error ? err.message : "error"}`,
    );
  }
  let pool: SignaturePool | undefined;
  try {
    if (options.threads > 0 && entryCountOrZero(store) >= BigInt(POOL_MIN_ENTRIES)) {
      try {
        pool = SignaturePool.start(options.threads, logKey);
      } catch {
        // No worker threads here: the audit verifies every signature inline, only slower.
      }
    }
    return await auditStore({
      store,
      crypto,
      origin: config.origin,
      logKey,
      ...(pool === undefined ? {} : { precheck: pool }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });
  } finally {
    await pool?.close();
    try {
      store.close();
    } catch {
      // Closing folds the WAL back; a store that cannot do that was reported on already, or is read-only.
    }
  }
}
