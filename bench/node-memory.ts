/**
 * Memory of a running node (issue 3, section 6: "memory of a node holding 1,000,000 entries: report it").
 * Not a test: it prints figures and asserts nothing. Usage:
 *
 *     node --expose-gc --import tsx bench/node-memory.ts DIR
 *
 * DIR is a node folder (`medledger node init` + `medledger node seed`). The node is opened (it rebuilds its
 * state by replaying the accepted entries, docs/node.md), garbage is collected, and the heap and resident
 * set are read before and after; the difference per accepted entry is extrapolated linearly to 1,000,000
 * entries, which is what the state's growth is: a few maps keyed by entry, record and patient ids.
 */
import { availableParallelism, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { createNode } from "../src/node/node.ts";
import { nodeCrypto } from "../src/platform/node-crypto.ts";

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write("usage: node --expose-gc --import tsx bench/node-memory.ts DIR\n");
  process.exit(2);
}
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  process.stderr.write("run with node --expose-gc so the heap can be measured after a collection\n");
  process.exit(2);
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
gc();
const before = process.memoryUsage();
const start = performance.now();
const node = await createNode({ dir, crypto: nodeCrypto, verifyWorkers: 0 });
const openSeconds = (performance.now() - start) / 1000;
gc();
const after = process.memoryUsage();
const entries = Number(node.size);
const patients = node.state.patients.size;
const records = node.state.records.size;
await node.close();

const heapPerEntry = (after.heapUsed + after.external - before.heapUsed - before.external) / entries;
const rssPerEntry = (after.rss - before.rss) / entries;
process.stdout.write(
  [
    `node folder ${dir}: ${entries} accepted entries, ${patients} patients, ${records} records; ` +
      `${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(2)}`,
    `  opened (state rebuilt by replay) in ${openSeconds.toFixed(1)} s`,
    `  heap + external after a collection: ${mib(before.heapUsed + before.external)} MiB before opening, ` +
      `${mib(after.heapUsed + after.external)} MiB with the node open: ${heapPerEntry.toFixed(0)} bytes per entry`,
    `  resident set: ${mib(before.rss)} MiB before, ${mib(after.rss)} MiB after ` +
      `(${rssPerEntry.toFixed(0)} bytes per entry, includes SQLite's page cache)`,
    `  extrapolated to 1,000,000 entries: heap ${mib(heapPerEntry * 1e6)} MiB, ` +
      `resident ${mib(before.rss + rssPerEntry * 1e6)} MiB`,
    "",
  ].join("\n"),
);
