/**
 * The SQLite store (better-sqlite3): one database file per node, the embedded default. docs/store.md gives
 * the schema and the reasons for each setting; in short:
 *
 * - WAL journal with `synchronous = FULL`: a commit returns only after the WAL is fsynced, so an entry is
 *   acknowledged only once it survives a crash or a power cut, and readers never block the writer.
 * - STRICT tables with CHECK constraints, BLOB keys for hashes, integers for sequence numbers, positions and
 *   node indices (read back as bigint, never as a double).
 * - Compact: entry bytes are stored encoded (src/store/entry-codec.ts: about 43% of their size, with a CRC);
 *   a value derivable from stored bytes (an entry id, a patient-index node hash) is stored only as a 6-byte
 *   prefix for lookups and recomputed and checked on read; patient keys are numbered once.
 * - Blobs in their own table, so a blob and the entry that names it commit in one transaction, and an
 *   erased blob is overwritten in place (`secure_delete`).
 * - Every row read back is shape-checked: a file changed underneath us gives STORE_CORRUPT, not a crash
 *   three calls later. Full audits (hashes, roots) are `medledger verify`'s job.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { LedgerError } from "../core/errors.ts";
import { bytesEqual, toHex } from "../core/encoding/bytes.ts";
import { leafHash } from "../core/merkle/hash.ts";
import type { MerkleNodeStore } from "../core/merkle/tree.ts";
import type { IndexBatch, PatientIndexStore } from "../core/patient-index/store.ts";
import { MAP_LEAF_PREFIX } from "../core/patient-index/hashing.ts";
import { LEAF_BODY_SIZE, NODE_BODY_SIZE } from "../core/patient-index/store.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import {
  checkBlob,
  checkCheckpoint,
  checkHash,
  checkIndexBatch,
  checkLimit,
  checkMetaKey,
  checkMetaValue,
  checkNewEntry,
  checkStoreInteger,
  checkSubmissions,
  checkSynchronousResult,
} from "./checks.ts";
import {
  EMPTY_DICTIONARY,
  decodeEntryBytes,
  encodeEntryBytes,
  entryDictionary,
  type EntryDictionary,
} from "./entry-codec.ts";
import { HASH_BYTES, MAX_READ_BYTES, MAX_STORE_INTEGER, SCHEMA_VERSION } from "./types.ts";
import type { ChainHead, EntryRow, LedgerStore, NewEntry, StoredCheckpoint, Submission } from "./types.ts";

/** PRAGMA application_id of a medledger store: "MLDG" in ASCII, so a foreign SQLite file is refused. */
export const SQLITE_APPLICATION_ID = 0x4d4c4447;

/** SHA-256 as the Merkle hashing takes it (a function, not a method). */
const sha256 = (data: Uint8Array): Uint8Array => nodeCrypto.sha256(data);

/** Highest Merkle node level: a tree of at most 2^64 - 1 leaves (as in src/core/merkle/tree.ts). */
const MAX_MERKLE_LEVEL = 63;

/** PRAGMA synchronous values by number (SQLite documentation, "PRAGMA synchronous"). */
const SYNCHRONOUS_NAMES: readonly string[] = ["OFF", "NORMAL", "FULL", "EXTRA"];

/** How long a write waits for another connection's lock before failing with CONFLICT. */
const BUSY_TIMEOUT_MS = 5000;

/** One schema change: applied once, in order, in one transaction with its row in `migrations`. */
interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** How many recently appended submissions a connection keeps the hashes of (about 100 bytes each). */
const RECENT_HASHES = 16_384;

/** Bytes of a hash kept as its lookup prefix (an entry id, a patient-index node hash). */
const PREFIX_BYTES = 6;

/**
 * The schema, as migrations. A later change appends a migration and never edits an applied one (a node
 * upgraded in place replays only what it lacks). Version 1 (entry bytes as they are, full ids, patient
 * keys in every row) is not upgraded in place: see openSqliteStore and docs/store.md.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 2,
    name: "compact schema: encoded entry bytes, hash prefixes, numbered patients, derived leaves",
    sql: `
      CREATE TABLE meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE submissions (
        seq INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0),
        bytes BLOB NOT NULL CHECK (length(bytes) BETWEEN 6 AND 1048581)
      ) STRICT;

      CREATE TABLE patients (
        n INTEGER PRIMARY KEY NOT NULL,
        key BLOB NOT NULL UNIQUE CHECK (length(key) = 32)
      ) STRICT;

      CREATE TABLE entries (
        seq INTEGER PRIMARY KEY NOT NULL REFERENCES submissions (seq),
        position INTEGER CHECK (position >= 0),
        id_prefix INTEGER NOT NULL,
        reason TEXT CHECK (length(reason) BETWEEN 1 AND 64),
        patient INTEGER REFERENCES patients (n),
        clinical_time TEXT CHECK (length(clinical_time) BETWEEN 1 AND 32),
        CHECK ((position IS NULL) = (reason IS NOT NULL))
      ) STRICT;
      CREATE UNIQUE INDEX entries_position ON entries (position) WHERE position IS NOT NULL;
      CREATE INDEX entries_id ON entries (id_prefix);
      CREATE INDEX entries_patient ON entries (patient, position)
        WHERE position IS NOT NULL AND patient IS NOT NULL;

      CREATE TABLE merkle_nodes (
        level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE index_nodes (
        prefix INTEGER NOT NULL,
        body BLOB NOT NULL CHECK (length(body) IN (${LEAF_BODY_SIZE}, ${NODE_BODY_SIZE})),
        PRIMARY KEY (prefix, body)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE index_leaves (
        prefix INTEGER NOT NULL,
        patient INTEGER NOT NULL REFERENCES patients (n),
        head INTEGER NOT NULL REFERENCES submissions (seq),
        length INTEGER NOT NULL CHECK (length >= 1),
        PRIMARY KEY (prefix, patient, head, length)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE index_root (
        singleton INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
        root BLOB NOT NULL CHECK (length(root) = 32)
      ) STRICT;

      CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY NOT NULL CHECK (size >= 0),
        note TEXT NOT NULL CHECK (length(note) >= 1)
      ) STRICT;

      CREATE TABLE blobs (
        hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
        bytes BLOB NOT NULL
      ) STRICT;

      INSERT INTO meta (key, value) VALUES ('schema_version', '2');
    `,
  },
];

/** Sizes of the three sequences: submissions, entry rows, accepted entries (the tree). */
interface Counters {
  submissions: bigint;
  entries: bigint;
  tree: bigint;
}

