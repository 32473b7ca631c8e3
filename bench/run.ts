/**
 * `npm run bench`: every benchmark in one run, so that each figure can be read against the machine's own
 * limits (raw SHA-256, Ed25519 and X25519 rates) measured in the same run. Figures are printed, never
 * asserted: these machines are shared and noisy. Pass a number of seconds per measurement (default 1).
 */
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { benchAppend } from "./append.ts";
import { benchCrypto } from "./crypto.ts";
import { benchHttp } from "./http.ts";
import { benchMerkle } from "./merkle.ts";
import { benchPatientIndex } from "./patient-index.ts";

const seconds = Number(process.argv[2] ?? "1");
if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 60) {
  console.error("usage: npm run bench [-- SECONDS_PER_MEASUREMENT]   (0 < seconds <= 60)");
  process.exit(2);
}

console.log(
  `machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
);
console.log("\n== crypto suite (Ed25519, X25519, HPKE key envelopes)");
await benchCrypto({ seconds });
console.log("\n== Merkle log (RFC 9162)");
await benchMerkle(seconds);
console.log("\n== patient index (sparse Merkle tree)");
await benchPatientIndex(seconds);
console.log("\n== embedded node: record-append entries end to end on a durable SQLite store");
const append = await benchAppend();
console.log(
  "\n== the node's HTTP API and the SDK: history, grant, read throughput, append (real server process)",
);
// Each throughput measurement runs 5 x SECONDS; the in-process append figure above is the ratio's base.
await benchHttp({ seconds: 5 * seconds, inProcessAppend: append });
console.log(`\nload average at the end: ${loadavg()[0]!.toFixed(2)}`);
