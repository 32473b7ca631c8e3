/**
 * Node-local state that is not ledger (docs/api.md, "The validation queue"; C2SP tlog-witness): the
 * validation queue and the witness's record of the latest checkpoint it cosigned per origin. It lives in
 * its own SQLite file, DIR/queue.db (in memory without a data folder), apart from the ledger store: a
 * queue item is not replicated, and a rejected one never reaches the ledger. Durable like the ledger
 * (WAL, synchronous = FULL), so a queue item and a cosigned size survive a crash or restart.
 */
import { chmodSync } from "node:fs";
import Database from "better-sqlite3";
import { LedgerError } from "../core/errors.ts";
import { NODE_LOCAL_STATE_FILE } from "../node/config.ts";

/** The file name of the local state in a data folder. */
export const LOCAL_STORE_FILE = NODE_LOCAL_STATE_FILE;

/** "medl" + 1 in ASCII: marks the file as ours (SQLite's application_id). */
const APPLICATION_ID = 0x6d656432;
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue (
  n INTEGER PRIMARY KEY,
  queue_id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('pending', 'attested', 'rejected')),
  author TEXT NOT NULL,
  validator TEXT NOT NULL,
  patient TEXT NOT NULL,
  kind TEXT NOT NULL,
  entry BLOB NOT NULL,
  submitted_at INTEGER NOT NULL,
  reason TEXT,
  note TEXT,
  result TEXT,
  attested BLOB
) STRICT;
CREATE INDEX IF NOT EXISTS queue_by_validator ON queue (validator, n);
CREATE INDEX IF NOT EXISTS queue_by_author ON queue (author, n);
CREATE TABLE IF NOT EXISTS queue_blobs (
  hash TEXT NOT NULL,
  n INTEGER NOT NULL REFERENCES queue (n),
  PRIMARY KEY (hash, n)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS witness (
  origin TEXT PRIMARY KEY,
  size TEXT NOT NULL,
  root BLOB NOT NULL
) STRICT;
`;

/** The states of a queue item. */
export type QueueStatus = "pending" | "attested" | "rejected";

/** A queue item as stored. */
export interface QueueRow {
  readonly queueId: string;
  readonly status: QueueStatus;
  readonly author: string;
  readonly validator: string;
  readonly patient: string;
  readonly kind: string;
  /** The author-signed entry bytes. */
  readonly entry: Uint8Array;
  readonly submittedAt: number;
  readonly reason: string | null;
  readonly note: string | null;
  /** The ledger's verdict as JSON text, once attested and submitted. */
  readonly result: string | null;
  /** The entry with the validator's signature, written before it goes to the ledger. */
  readonly attested: Uint8Array | null;
}

/** A new queue item. */
export interface NewQueueItem {
  readonly queueId: string;
  readonly author: string;
  readonly validator: string;
  readonly patient: string;
  readonly kind: string;
  readonly entry: Uint8Array;
  readonly submittedAt: number;
  /** Every blob hash the entry references (hex). */
  readonly blobs: readonly string[];
}

/** The latest checkpoint a witness cosigned for an origin. */
export interface WitnessRecord {
  readonly size: bigint;
  readonly root: Uint8Array;
}

interface RawQueueRow {
  queue_id: string;
  status: string;
  author: string;
  validator: string;
  patient: string;
  kind: string;
  entry: Buffer;
  submitted_at: number;
  reason: string | null;
  note: string | null;
  result: string | null;
  attested: Buffer | null;
}

function toRow(raw: RawQueueRow): QueueRow {
  if (raw.status !== "pending" && raw.status !== "attested" && raw.status !== "rejected") {
    throw new LedgerError("STORE_CORRUPT", "a queue item has an unknown status");
  }
  return {
    queueId: raw.queue_id,
    status: raw.status,
    author: raw.author,
    validator: raw.validator,
    patient: raw.patient,
    kind: raw.kind,
    entry: new Uint8Array(raw.entry),
    submittedAt: raw.submitted_at,
    reason: raw.reason,
    note: raw.note,
    result: raw.result,
    attested: raw.attested === null ? null : new Uint8Array(raw.attested),
  };
}

/** The local state file: queue items and witness records. Synchronous, like the ledger store. */
export class LocalStore {
  readonly #db: Database.Database;

  /** Open (creating) the local state at a path, or in memory when `path` is null. */
  constructor(path: string | null) {
    let db: Database.Database;
    try {
      db = new Database(path ?? ":memory:");
    } catch (cause) {
      throw new LedgerError("INVALID_ARGUMENT", "cannot open the node's local state file", { cause });
    }
    this.#db = db;
    try {
      if (path !== null) chmodSync(path, 0o600);
      const appId = db.pragma("application_id", { simple: true }) as number;
      const version = db.pragma("user_version", { simple: true }) as number;
      if ((appId !== 0 && appId !== APPLICATION_ID) || version > SCHEMA_VERSION) {
        throw new LedgerError(
          "STORE_CORRUPT",
          "the local state file is not a medledger queue of this version",
        );
      }
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      db.pragma("trusted_schema = OFF");
      db.exec(SCHEMA);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (err) {
      db.close();
      if (err instanceof LedgerError) throw err;
      throw new LedgerError("STORE_CORRUPT", "the node's local state file cannot be used", { cause: err });
    }
  }

  /** Add a queue item and its blob references in one transaction; false when the id is queued already. */
  addQueueItem(item: NewQueueItem): boolean {
    const db = this.#db;
    return db.transaction(() => {
      const existing = db.prepare("SELECT 1 FROM queue WHERE queue_id = ?").get(item.queueId);
      if (existing !== undefined) return false;
      const info = db
        .prepare(
          `INSERT INTO queue (queue_id, status, author, validator, patient, kind, entry, submitted_at)
           VALUES (?, 'pending', ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          item.queueId,
          item.author,
          item.validator,
          item.patient,
          item.kind,
          Buffer.from(item.entry),
          item.submittedAt,
        );
      const insertBlob = db.prepare("INSERT OR IGNORE INTO queue_blobs (hash, n) VALUES (?, ?)");
      for (const hash of item.blobs) insertBlob.run(hash, info.lastInsertRowid);
      return true;
    })();
  }

  /** A queue item by id. */
  queueItem(queueId: string): QueueRow | undefined {
    const raw = this.#db.prepare("SELECT * FROM queue WHERE queue_id = ?").get(queueId) as
      RawQueueRow | undefined;
    return raw === undefined ? undefined : toRow(raw);
  }

  /**
   * Items naming `org` in a role, optionally of one status, after the item `after` (in queue order), at
   * most `limit`. An unknown `after` is NOT_FOUND.
   */
  listQueue(
    role: "validator" | "author",
    org: string,
    status: QueueStatus | undefined,
    after: string | undefined,
    limit: number,
  ): QueueRow[] {
    let from = 0;
    if (after !== undefined) {
      const row = this.#db.prepare("SELECT n FROM queue WHERE queue_id = ?").get(after) as
        { n: number } | undefined;
      if (row === undefined) throw new LedgerError("NOT_FOUND", "no such queue item to page after");
      from = row.n;
    }
    const column = role === "validator" ? "validator" : "author";
    const statusClause = status === undefined ? "" : "AND status = ?";
    const args: unknown[] = [org, from];
    if (status !== undefined) args.push(status);
    args.push(limit);
    const rows = this.#db
      .prepare(`SELECT * FROM queue WHERE ${column} = ? AND n > ? ${statusClause} ORDER BY n LIMIT ?`)
      .all(...args) as RawQueueRow[];
    return rows.map(toRow);
  }

  /** Record the attested bytes of a pending item before they go to the ledger (for recovery). */
  markAttesting(queueId: string, attested: Uint8Array): void {
    const info = this.#db
      .prepare("UPDATE queue SET attested = ? WHERE queue_id = ? AND status = 'pending'")
      .run(Buffer.from(attested), queueId);
    if (info.changes !== 1) throw new LedgerError("CONFLICT", "the queue item is no longer pending");
  }

  /** Settle a pending item: attested with the ledger's verdict, or rejected with a reason (and note). */
  settle(
    queueId: string,
    status: "attested" | "rejected",
    reason: string | null,
    note: string | null,
    result: string | null,
  ): void {
    const info = this.#db
      .prepare(
        "UPDATE queue SET status = ?, reason = ?, note = ?, result = ? WHERE queue_id = ? AND status = 'pending'",
      )
      .run(status, reason, note, result, queueId);
    if (info.changes !== 1) throw new LedgerError("CONFLICT", "the queue item is no longer pending");
  }

  /** Pending items whose attested bytes were written: they may have reached the ledger before a crash. */
  attesting(): QueueRow[] {
    const rows = this.#db
      .prepare("SELECT * FROM queue WHERE status = 'pending' AND attested IS NOT NULL ORDER BY n")
      .all() as RawQueueRow[];
    return rows.map(toRow);
  }

  /** Authors and validators of pending items that reference a blob (hex hash). */
  pendingBlobReaders(hash: string): { author: string; validator: string }[] {
    return this.#db
      .prepare(
        `SELECT q.author AS author, q.validator AS validator FROM queue_blobs b JOIN queue q ON q.n = b.n
         WHERE b.hash = ? AND q.status = 'pending'`,
      )
      .all(hash) as { author: string; validator: string }[];
  }

  /** The latest checkpoint cosigned for an origin, or undefined. */
  witnessRecord(origin: string): WitnessRecord | undefined {
    const row = this.#db.prepare("SELECT size, root FROM witness WHERE origin = ?").get(origin) as
      { size: string; root: Buffer } | undefined;
    if (row === undefined) return undefined;
    if (!/^(0|[1-9][0-9]{0,19})$/.test(row.size) || row.root.length !== 32) {
      throw new LedgerError("STORE_CORRUPT", "a witness record is malformed");
    }
    return { size: BigInt(row.size), root: new Uint8Array(row.root) };
  }

  /**
   * Move an origin's record from `expected` (undefined: none yet) to a new checkpoint, atomically; false
   * when the stored record is not `expected` any more.
   */
  updateWitnessRecord(origin: string, expected: WitnessRecord | undefined, next: WitnessRecord): boolean {
    const db = this.#db;
    return db.transaction(() => {
      const current = this.witnessRecord(origin);
      if ((current === undefined) !== (expected === undefined)) return false;
      if (current !== undefined && expected !== undefined && current.size !== expected.size) return false;
      db.prepare(
        "INSERT INTO witness (origin, size, root) VALUES (?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root",
      ).run(origin, next.size.toString(), Buffer.from(next.root));
      return true;
    })();
  }

  /** Close the file. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