/** Raw rows as better-sqlite3 returns them with safe integers on. */
interface EntrySqlRow {
  seq: unknown;
  position: unknown;
  id_prefix: unknown;
  reason: unknown;
  patient: unknown;
  patient_key: unknown;
  clinical_time: unknown;
  bytes: unknown;
}

const ENTRY_COLUMNS =
  "e.seq, e.position, e.id_prefix, e.reason, e.patient, p.key AS patient_key, e.clinical_time, s.bytes " +
  "FROM entries e JOIN submissions s ON s.seq = e.seq LEFT JOIN patients p ON p.n = e.patient";

function corrupt(what: string): never {
  throw new LedgerError("STORE_CORRUPT", `the database holds a malformed ${what}`);
}

/** A Buffer from better-sqlite3 as a plain Uint8Array view (its Buffers are exact-size, never pooled). */
function bytesOf(value: unknown, what: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array) || (length !== undefined && value.length !== length)) corrupt(what);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function integerOf(value: unknown, what: string): bigint {
  if (typeof value !== "bigint" || value < 0n) corrupt(what);
  return value;
}

/** The lookup prefix of a hash: its first PREFIX_BYTES bytes as a signed integer (stored in 6 bytes). */
function prefixOf(hash: Uint8Array): bigint {
  let value = 0n;
  for (let i = 0; i < PREFIX_BYTES; i++) value = (value << 8n) | BigInt(hash[i]!);
  return BigInt.asIntN(PREFIX_BYTES * 8, value);
}

/** Map a driver error to a LedgerError; anything else (including LedgerErrors) passes through. */
function translate(err: unknown): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  const code = err.code;
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return new LedgerError("STORE_CORRUPT", "the database file is damaged or not a database", { cause: err });
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new LedgerError("CONFLICT", "the database is locked by another writer", { cause: err });
  }
  if (code.startsWith("SQLITE_CONSTRAINT")) {
    return new LedgerError("CONFLICT", "the write conflicts with stored data", { cause: err });
  }
  if (code.startsWith("SQLITE_CANTOPEN")) {
    return new LedgerError("INVALID_ARGUMENT", "the database file cannot be opened", { cause: err });
  }
  return new LedgerError("INTERNAL", `the database failed (${code})`, { cause: err });
}

/**
 * Create a new store file owner-only before SQLite does (SQLite gives its -wal and -shm files the database
 * file's mode); an existing file keeps the mode its owner chose.
 */
function createPrivately(path: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    closeSync(openSync(path, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw new LedgerError("INVALID_ARGUMENT", "the store file cannot be created", { cause: err });
  }
}

/** Open (creating when absent) the SQLite store at `path`, migrating its schema to this build's version. */
export function openSqliteStore(path: string): SqliteStore {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new LedgerError("INVALID_ARGUMENT", "a SQLite store needs a file path");
  }
  if (path === ":memory:" || path.startsWith("file:")) {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      'a SQLite store is a file; use "memory:" for a store in memory',
    );
  }
  let db: Database.Database | undefined;
  try {
    createPrivately(path);
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    configure(db);
    migrate(db);
    return new SqliteStore(db);
  } catch (err) {
    db?.close();
    throw translate(err);
  }
}

