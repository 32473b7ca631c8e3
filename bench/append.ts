/**
 * End-to-end append benchmark (issue 3, section 6): record.append entries per second through node.submit
 * on a durable SQLite store (synchronous = FULL), each entry signed by its author and its validator,
 * validated, Merkle-appended, indexed, checkpointed and committed before its submitter hears back; the
 * median and 99th-percentile latency from submit to durable; the same run's raw Ed25519 verification rate
 * and the ceiling it implies (two verifications per entry on two cores: 2 x rate / 2); and the bytes of
 * ledger storage per record entry, ciphertext excluded. Figures are printed, never asserted (STYLE.md).
 *
 * Clients are simulated in process, closed loop: CONCURRENCY of them each submit one entry and wait for
 * its verdict before the next, as HTTP clients of a node would. The entries are built (encrypted, wrapped,
 * signed) before the clock starts: building them is client work, not the node's.
 *
 * Run on its own: node --import tsx bench/append.ts [RECORDS] [PATIENTS] [CONCURRENCY]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { fromBase64, fromUtf8 } from "../src/core/encoding/bytes.ts";
import { nodeCrypto as crypto } from "../src/platform/node-crypto.ts";
import { initNode } from "../src/node/init.ts";
import { createNode } from "../src/node/node.ts";
import { decodeEntryBytes, encodeEntryBytes, entryDictionary } from "../src/store/entry-codec.ts";
import {
  enrollEntry,
  loadSeedActors,
  monthsBefore,
  newSeedPatient,
  recordEntry,
  type SeedPatient,
} from "../src/node/seed.ts";
import { formatRate, measure } from "./harness.ts";

/** The figures of one run. */
export interface AppendFigures {
  readonly records: number;
  readonly concurrency: number;
  readonly entriesPerSecond: number;
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly ed25519VerifyPerSecond: number;
  /** 2 cores x verify rate / 2 verifications per entry. */
  readonly ceiling: number;
  readonly shareOfCeiling: number;
  /**
   * Growth of the database file per record entry over the measured run, the ciphertext blobs' table
   * excluded (they were stored before the run and are apart from the ledger). The key envelopes inside each
   * entry are counted: this is the figure the target (< 1 KiB) is judged on.
   */
  readonly bytesPerEntry: number;
  /** bytesPerEntry minus the key envelopes' own bytes (their binary size: encrypted data keys). */
  readonly bytesPerEntryWithoutEnvelopes: number;
  /** How each b-tree of the database grew over the measured run (bytes and rows, not per entry). */
  readonly breakdown: readonly TreeGrowth[];
  /** The entry's own canonical JSON bytes (the Merkle leaf), on average. */
  readonly entryBytes: number;
  /** The key envelopes of an entry on average: their binary bytes and their base64 text in the JSON. */
  readonly envelopeBytes: number;
  readonly envelopeTextBytes: number;
  readonly rejected: number;
  /** CPU per record entry of the store's encoding of entry bytes, and of decoding them, in µs. */
  readonly encodeMicros: number;
  readonly decodeMicros: number;
}

/** Options of benchAppend. */
export interface AppendOptions {
  readonly records?: number;
  readonly patients?: number;
  readonly concurrency?: number;
  /** Seconds for the raw Ed25519 measurement (default 1). */
  readonly seconds?: number;
}

/** One b-tree of a database file: a table or an index. */
export interface StoredTree {
  /** The table it belongs to (itself for a table). */
  readonly table: string;
  readonly index: boolean;
  /** Bytes of its pages: payload, cell and page headers, and the unused space of each page. */
  readonly bytes: number;
  /** Rows of a table (count(*)); 0 for an index. */
  readonly rows: number;
}

/** Where the bytes of a closed database file go, from SQLite's dbstat table. */
export interface StorageBreakdown {
  /** b-tree name -> its pages; with the free list they add up to the file. */
  readonly trees: ReadonlyMap<string, StoredTree>;
  /** Bytes of pages on the free list. */
  readonly free: number;
  /** The file's size: page count x page size. */
  readonly total: number;
  readonly pageSize: number;
}

