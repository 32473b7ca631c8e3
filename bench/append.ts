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
import { nodeCrypto as crypto } from "../src/platform/node-crypto.ts";
import { initNode } from "../src/node/init.ts";
import { createNode } from "../src/node/node.ts";
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
  readonly bytesPerEntry: number;
  readonly entryBytes: number;
  readonly rejected: number;
}

/** Options of benchAppend. */
export interface AppendOptions {
  readonly records?: number;
  readonly patients?: number;
  readonly concurrency?: number;
  /** Seconds for the raw Ed25519 measurement (default 1). */
  readonly seconds?: number;
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
    const sizeBefore = statSync(dbPath).size;
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
    const sizeAfter = statSync(dbPath).size;

    // 4. The machine's own limit, measured in the same run.
    const key = await crypto.ed25519Generate();
    const message = entries[0]!;
    const sig = await crypto.ed25519Sign(key.secretKey, message);
    const verifyRate = await measure(
      "raw Ed25519 verify (one core)",
      () => crypto.ed25519Verify(key.publicKey, message, sig),
      { seconds: options.seconds ?? 1, batch: 100 },
    );

    const sorted = latencies.slice().sort((a, b) => a - b);
    const entriesPerSecond = records / seconds;
    const ceiling = (2 * verifyRate) / 2;
    const entryBytes = entries.reduce((n, e) => n + e.length, 0) / records;
    const figures: AppendFigures = {
      records,
      concurrency,
      entriesPerSecond,
      medianMs: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      ed25519VerifyPerSecond: verifyRate,
      ceiling,
      shareOfCeiling: entriesPerSecond / ceiling,
      bytesPerEntry: (sizeAfter - sizeBefore - blobBytes) / records,
      entryBytes,
      rejected,
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
      `ledger storage per record entry, ciphertext excluded: ${Math.round(figures.bytesPerEntry)} bytes ` +
        `(the entry's own canonical bytes: ${Math.round(entryBytes)}; target < 1024)`,
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