/** Per-connection settings; docs/store.md explains each. */
function configure(db: Database.Database): void {
  // Every integer comes back as a bigint: sequence numbers, positions and node indices go past 2^53.
  db.defaultSafeIntegers(true);
  const applicationId = Number(db.pragma("application_id", { simple: true }));
  if (applicationId !== 0 && applicationId !== SQLITE_APPLICATION_ID) {
    throw new LedgerError("INVALID_ARGUMENT", "the file is a SQLite database of another application");
  }
  // The schema of a file we did not write must not run code (views or triggers calling functions).
  db.pragma("trusted_schema = OFF");
  // Check each b-tree cell's bounds as it is read: a damaged page is reported, not followed.
  db.pragma("cell_size_check = ON");
  const mode = db.pragma("journal_mode = WAL", { simple: true });
  if (mode !== "wal") throw new LedgerError("INTERNAL", `SQLite refused WAL mode (got ${String(mode)})`);
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  // Deleted content (an erased blob) is overwritten with zeros, not left in free pages.
  db.pragma("secure_delete = ON");
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    if (tables.length > 0 && !tables.includes("migrations")) {
      throw new LedgerError(
        "INVALID_ARGUMENT",
        "the file is a SQLite database that is not a medledger store",
      );
    }
    db.pragma(`application_id = ${SQLITE_APPLICATION_ID}`);
    db.exec(
      "CREATE TABLE IF NOT EXISTS migrations (" +
        "version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT",
    );
    const applied = db.prepare("SELECT max(version) FROM migrations").pluck().get() as bigint | null;
    const current = applied === null ? 0 : Number(applied);
    if (current > SCHEMA_VERSION) {
      throw new LedgerError(
        "UNSUPPORTED_VERSION",
        `the store has schema version ${current}; this build knows up to ${SCHEMA_VERSION}`,
      );
    }
    if (current !== 0 && current < MIGRATIONS[0]!.version) {
      throw new LedgerError(
        "UNSUPPORTED_VERSION",
        `the store has schema version ${current}, written by an earlier build before the compact schema ` +
          `(version ${MIGRATIONS[0]!.version}); this build does not upgrade it in place: set up the node ` +
          "again (node init) and replay its entries, or use the build that wrote it (docs/store.md)",
      );
    }
    const record = db.prepare("INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)");
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(m.version));
      record.run(BigInt(m.version), m.name, new Date().toISOString());
    }
    const version = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get();
    if (version !== String(SCHEMA_VERSION)) corrupt("schema version");
  }).immediate();
}

