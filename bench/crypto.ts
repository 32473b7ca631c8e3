/**
 * Crypto benchmark: Ed25519 sign and verify, raw X25519 DH and key generation, and HPKE key envelopes
 * (seal, open) on each CryptoSuite, with each envelope rate also given as a share of its X25519 ceiling
 * measured in the same run. Benchmarks print figures; they are never asserted on (STYLE.md).
 *
 * Ceilings: sealing an envelope needs one key generation and one DH, so it can go no faster than
 * 1 / (1 / keygen + 1 / dh); opening needs one DH, so dh is its ceiling; and since every open must also
 * parse its enc, DH with a never-seen public key is the tighter ceiling. The rest (HKDF, AES-GCM,
 * parsing, allocation) is our overhead.
 *
 * The machines we run on are shared, so the operations of a suite are measured in interleaved rounds
 * (each round runs every operation for a fifth of its time) and each figure is the best round: a burst
 * of load elsewhere then costs every operation alike instead of skewing one ratio.
 *
 * Run on its own: node --import tsx bench/crypto.ts [seconds per figure]
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { encodeEnvelope, openEnvelope, sealEnvelope } from "../src/core/crypto/envelope.ts";
import type { CryptoSuite } from "../src/core/crypto/suite.ts";
import { nodeCrypto } from "../src/platform/node-crypto.ts";
import { webCrypto } from "../src/platform/web-crypto.ts";
import { formatRate } from "./harness.ts";

/** The figures of one suite, in operations per second. */
export interface CryptoBenchFigures {
  readonly suite: string;
  readonly ed25519Sign: number;
  readonly ed25519Verify: number;
  readonly x25519Dh: number;
  /** DH with a public key never seen before, so it is parsed too (what every envelope open does). */
  readonly x25519DhFreshKey: number;
  readonly x25519Keygen: number;
  readonly envelopeSeal: number;
  readonly envelopeOpen: number;
  /** 1 / (1 / keygen + 1 / dh): the fastest an envelope seal could be. */
  readonly sealCeiling: number;
  /** dh: the fastest an envelope open could be. */
  readonly openCeiling: number;
}

/** Options of benchCrypto. */
export interface CryptoBenchOptions {
  /** Seconds per figure, spread over the rounds (default 1). */
  readonly seconds?: number;
  /** Interleaved rounds per suite (default 5). */
  readonly rounds?: number;
  /** Suites to measure (default node, then web). */
  readonly suites?: readonly CryptoSuite[];
}

type Operation = () => unknown;

/** Operations per second of `op`, run back to back (awaiting each promise) for `seconds`. */
async function rate(op: Operation, seconds: number): Promise<number> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let count = 0;
  let now: number;
  do {
    const result = op();
    if (result instanceof Promise) await result;
    count++;
    now = performance.now();
  } while (now < deadline);
  return (count * 1000) / (now - start);
}

/** The operations of one suite, with their inputs prepared. */
async function operations(crypto: CryptoSuite): Promise<Record<string, Operation>> {
  const message = crypto.randomBytes(64);
  const signer = await crypto.ed25519Generate();
  const signature = await crypto.ed25519Sign(signer.secretKey, message);
  const alice = await crypto.x25519Generate();
  const bob = await crypto.x25519Generate();
  const dataKey = crypto.randomBytes(32);
  const binding = { aad: crypto.randomBytes(64) };
  const peers: Uint8Array[] = [];
  const pool: Uint8Array[] = [];
  for (let i = 0; i < 64; i++) {
    peers.push((await crypto.x25519Generate()).publicKey);
    pool.push(encodeEnvelope(await sealEnvelope(crypto, bob.publicKey, dataKey, binding)));
  }
  let peer = 0;
  let next = 0;
  return {
    ed25519Sign: () => crypto.ed25519Sign(signer.secretKey, message),
    ed25519Verify: () => crypto.ed25519Verify(signer.publicKey, message, signature),
    x25519Dh: () => crypto.x25519(alice.secretKey, bob.publicKey),
    // A fresh copy each time: the suite cannot reuse a parsed key object.
    x25519DhFreshKey: () => crypto.x25519(alice.secretKey, peers[peer++ % peers.length]!.slice()),
    x25519Keygen: () => crypto.x25519Generate(),
    envelopeSeal: () => sealEnvelope(crypto, bob.publicKey, dataKey, binding),
    // Every open parses a fresh envelope from bytes, as a reader does: no key object is reused.
    envelopeOpen: () => openEnvelope(crypto, bob.secretKey, pool[next++ % pool.length]!, binding),
  };
}

