/**
 * The node process of bench/http.ts: a real node on a data folder with its HTTP API on 127.0.0.1, in a
 * process of its own, as `medledger node start` runs it (default verify workers), so that the load
 * generator and the SDK being measured do not share its event loop. The per-caller rate limit and the
 * in-flight cap are raised (see BENCH_LIMITS): the benchmark measures what the server can do, not the
 * limits that protect it.
 *
 * Prints one line of JSON `{"url": ...}` on standard output once it listens; stops on SIGTERM or SIGINT.
 *
 * Run: node --import tsx bench/http-node.ts DATA_DIR
 */
import { createNode } from "../src/node/node.ts";
import { nodeCrypto as crypto } from "../src/platform/node-crypto.ts";
import { createServer } from "../src/server/app.ts";
import type { ServerLimits } from "../src/server/limits.ts";

/**
 * The bounds the benchmark's server runs with. Everything else keeps its default (docs/api.md section 1).
 * With the defaults (50 requests/s per caller, burst 200) a reader of 1,000 records, which downloads one
 * blob per record, is refused with 429 after about 200 downloads; and one caller's load generator would be
 * throttled at 50 requests/s.
 */
const BENCH_LIMITS: Partial<ServerLimits> = {
  ratePerSecond: 1_000_000,
  rateBurst: 1_000_000,
  maxInFlight: 10_000,
};

const dir = process.argv[2];
if (dir === undefined || process.argv.length !== 3) {
  console.error("usage: node --import tsx bench/http-node.ts DATA_DIR");
  process.exit(2);
}
const node = await createNode({ dir, crypto });
const server = await createServer({
  node,
  crypto,
  dataDir: dir,
  limits: BENCH_LIMITS,
  log: (line) => console.error(line),
});
const url = await server.listen({ host: "127.0.0.1", port: 0 });
process.stdout.write(`${JSON.stringify({ url })}\n`);

const stop = async (): Promise<void> => {
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  await server.close();
  await node.close();
  process.exit(0);
};
const onSignal = (): void => void stop();
process.on("SIGTERM", onSignal);
process.on("SIGINT", onSignal);