/** The prepared statements, compiled once per connection. */
function prepare(db: Database.Database) {
  const s = (sql: string) => db.prepare(sql);
  return {
    appendSubmission: s("INSERT INTO submissions (seq, bytes) VALUES (?, ?)"),
    submissionCount: s("SELECT coalesce(max(seq) + 1, 0) FROM submissions").pluck(),
    submissionBytes: s("SELECT bytes FROM submissions WHERE seq = ?").pluck(),
    readSubmissions: s("SELECT seq, bytes FROM submissions WHERE seq >= ? ORDER BY seq LIMIT ?").raw(),
    patientNumber: s("SELECT n FROM patients WHERE key = ?").pluck(),
    insertPatient: s("INSERT INTO patients (key) VALUES (?)"),
    insertEntry: s(
      "INSERT INTO entries (seq, position, id_prefix, reason, patient, clinical_time) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    entryCount: s("SELECT coalesce(max(seq) + 1, 0) FROM entries").pluck(),
    treeSize: s(
      "SELECT position + 1 FROM entries WHERE position IS NOT NULL ORDER BY position DESC LIMIT 1",
    ).pluck(),
    entryBySeq: s(`SELECT ${ENTRY_COLUMNS} WHERE e.seq = ?`),
    entryByPosition: s(`SELECT ${ENTRY_COLUMNS} WHERE e.position = ? AND e.position IS NOT NULL`),
    // Every row whose id shares the prefix, accepted ones first: the caller checks the whole id.
    entriesByIdPrefix: s(`SELECT ${ENTRY_COLUMNS} WHERE e.id_prefix = ? ORDER BY e.position IS NULL, e.seq`),
    acceptedByIdPrefix: s(
      "SELECT s.seq, s.bytes FROM entries e JOIN submissions s ON s.seq = e.seq " +
        "WHERE e.id_prefix = ? AND e.position IS NOT NULL",
    ).raw(),
    readEntries: s(`SELECT ${ENTRY_COLUMNS} WHERE e.seq >= ? ORDER BY e.seq LIMIT ?`),
    patientEntries: s(
      `SELECT ${ENTRY_COLUMNS} WHERE e.patient = ? AND e.position IS NOT NULL AND e.patient IS NOT NULL ` +
        "AND e.position >= ? ORDER BY e.position LIMIT ?",
    ),
    patientHead: s(
      `SELECT ${ENTRY_COLUMNS} WHERE e.patient = ? AND e.position IS NOT NULL AND e.patient IS NOT NULL ` +
        "ORDER BY e.position DESC LIMIT 1",
    ),
    acceptedBytes: s(
      "SELECT s.seq, s.bytes FROM entries e JOIN submissions s ON s.seq = e.seq " +
        "WHERE e.position = ? AND e.position IS NOT NULL",
    ).raw(),
    patientLength: s(
      "SELECT count(*) FROM entries WHERE patient = ? AND position IS NOT NULL AND patient IS NOT NULL",
    ).pluck(),
    merkleInsert: s("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
    merkleGet: s("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?").pluck(),
    indexInsert: s("INSERT INTO index_nodes (prefix, body) VALUES (?, ?) ON CONFLICT DO NOTHING"),
    indexGet: s("SELECT body FROM index_nodes WHERE prefix = ?").pluck(),
    leafInsert: s(
      "INSERT INTO index_leaves (prefix, patient, head, length) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    ),
    leafGet: s(
      "SELECT p.key, s.seq, s.bytes, l.length FROM index_leaves l JOIN patients p ON p.n = l.patient " +
        "JOIN submissions s ON s.seq = l.head WHERE l.prefix = ?",
    ).raw(),
    indexSetRoot: s(
      "INSERT INTO index_root (singleton, root) VALUES (1, ?) " +
        "ON CONFLICT (singleton) DO UPDATE SET root = excluded.root",
    ),
    indexRoot: s("SELECT root FROM index_root WHERE singleton = 1").pluck(),
    putCheckpoint: s(
      "INSERT INTO checkpoints (size, note) VALUES (?, ?) ON CONFLICT (size) DO UPDATE SET note = excluded.note",
    ),
    latestCheckpoint: s("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").raw(),
    checkpointAt: s("SELECT note FROM checkpoints WHERE size = ?").pluck(),
    putBlob: s("INSERT INTO blobs (hash, bytes) VALUES (?, ?) ON CONFLICT DO NOTHING"),
    getBlob: s("SELECT bytes FROM blobs WHERE hash = ?").pluck(),
    hasBlob: s("SELECT 1 FROM blobs WHERE hash = ?").pluck(),
    deleteBlob: s("DELETE FROM blobs WHERE hash = ?"),
    listBlobs: s("SELECT hash FROM blobs WHERE hash > ? ORDER BY hash LIMIT ?").pluck(),
    getMeta: s("SELECT value FROM meta WHERE key = ?").pluck(),
    setMeta: s(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
  };
}

/** The SQLite LedgerStore over one better-sqlite3 connection. */
export class SqliteStore implements LedgerStore {
  readonly kind = "sqlite";
  readonly merkleNodes: MerkleNodeStore;
  readonly indexNodes: PatientIndexStore;

  readonly #db: Database.Database;
  readonly #q: ReturnType<typeof prepare>;
  readonly #tx: Database.Transaction<(fn: () => unknown) => unknown>;
  /**
   * The three counters, read once per outermost transaction (under its write lock) and then kept by this
   * connection's own writes: a batch of thousands of entries does not ask SQLite for them per entry.
   * Dropped at every transaction boundary and every rollback.
   */
  #counters: Counters | undefined;
  /**
   * The values of submission 0 (the genesis) that encoded entry bytes refer to (src/store/entry-codec.ts),
   * read once; dropped at every rollback, which may have removed submission 0.
   */
  #dictionary: EntryDictionary | undefined;
  /**
   * Leaf hashes of the entries accepted in the current transaction, by position: the Merkle leaves the tree
   * puts next are compared with them without decoding the entries again. Dropped at every transaction end.
   */
  readonly #leaves = new Map<bigint, Uint8Array>();
  /** Seqs of the entries accepted in the current transaction, by id (hex): the heads index leaves name. */
  readonly #acceptedSeqs = new Map<string, bigint>();
  /**
   * The id and leaf hash of the last RECENT_HASHES submissions this connection appended, computed from the
   * bytes as given: recording their entries and rebuilding index leaves that name them then needs no
   * decoding. Dropped at every rollback.
   */
  readonly #recent = new Map<bigint, { readonly id: Uint8Array; readonly leaf: Uint8Array }>();

  /** Wrap an open, configured and migrated connection; use openSqliteStore. */
  constructor(db: Database.Database) {
    this.#db = db;
    this.#q = prepare(db);
    this.#tx = db.transaction((fn: () => unknown) => {
      const result = fn();
      checkSynchronousResult(result);
      return result;
    });
    this.merkleNodes = {
      get: (level, index) => this.#merkleGet(level, index),
      put: (level, index, hash) => this.#merklePut(level, index, hash),
    };
    this.indexNodes = {
      get: (hash) => this.#indexGet(hash),
      writeBatch: (batch) => this.#indexWrite(batch),
      currentRoot: () =>
        this.#read(() => {
          const root = this.#q.indexRoot.get();
          return root === undefined ? undefined : bytesOf(root, "index root", HASH_BYTES);
        }),
    };
  }

  appendSubmissions(batch: readonly Uint8Array[]): bigint {
    checkSubmissions(batch);
    return this.transaction(() => {
      const counters = this.#counts();
      const first = counters.submissions;
      let seq = first;
      for (const bytes of batch) {
        // Submission 0 is encoded against nothing; every later one against submission 0's values.
        const dictionary = seq === 0n ? EMPTY_DICTIONARY : this.#entryDictionary();
        this.#q.appendSubmission.run(seq, encodeEntryBytes(bytes, dictionary));
        this.#recent.set(seq++, { id: nodeCrypto.sha256(bytes), leaf: leafHash(sha256, bytes) });
        if (this.#recent.size > RECENT_HASHES) this.#recent.delete(this.#recent.keys().next().value!);
      }
      counters.submissions = seq;
      return first;
    });
  }

  readSubmissions(fromSeq: bigint, limit: number): Submission[] {
    checkStoreInteger(fromSeq, "fromSeq");
    checkLimit(limit);
    return this.#read(() => {
      const out: Submission[] = [];
      let bytes = 0;
      for (const row of this.#q.readSubmissions.iterate(fromSeq, BigInt(limit)) as Iterable<unknown[]>) {
        const seq = integerOf(row[0], "submission seq");
        const submission = { seq, bytes: this.#decode(seq, row[1]) };
        out.push(submission);
        bytes += submission.bytes.length;
        if (bytes >= MAX_READ_BYTES) break;
      }
      return out;
    });
  }

  submissionCount(): bigint {
    return this.#read(() => this.#counts().submissions);
  }

  putEntry(entry: NewEntry): void {
    checkNewEntry(entry);
    this.#write(() => {
      const counters = this.#counts();
      const next = counters.entries;
      if (entry.seq !== next) {
        throw new LedgerError("CONFLICT", `the next entry to record is seq ${next}, not ${entry.seq}`);
      }
      let hashes = this.#recent.get(entry.seq);
      if (hashes === undefined) {
        const stored = this.#q.submissionBytes.get(entry.seq);
        if (stored === undefined)
          throw new LedgerError("CONFLICT", `there is no submission with seq ${next}`);
        const bytes = this.#decode(entry.seq, stored);
        hashes = { id: nodeCrypto.sha256(bytes), leaf: leafHash(sha256, bytes) };
      }
      if (!bytesEqual(hashes.id, entry.id)) {
        throw new LedgerError("INVALID_ARGUMENT", `entry id is not the SHA-256 of submission ${next}`);
      }
      const prefix = prefixOf(entry.id);
      if (entry.status === "accepted") {
        const size = counters.tree;
        if (entry.position !== size) {
          throw new LedgerError(
            "CONFLICT",
            `an accepted entry takes position ${size}, not ${entry.position}`,
          );
        }
        // Ids are stored as prefixes: an accepted row with the same prefix is this id only if its bytes say so.
        for (const row of this.#q.acceptedByIdPrefix.iterate(prefix) as Iterable<unknown[]>) {
          const seq = integerOf(row[0], "entry seq");
          if (bytesEqual(nodeCrypto.sha256(this.#decode(seq, row[1])), entry.id)) {
            throw new LedgerError("CONFLICT", `entry ${toHex(entry.id)} is already accepted`);
          }
        }
      }
      this.#q.insertEntry.run(
        entry.seq,
        entry.position,
        prefix,
        entry.reason,
        entry.patient === null ? null : this.#patientNumber(entry.patient, true),
        entry.clinicalTime,
      );
      counters.entries++;
      if (entry.status === "accepted") {
        counters.tree++;
        if (this.#db.inTransaction) {
          this.#leaves.set(entry.position!, hashes.leaf);
          this.#acceptedSeqs.set(toHex(entry.id), entry.seq);
        }
      }
    });
  }

  entryBySeq(seq: bigint): EntryRow | undefined {
    checkStoreInteger(seq, "seq");
    return this.#read(() => this.#entry(this.#q.entryBySeq.get(seq)));
  }

  entryByPosition(position: bigint): EntryRow | undefined {
    checkStoreInteger(position, "position");
    return this.#read(() => this.#entry(this.#q.entryByPosition.get(position)));
  }

  entryById(id: Uint8Array): EntryRow | undefined {
    checkHash(id, "an entry id");
    return this.#read(() => {
      // Accepted rows come first, then rejected ones by seq: the first whose bytes hash to the id answers.
      for (const row of this.#q.entriesByIdPrefix.iterate(prefixOf(id))) {
        const entry = this.#entry(row)!;
        if (bytesEqual(entry.id, id)) return entry;
      }
      return undefined;
    });
  }

  readEntries(fromSeq: bigint, limit: number): EntryRow[] {
    checkStoreInteger(fromSeq, "fromSeq");
    checkLimit(limit);
    return this.#read(() => this.#entries(this.#q.readEntries.iterate(fromSeq, BigInt(limit))));
  }

  entryCount(): bigint {
    return this.#read(() => this.#counts().entries);
  }

  treeSize(): bigint {
    return this.#read(() => this.#counts().tree);
  }

  patientEntries(patient: Uint8Array, fromPosition: bigint, limit: number): EntryRow[] {
    checkHash(patient, "a patient key");
    checkStoreInteger(fromPosition, "fromPosition");
    checkLimit(limit);
    return this.#read(() => {
      const n = this.#patientNumber(patient, false);
      if (n === undefined) return [];
      return this.#entries(this.#q.patientEntries.iterate(n, fromPosition, BigInt(limit)));
    });
  }

  patientHead(patient: Uint8Array): ChainHead | undefined {
    checkHash(patient, "a patient key");
    return this.#read(() => {
      const n = this.#patientNumber(patient, false);
      const head = n === undefined ? undefined : this.#entry(this.#q.patientHead.get(n));
      if (head === undefined) return undefined;
      return { head: head.id, length: integerOf(this.#q.patientLength.get(n), "chain length") };
    });
  }

  putCheckpoint(size: bigint, note: string): void {
    checkCheckpoint(size, note);
    this.#write(() => {
      const treeSize = this.#counts().tree;
      if (size > treeSize) {
        throw new LedgerError("CONFLICT", `a checkpoint of size ${size} is beyond the tree size ${treeSize}`);
      }
      this.#q.putCheckpoint.run(size, note);
    });
  }

  latestCheckpoint(): StoredCheckpoint | undefined {
    return this.#read(() => {
      const row = this.#q.latestCheckpoint.get() as unknown[] | undefined;
      if (row === undefined) return undefined;
      if (typeof row[1] !== "string") corrupt("checkpoint");
      return { size: integerOf(row[0], "checkpoint size"), note: row[1] };
    });
  }

  checkpointAt(size: bigint): string | undefined {
    checkStoreInteger(size, "a checkpoint size");
    return this.#read(() => {
      const note = this.#q.checkpointAt.get(size);
      if (note !== undefined && typeof note !== "string") corrupt("checkpoint");
      return note;
    });
  }

  putBlob(bytes: Uint8Array): Uint8Array {
    checkBlob(bytes);
    const hash = nodeCrypto.sha256(bytes);
    this.#write(() => this.#q.putBlob.run(hash, bytes));
    return hash;
  }

  getBlob(hash: Uint8Array): Uint8Array | undefined {
    checkHash(hash, "a blob hash");
    return this.#read(() => {
      const bytes = this.#q.getBlob.get(hash);
      return bytes === undefined ? undefined : bytesOf(bytes, "blob");
    });
  }

  hasBlob(hash: Uint8Array): boolean {
    checkHash(hash, "a blob hash");
    return this.#read(() => this.#q.hasBlob.get(hash) !== undefined);
  }

  deleteBlob(hash: Uint8Array): boolean {
    checkHash(hash, "a blob hash");
    return this.#write(() => this.#q.deleteBlob.run(hash).changes > 0);
  }

  listBlobs(after: Uint8Array | null, limit: number): Uint8Array[] {
    const from = after === null ? new Uint8Array(0) : checkHash(after, "a blob hash");
    checkLimit(limit);
    return this.#read(() =>
      this.#q.listBlobs.all(from, BigInt(limit)).map((h) => bytesOf(h, "blob hash", HASH_BYTES)),
    );
  }

  getMeta(key: string): string | undefined {
    checkMetaKey(key, false);
    return this.#read(() => {
      const value = this.#q.getMeta.get(key);
      if (value !== undefined && typeof value !== "string") corrupt("metadata value");
      return value;
    });
  }

  setMeta(key: string, value: string): void {
    checkMetaKey(key, true);
    checkMetaValue(value);
    this.#write(() => this.#q.setMeta.run(key, value));
  }

  transaction<T>(fn: () => T): T {
    this.#open();
    if (typeof fn !== "function") throw new LedgerError("INVALID_ARGUMENT", "a transaction needs a function");
    const outermost = !this.#db.inTransaction;
    if (outermost) this.#forgetTransaction();
    try {
      // IMMEDIATE takes the write lock at BEGIN, so a transaction never fails half-way on a lock upgrade.
      // Called inside another transaction, better-sqlite3 uses a SAVEPOINT instead: the nested call joins
      // the outer one, and its throw rolls back to the savepoint only.
      return this.#tx.immediate(fn) as T;
    } catch (err) {
      // A rollback (to a savepoint, or of everything) may have removed rows these caches describe.
      this.#forgetTransaction();
      this.#dictionary = undefined;
      this.#recent.clear();
      throw translate(err);
    } finally {
      if (outermost) this.#forgetTransaction();
    }
  }

  async flush(): Promise<void> {
    // A commit returned only after SQLite fsynced the WAL (synchronous = FULL): nothing is pending.
    this.#open();
  }

  close(): void {
    if (!this.#db.open) return;
    if (this.#db.inTransaction) {
      throw new LedgerError("CONFLICT", "the store cannot close inside a transaction");
    }
    try {
      // Fold the WAL back into the database and empty it, so erased blobs do not linger in the WAL.
      this.#db.pragma("wal_checkpoint(TRUNCATE)");
    } finally {
      this.#db.close();
    }
  }

  /** The durability settings of this connection, for status reports and tests. */
  settings(): { journalMode: string; synchronous: string; foreignKeys: boolean; secureDelete: boolean } {
    return this.#read(() => ({
      journalMode: String(this.#db.pragma("journal_mode", { simple: true })),
      synchronous: SYNCHRONOUS_NAMES[Number(this.#db.pragma("synchronous", { simple: true }))] ?? "unknown",
      foreignKeys: Number(this.#db.pragma("foreign_keys", { simple: true })) === 1,
      secureDelete: Number(this.#db.pragma("secure_delete", { simple: true })) === 1,
    }));
  }

  /** Drop what is cached for one transaction: the counters and the leaf hashes of its entries. */
  #forgetTransaction(): void {
    this.#counters = undefined;
    this.#leaves.clear();
    this.#acceptedSeqs.clear();
  }

  #open(): void {
    if (!this.#db.open) throw new LedgerError("CONFLICT", "the store is closed");
  }

  /**
   * Run checks and then one write statement. Alone, that is its own transaction; inside one, it runs
   * directly: a single statement is atomic by itself, and a SAVEPOINT per entry and per Merkle node would
   * double the statements of a batch.
   */
  #write<T>(fn: () => T): T {
    return this.#db.inTransaction ? this.#read(fn) : this.transaction(fn);
  }

  /** Run a read (or a single statement), translating driver errors. */
  #read<T>(fn: () => T): T {
    this.#open();
    try {
      return fn();
    } catch (err) {
      throw translate(err);
    }
  }

  /** The counters: cached inside a transaction, read afresh outside one. */
  #counts(): Counters {
    if (this.#counters !== undefined && this.#db.inTransaction) return this.#counters;
    const size = this.#q.treeSize.get();
    const counters = {
      submissions: integerOf(this.#q.submissionCount.get(), "submission count"),
      entries: integerOf(this.#q.entryCount.get(), "entry count"),
      tree: size === undefined ? 0n : integerOf(size, "tree size"),
    };
    if (this.#db.inTransaction) this.#counters = counters;
    return counters;
  }

  /** The values of submission 0, which the encoded bytes of every later submission may refer to. */
  #entryDictionary(): EntryDictionary {
    if (this.#dictionary !== undefined) return this.#dictionary;
    const stored = this.#q.submissionBytes.get(0n);
    if (stored === undefined) corrupt("stream: submission 0, whose values later submissions use, is missing");
    let genesis: Uint8Array;
    try {
      genesis = decodeEntryBytes(bytesOf(stored, "submission"), EMPTY_DICTIONARY);
    } catch (err) {
      throw new LedgerError(
        "STORE_CORRUPT",
        `submission 0, whose values later submissions use, cannot be decoded: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.#dictionary = entryDictionary(genesis);
    return this.#dictionary;
  }

  /** The entry bytes of a stored submission; STORE_CORRUPT naming the seq when they do not decode. */
  #decode(seq: bigint, stored: unknown): Uint8Array {
    const dictionary = seq === 0n ? EMPTY_DICTIONARY : this.#entryDictionary();
    try {
      return decodeEntryBytes(bytesOf(stored, "submission"), dictionary);
    } catch (err) {
      if (err instanceof LedgerError && err.code === "STORE_CORRUPT") {
        throw new LedgerError("STORE_CORRUPT", `submission ${seq}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /** The number of a patient key: found, or (when `add`) given the next one; undefined when unknown. */
  #patientNumber(key: Uint8Array, add: true): bigint;
  #patientNumber(key: Uint8Array, add: false): bigint | undefined;
  #patientNumber(key: Uint8Array, add: boolean): bigint | undefined {
    const n = this.#q.patientNumber.get(key);
    if (n !== undefined) return integerOf(n, "patient number");
    if (!add) return undefined;
    return BigInt(this.#q.insertPatient.run(key).lastInsertRowid);
  }

  /**
   * An entry row from its SQL row: the bytes decoded, the id recomputed from them and checked against its
   * stored prefix, the patient key looked up, every field shape-checked.
   */
  #entry(raw: unknown): EntryRow | undefined {
    if (raw === undefined) return undefined;
    const row = raw as EntrySqlRow;
    const seq = integerOf(row.seq, "entry seq");
    const position = row.position === null ? null : integerOf(row.position, "entry position");
    const status = position === null ? "rejected" : "accepted";
    const reason = row.reason;
    if (!(reason === null ? status === "accepted" : typeof reason === "string" && status === "rejected")) {
      corrupt("entry reason");
    }
    const clinicalTime = row.clinical_time;
    if (clinicalTime !== null && typeof clinicalTime !== "string") corrupt("entry clinical time");
    let patient: Uint8Array | null = null;
    if (row.patient !== null) {
      integerOf(row.patient, "entry patient number");
      if (row.patient_key === null)
        corrupt(`entry patient: seq ${seq} names a patient number that is not stored`);
      patient = bytesOf(row.patient_key, "patient key", HASH_BYTES);
    }
    const bytes = this.#decode(seq, row.bytes);
    const id = nodeCrypto.sha256(bytes);
    if (row.id_prefix !== prefixOf(id)) {
      throw new LedgerError(
        "STORE_CORRUPT",
        `entry ${seq}: the stored id prefix does not match the SHA-256 of its bytes`,
      );
    }
    return { seq, position, id, status, reason: reason as string | null, patient, clinicalTime, bytes };
  }

  #entries(rows: Iterable<unknown>): EntryRow[] {
    const out: EntryRow[] = [];
    let bytes = 0;
    for (const row of rows) {
      const entry = this.#entry(row)!;
      out.push(entry);
      bytes += entry.bytes.length;
      if (bytes >= MAX_READ_BYTES) break;
    }
    return out;
  }

  #merkleGet(level: number, index: bigint): Uint8Array | undefined {
    if (!Number.isInteger(level) || level < 0 || level > MAX_MERKLE_LEVEL) return undefined;
    if (typeof index !== "bigint" || index < 0n || index > MAX_STORE_INTEGER) return undefined;
    return this.#read(() => {
      const hash = this.#q.merkleGet.get(BigInt(level), index);
      if (hash !== undefined) return bytesOf(hash, "Merkle node", HASH_BYTES);
      return level === 0 ? this.#leafHash(index) : undefined;
    });
  }

  /**
   * The RFC 9162 leaf hash of the accepted entry at `position` (undefined when there is none): level-0
   * nodes are not stored, since the store holds the entries they hash (docs/store.md).
   */
  #leafHash(position: bigint): Uint8Array | undefined {
    const known = this.#leaves.get(position);
    if (known !== undefined) return known.slice();
    const row = this.#q.acceptedBytes.get(position) as unknown[] | undefined;
    if (row === undefined) return undefined;
    return leafHash(sha256, this.#decode(integerOf(row[0], "entry seq"), row[1]));
  }

  #merklePut(level: number, index: bigint, hash: Uint8Array): void {
    if (!Number.isInteger(level) || level < 0 || level > MAX_MERKLE_LEVEL) {
      throw new LedgerError("INVALID_ARGUMENT", `node level must be an integer in 0..${MAX_MERKLE_LEVEL}`);
    }
    if (typeof index !== "bigint" || index < 0n || index > MAX_STORE_INTEGER) {
      throw new LedgerError("INVALID_ARGUMENT", "node index must be a bigint in 0..2^63-1");
    }
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
      throw new LedgerError("MALFORMED_INPUT", `a node hash must be ${HASH_BYTES} bytes`);
    }
    this.#write(() => {
      // A leaf of an accepted entry is that entry's leaf hash already: nothing to store, only to compare.
      const leaf =
        level === 0 && this.#q.merkleGet.get(0n, index) === undefined ? this.#leafHash(index) : undefined;
      if (leaf === undefined && this.#q.merkleInsert.run(BigInt(level), index, hash).changes > 0) return;
      const stored = leaf ?? bytesOf(this.#q.merkleGet.get(BigInt(level), index), "Merkle node", HASH_BYTES);
      if (!bytesEqual(stored, hash)) {
        throw new LedgerError("INCONSISTENT_TREE", `node (level ${level}, index ${index}) is already stored`);
      }
    });
  }

  /**
   * A node is stored under its hash's prefix, as its body or, for a leaf whose value is the chain head of
   * an accepted entry, as (patient number, head entry's seq, length): the body is rebuilt from the entries
   * (docs/store.md). Either is the node only if it hashes to the whole hash (a prefix shared by another
   * node, one chance in 2^48 per pair, costs one more hash). A damaged row hashes to nothing asked for, so
   * it reads as absent: the index then reports the node missing, and `medledger verify` names the
   * checkpoint whose block wrote it.
   */
  #indexGet(hash: Uint8Array): Uint8Array | undefined {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) return undefined;
    return this.#read(() => {
      const prefix = prefixOf(hash);
      for (const body of this.#q.indexGet.iterate(prefix)) {
        const bytes = bytesOf(body, "patient index node");
        if (bytes.length !== LEAF_BODY_SIZE && bytes.length !== NODE_BODY_SIZE) corrupt("patient index node");
        if (bytesEqual(nodeCrypto.sha256(bytes), hash)) return bytes;
      }
      for (const row of this.#q.leafGet.iterate(prefix) as Iterable<unknown[]>) {
        const length = integerOf(row[3], "patient index leaf length");
        if (length > BigInt(Number.MAX_SAFE_INTEGER)) corrupt("patient index leaf length");
        const body = new Uint8Array(LEAF_BODY_SIZE);
        body[0] = MAP_LEAF_PREFIX;
        body.set(bytesOf(row[0], "patient key", HASH_BYTES), 1);
        const seq = integerOf(row[1], "entry seq");
        const head = this.#recent.get(seq)?.id ?? nodeCrypto.sha256(this.#decode(seq, row[2]));
        body.set(head, 1 + HASH_BYTES);
        new DataView(body.buffer).setBigUint64(1 + 2 * HASH_BYTES, length);
        if (bytesEqual(nodeCrypto.sha256(body), hash)) return body;
      }
      return undefined;
    });
  }

  #indexWrite(batch: IndexBatch): void {
    checkIndexBatch(batch);
    this.transaction(() => {
      for (const { hash, body } of batch.nodes) {
        const prefix = prefixOf(hash);
        const leaf = this.#leafReference(body);
        if (leaf === undefined) this.#q.indexInsert.run(prefix, body);
        else this.#q.leafInsert.run(prefix, leaf.patient, leaf.head, leaf.length);
      }
      this.#q.indexSetRoot.run(batch.root);
    });
  }

  /**
   * How a leaf body can be stored by reference: 0x02 || patient key || head id || length, where the head is
   * an accepted entry (met in this transaction, or found by its id prefix and checked). Undefined for any
   * other body, which is stored as it is.
   */
  #leafReference(body: Uint8Array): { patient: bigint; head: bigint; length: bigint } | undefined {
    if (body.length !== LEAF_BODY_SIZE || body[0] !== MAP_LEAF_PREFIX) return undefined;
    const id = body.subarray(1 + HASH_BYTES, 1 + 2 * HASH_BYTES);
    const length = new DataView(body.buffer, body.byteOffset, body.byteLength).getBigUint64(
      1 + 2 * HASH_BYTES,
    );
    if (length < 1n || length > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    let head = this.#acceptedSeqs.get(toHex(id));
    if (head === undefined) {
      for (const row of this.#q.acceptedByIdPrefix.iterate(prefixOf(id)) as Iterable<unknown[]>) {
        const seq = integerOf(row[0], "entry seq");
        if (bytesEqual(nodeCrypto.sha256(this.#decode(seq, row[1])), id)) head = seq;
      }
    }
    if (head === undefined) return undefined;
    return { patient: this.#patientNumber(body.slice(1, 1 + HASH_BYTES), true), head, length };
  }
}