/** Measure one suite in interleaved rounds; each figure is its best round. */
async function benchSuite(crypto: CryptoSuite, seconds: number, rounds: number): Promise<CryptoBenchFigures> {
  const ops = await operations(crypto);
  const best: Record<string, number> = {};
  for (const op of Object.values(ops)) await rate(op, seconds / 10);
  for (let round = 0; round < rounds; round++) {
    for (const [name, op] of Object.entries(ops)) {
      best[name] = Math.max(best[name] ?? 0, await rate(op, seconds / rounds));
    }
  }
  const get = (name: string) => best[name] ?? Number.NaN;
  return {
    suite: crypto.name,
    ed25519Sign: get("ed25519Sign"),
    ed25519Verify: get("ed25519Verify"),
    x25519Dh: get("x25519Dh"),
    x25519DhFreshKey: get("x25519DhFreshKey"),
    x25519Keygen: get("x25519Keygen"),
    envelopeSeal: get("envelopeSeal"),
    envelopeOpen: get("envelopeOpen"),
    sealCeiling: 1 / (1 / get("x25519Keygen") + 1 / get("x25519Dh")),
    openCeiling: get("x25519Dh"),
  };
}

const percent = (part: number, whole: number) => `${((100 * part) / whole).toFixed(0)}%`;

/** Print the figures as a table, each envelope rate next to its ceiling. */
export function printCryptoTable(figures: readonly CryptoBenchFigures[]): void {
  const rows: string[][] = [["suite", "operation", "ops/s", "X25519 ceiling", "share of ceiling"]];
  for (const f of figures) {
    rows.push([f.suite, "Ed25519 sign", formatRate(f.ed25519Sign), "", ""]);
    rows.push([f.suite, "Ed25519 verify", formatRate(f.ed25519Verify), "", ""]);
    rows.push([f.suite, "X25519 DH (raw)", formatRate(f.x25519Dh), "", ""]);
    rows.push([f.suite, "X25519 DH, fresh public key", formatRate(f.x25519DhFreshKey), "", ""]);
    rows.push([f.suite, "X25519 keygen (raw)", formatRate(f.x25519Keygen), "", ""]);
    const seal = f.envelopeSeal;
    const open = f.envelopeOpen;
    rows.push([
      f.suite,
      "HPKE envelope seal",
      formatRate(seal),
      formatRate(f.sealCeiling),
      percent(seal, f.sealCeiling),
    ]);
    rows.push([
      f.suite,
      "HPKE envelope open",
      formatRate(open),
      formatRate(f.openCeiling),
      percent(open, f.openCeiling),
    ]);
    rows.push([
      f.suite,
      "  open vs DH with parse",
      "",
      formatRate(f.x25519DhFreshKey),
      percent(open, f.x25519DhFreshKey),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [n, row] of rows.entries()) {
    console.log(
      row.map((cell, i) => (i >= 2 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  "),
    );
    if (n === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
  console.log(
    "seal ceiling = 1 / (1/keygen + 1/dh); open ceiling = dh; all from the same run (best of the rounds).",
  );
  console.log(
    "An open must also parse its enc, so DH with a fresh public key is the tighter ceiling for opens.",
  );
}

/** Run the crypto benchmark on each suite, print the figures and ratios, and return them. */
export async function benchCrypto(options: CryptoBenchOptions = {}): Promise<CryptoBenchFigures[]> {
  const seconds = options.seconds ?? 1;
  const rounds = Math.max(1, Math.floor(options.rounds ?? 5));
  const figures: CryptoBenchFigures[] = [];
  for (const crypto of options.suites ?? [nodeCrypto, webCrypto]) {
    figures.push(await benchSuite(crypto, seconds, rounds));
  }
  printCryptoTable(figures);
  return figures;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? "1");
  await benchCrypto({ seconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 1 });
}