/** Measure a closed database file: pages per b-tree (dbstat), rows per table, free pages. */
export function storageBreakdown(path: string): StorageBreakdown {
  const db = new Database(path, { readonly: true });
  try {
    const owners = new Map<string, { table: string; index: boolean }>([
      ["sqlite_schema", { table: "sqlite_schema", index: false }],
    ]);
    const schema = db
      .prepare("SELECT name, tbl_name AS tbl, type FROM sqlite_schema WHERE type IN ('table', 'index')")
      .all() as { name: string; tbl: string; type: string }[];
    for (const { name, tbl, type } of schema) owners.set(name, { table: tbl, index: type === "index" });
    const trees = new Map<string, StoredTree>();
    const pages = db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name").all() as {
      name: string;
      bytes: number | bigint;
    }[];
    for (const { name, bytes } of pages) {
      const owner = owners.get(name) ?? { table: name, index: false };
      // Table names come from the file's own schema, quoted as SQL identifiers.
      const rows = owner.index
        ? 0
        : Number(
            db
              .prepare(`SELECT count(*) FROM "${name.replaceAll('"', '""')}"`)
              .pluck()
              .get(),
          );
      trees.set(name, { ...owner, bytes: Number(bytes), rows });
    }
    const pageSize = Number(db.pragma("page_size", { simple: true }));
    const free = Number(db.pragma("freelist_count", { simple: true })) * pageSize;
    const total = Number(db.pragma("page_count", { simple: true })) * pageSize;
    return { trees, free, total, pageSize };
  } finally {
    db.close();
  }
}

/** The ciphertext blobs' table: left out of the per-entry figure (it was also filled before the run). */
const BLOB_TABLE = "blobs";

/** What each table of a medledger store holds, for the printout. */
const TABLE_NOTES: Readonly<Record<string, string>> = {
  submissions: "entry bytes",
  entries: "the validator's rows",
  merkle_nodes: "RFC 9162 log nodes",
  index_nodes: "patient-index nodes",
  index_root: "patient-index root",
  checkpoints: "signed notes",
  meta: "ledger times, settings",
  blobs: "ciphertext, excluded",
};

/** One line of the growth between two breakdowns: a b-tree, or the free list. */
export interface TreeGrowth {
  readonly name: string;
  readonly table: string;
  readonly index: boolean;
  readonly bytes: number;
  readonly rows: number;
}

/** How each b-tree (and the free list) grew between two breakdowns, tables first, each before its indexes. */
export function breakdownGrowth(before: StorageBreakdown, after: StorageBreakdown): TreeGrowth[] {
  const out: TreeGrowth[] = [];
  for (const [name, tree] of after.trees) {
    const old = before.trees.get(name);
    out.push({
      name,
      table: tree.table,
      index: tree.index,
      bytes: tree.bytes - (old?.bytes ?? 0),
      rows: tree.rows - (old?.rows ?? 0),
    });
  }
  out.sort((a, b) =>
    a.table !== b.table ? (a.table < b.table ? -1 : 1) : a.index !== b.index ? (a.index ? 1 : -1) : 0,
  );
  out.push({ name: "(free pages)", table: "", index: false, bytes: after.free - before.free, rows: 0 });
  return out;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Run the benchmark and print its figures. */
export async function benchAppend(options: AppendOptions = {}): Promise<AppendFigures> {
  const records = options.records ?? 10_000;
  const patientCount = options.patients ?? 1_000;
  const concurrency = options.concurrency ?? 500;
  const root = mkdtempSync(join(tmpdir(), "medledger-bench-append-"));
  const dir = join(root, "node");
  try {
    // A cheap key-file KDF: the key files are not what is measured.
    await initNode({
      dir,
      crypto,
      origin: "bench.medledger.example/log",
      keyFileOptions: { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true },
    });
    const actors = await loadSeedActors(crypto, dir);
    const dbPath = join(dir, "ledger.db");

    // 1. Enrol the patients (not measured), then close so the database file holds everything so far.
    let node = await createNode({ dir, crypto });
    // The genesis: the store encodes every later entry against it (src/store/entry-codec.ts).
    const genesis = node.store.readSubmissions(0n, 1)[0]!.bytes;
    const patients: SeedPatient[] = [];
    for (let i = 0; i < patientCount; i++) patients.push(await newSeedPatient(crypto));
    for (let i = 0; i < patientCount; i += 1000) {
      const chunk = await Promise.all(patients.slice(i, i + 1000).map((p) => enrollEntry(crypto, actors, p)));
      await node.submit(chunk);
    }

    // 2. Build the records (not measured): round-robin over the patients, so each chain grows in order.
    const now = Math.floor(Date.now() / 1000);
    let blobBytes = 0;
    let blobs: Uint8Array[] = [];
    const putBlob = (bytes: Uint8Array): Uint8Array => {
      blobBytes += bytes.length;
      blobs.push(bytes);
      return crypto.sha256(bytes);
    };
    const storeBlobs = (): void => {
      const pending = blobs;
      node.store.transaction(() => pending.forEach((blob) => node.store.putBlob(blob)));
      blobs = [];
    };
    const entries: Uint8Array[] = [];
    const buildStart = performance.now();
    for (let i = 0; i < records; i++) {
      entries.push(
        await recordEntry(crypto, actors, patients[i % patientCount]!, monthsBefore(now, i % 24), putBlob),
      );
      if (blobs.length === 1000) storeBlobs();
    }
    storeBlobs();
    const buildSeconds = (performance.now() - buildStart) / 1000;
    await node.close();
    const before = storageBreakdown(dbPath);
    if (before.total !== statSync(dbPath).size) throw new Error("the WAL was not folded back at close");
    node = await createNode({ dir, crypto });

    // 3. The measured run: closed-loop clients, one entry per submit, in chain order.
    const latencies: number[] = new Array<number>(records);
    let next = 0;
    let rejected = 0;
    const client = async (): Promise<void> => {
      while (next < records) {
        const i = next++;
        const t = performance.now();
        const [verdict] = await node.submit([entries[i]!]);
        latencies[i] = performance.now() - t;
        if (verdict?.accepted !== true) rejected++;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, client));
    const seconds = (performance.now() - start) / 1000;
    await node.close();
    const after = storageBreakdown(dbPath);
    if (after.total !== statSync(dbPath).size) throw new Error("the WAL was not folded back at close");

    // 4. The machine's own limit, measured in the same run.
    const key = await crypto.ed25519Generate();
    const message = entries[0]!;
    const sig = await crypto.ed25519Sign(key.secretKey, message);
    const verifyRate = await measure(
      "raw Ed25519 verify (one core)",
      () => crypto.ed25519Verify(key.publicKey, message, sig),
      { seconds: options.seconds ?? 1, batch: 100 },
    );

    // 5. The CPU cost of the store's encoding of entry bytes, on this run's entries, against the same
    // machine's Ed25519 verification: each entry is encoded once when appended, decoded at every read.
    const dictionary = entryDictionary(genesis);
    const sample = entries.slice(0, 1000);
    const stored = sample.map((bytes) => encodeEntryBytes(bytes, dictionary));
    let turn = 0;
    const encodeRate = await measure(
      "store: encode entry bytes (one core)",
      () => encodeEntryBytes(sample[turn++ % sample.length]!, dictionary),
      { seconds: options.seconds ?? 1, batch: 100 },
    );
    const decodeRate = await measure(
      "store: decode entry bytes (one core)",
      () => decodeEntryBytes(stored[turn++ % stored.length]!, dictionary),
      { seconds: options.seconds ?? 1, batch: 100 },
    );

    const sorted = latencies.slice().sort((a, b) => a - b);
    const entriesPerSecond = records / seconds;
    const ceiling = (2 * verifyRate) / 2;
    const entryBytes = entries.reduce((n, e) => n + e.length, 0) / records;
    // The key envelopes are ciphertext too (HPKE-wrapped data keys): count them, to print both figures.
    let envelopeBytes = 0;
    let envelopeTextBytes = 0;
    for (const bytes of entries) {
      const entry = JSON.parse(fromUtf8(bytes)) as { body: { envelopes: { env: string }[] } };
      for (const { env } of entry.body.envelopes) {
        envelopeBytes += fromBase64(env).length;
        envelopeTextBytes += env.length;
      }
    }
    const growth = breakdownGrowth(before, after);
    const ciphertextGrowth = growth.filter((g) => g.table === BLOB_TABLE).reduce((n, g) => n + g.bytes, 0);
    const ledgerGrowth = after.total - before.total - ciphertextGrowth;
    const figures: AppendFigures = {
      records,
      concurrency,
      entriesPerSecond,
      medianMs: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      ed25519VerifyPerSecond: verifyRate,
      ceiling,
      shareOfCeiling: entriesPerSecond / ceiling,
      bytesPerEntry: ledgerGrowth / records,
      bytesPerEntryWithoutEnvelopes: (ledgerGrowth - envelopeBytes) / records,
      breakdown: growth,
      entryBytes,
      envelopeBytes: envelopeBytes / records,
      envelopeTextBytes: envelopeTextBytes / records,
      rejected,
      encodeMicros: 1e6 / encodeRate,
      decodeMicros: 1e6 / decodeRate,
    };
    console.log(
      `built ${records} record entries for ${patientCount} patients in ${buildSeconds.toFixed(1)} s (client side, not measured)`,
    );
    console.log(
      `record.append end to end (SQLite, synchronous=FULL, ${concurrency} closed-loop clients): ` +
        `${formatRate(entriesPerSecond)} entries/s, ${rejected} rejected`,
    );
    console.log(
      `latency submit -> durable: median ${figures.medianMs.toFixed(1)} ms, p99 ${figures.p99Ms.toFixed(1)} ms`,
    );
    console.log(
      `ceiling (2 cores x Ed25519 verify / 2 per entry): ${formatRate(ceiling)} entries/s; ` +
        `reached ${(figures.shareOfCeiling * 100).toFixed(0)}% (target >= 50%, and >= 5,000 entries/s)`,
    );
    console.log(
      `ledger storage per record entry, growth of the database file over the run (page size ${after.pageSize} B), ` +
        `by b-tree:`,
    );
    for (const g of growth) {
      if (g.bytes === 0 && g.rows === 0) continue;
      const name = g.index
        ? `  index ${g.name}`
        : `${g.name}${g.name in TABLE_NOTES ? ` (${TABLE_NOTES[g.name]})` : ""}`;
      const rows = g.index || g.rows === 0 ? "" : `  ${(g.rows / records).toFixed(2)} rows/entry`;
      console.log(`  ${name.padEnd(44)} ${(g.bytes / records).toFixed(1).padStart(8)} B${rows}`);
    }
    console.log(
      `ledger storage per record entry, ciphertext excluded: ${Math.round(figures.bytesPerEntry)} bytes ` +
        `(the entry's own canonical bytes: ${Math.round(entryBytes)}; target < 1024, judged on this figure)`,
    );
    console.log(
      `  "ciphertext excluded" means: the record's ciphertext blob (${Math.round(blobBytes / records)} B per ` +
        `entry here, stored before the run) is not counted; the entry's ${Math.round(figures.envelopeBytes)} B ` +
        `of HPKE key envelopes (encrypted data keys, ${Math.round(figures.envelopeTextBytes)} B of base64 in ` +
        `its JSON) are counted`,
    );
    console.log(
      `  the same without the envelopes' own bytes: ${Math.round(figures.bytesPerEntryWithoutEnvelopes)} bytes ` +
        "(their base64 text and JSON members, and the rest of the entry, still counted)",
    );
    const blocks = growth.find((g) => g.name === "checkpoints")?.rows ?? 0;
    console.log(
      `  blocks (one checkpoint each): ${blocks}, ${blocks === 0 ? "-" : Math.round(records / blocks)} entries ` +
        "per block on average: the patient-index nodes per entry grow as blocks shrink (docs/store.md)",
    );
    const verifyMicros = 1e6 / verifyRate;
    console.log(
      `store CPU per entry for its encoding of entry bytes: encode ${figures.encodeMicros.toFixed(1)} µs ` +
        `(once, at append), decode ${figures.decodeMicros.toFixed(1)} µs (at every read): ` +
        `${((100 * figures.encodeMicros) / verifyMicros).toFixed(0)}% and ` +
        `${((100 * figures.decodeMicros) / verifyMicros).toFixed(0)}% of one Ed25519 verification ` +
        `(${verifyMicros.toFixed(0)} µs here)`,
    );
    console.log(`load average at the end: ${loadavg()[0]!.toFixed(2)} (figures are only meaningful near 0)`);
    return figures;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [records, patients, concurrency] = process.argv.slice(2).map(Number);
  for (const n of [records, patients, concurrency]) {
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000)) {
      console.error(
        "usage: node --import tsx bench/append.ts [RECORDS] [PATIENTS] [CONCURRENCY]  (each 1..1000000)",
      );
      process.exit(2);
    }
  }
  console.log(
    `machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, Node ${process.version}, ` +
      `load average ${loadavg()[0]!.toFixed(2)}`,
  );
  await benchAppend({
    ...(records === undefined ? {} : { records }),
    ...(patients === undefined ? {} : { patients }),
    ...(concurrency === undefined ? {} : { concurrency }),
  });
}
