/**
 * Merkle log benchmark: raw SHA-256 measured in the same run, then leaf hashing, appends into a growing
 * in-memory tree, and proof generation and verification on a tree of 1,000,000 leaves, each also as a
 * fraction of the raw SHA-256 ceiling (rate x hashes per operation / raw SHA-256 rate of the same hasher).
 *
 * The Merkle code is handed its SHA-256; two node:crypto hashers are measured: createHash (an object per
 * hash) and the one-shot crypto.hash (Node >= 20.12), which costs much less per call on 33- to 65-byte
 * inputs.
 * Run on its own: node --import tsx bench/merkle.ts
 */
import * as crypto from "node:crypto";
import { pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";
import { leafHash } from "../src/core/merkle/hash.ts";
import type { Sha256 } from "../src/core/merkle/hash.ts";
import { verifyConsistency, verifyInclusion } from "../src/core/merkle/proofs.ts";
import type { ConsistencyCheck, InclusionCheck } from "../src/core/merkle/proofs.ts";
import { MerkleTree } from "../src/core/merkle/tree.ts";
import { formatRate, measure } from "./harness.ts";

// node:crypto returns a Buffer, which is a Uint8Array: handed over as is, without a copy.
const createHashSha: Sha256 = (data) => crypto.createHash("sha256").update(data).digest();
const oneShotSha: Sha256 | undefined =
  typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data, "buffer") : undefined;

/** The figures of one hasher, in operations per second. */
export interface MerkleHasherFigures {
  readonly rawSha256: number;
  readonly leafHash: number;
  readonly append: number;
  readonly appendLeafHash: number;
  readonly inclusionVerify: number;
  readonly consistencyVerify: number;
}

/** The figures of one run. */
export interface MerkleFigures {
  readonly byHasher: Readonly<Record<string, MerkleHasherFigures>>;
  readonly inclusionProof: number;
  readonly consistencyProof: number;
}

const TREE_SIZE = 1_000_000;
const SAMPLES = 4096;

/** Run the Merkle benchmarks, print the figures and return them. */
export async function benchMerkle(seconds = 2): Promise<MerkleFigures> {
  const opts = { seconds, batch: 256 };
  const entry = new Uint8Array(64).fill(0xcd);
  let counter = 0;
  const nextEntry = (): Uint8Array => {
    counter++;
    entry[0] = counter & 255;
    entry[1] = (counter >>> 8) & 255;
    entry[2] = (counter >>> 16) & 255;
    return entry;
  };
  const random = (n: number): number => Math.floor(Math.random() * n);
  const hashers: [string, Sha256][] = [["crypto.createHash", createHashSha]];
  if (oneShotSha !== undefined) hashers.unshift(["crypto.hash (one-shot)", oneShotSha]);
  const fastest = hashers[0]![1];

  console.log(`Merkle log (RFC 9162), node ${process.version}, ${process.platform}/${process.arch}`);

  // The tree of 1M leaves and the proofs to verify: independent of the hasher that verifies them.
  const buildStart = performance.now();
  const tree = MerkleTree.create(fastest);
  for (let i = 0; i < TREE_SIZE; i++) tree.append(nextEntry());
  const buildSeconds = (performance.now() - buildStart) / 1000;
  console.log(
    `built a tree of ${formatRate(TREE_SIZE)} leaves in ${buildSeconds.toFixed(2)} s ` +
      `(${formatRate(TREE_SIZE / buildSeconds)} appends/s, ${hashers[0]![0]})`,
  );
  const size = BigInt(TREE_SIZE);
  const root = tree.root();
  const indices = Array.from({ length: SAMPLES }, () => BigInt(random(TREE_SIZE)));
  const sizes1 = Array.from({ length: SAMPLES }, () => BigInt(1 + random(TREE_SIZE - 1)));
  const inclusionChecks: InclusionCheck[] = indices.map((index) => ({
    index,
    size,
    leafHash: tree.leafHash(index),
    proof: tree.inclusionProof(index, size),
    root,
  }));
  const consistencyChecks: ConsistencyCheck[] = sizes1.map((size1) => ({
    size1,
    size2: size,
    root1: tree.rootAt(size1),
    root2: root,
    proof: tree.consistencyProof(size1, size),
  }));
  const inclusionHashes = average(inclusionChecks.map((c) => c.proof.length));
  let counted = 0;
  const countingSha: Sha256 = (d) => {
    counted++;
    return fastest(d);
  };
  for (const c of consistencyChecks) verifyConsistency(countingSha, c);
  const consistencyHashes = counted / SAMPLES;
  console.log(
    `random proofs: inclusion ${inclusionHashes.toFixed(2)} hashes; consistency ` +
      `${average(consistencyChecks.map((c) => c.proof.length)).toFixed(2)} hashes, ` +
      `${consistencyHashes.toFixed(2)} hash computations to verify`,
  );

  let k = 0;
  const byHasher: Record<string, MerkleHasherFigures> = {};
  for (const [name, sha] of hashers) {
    console.log(`\n-- SHA-256 by ${name}`);
    const input64 = new Uint8Array(64).fill(0xab);
    const raw = await measure("raw SHA-256 of 64 bytes", () => sha(input64), opts);
    const ratio = (rate: number, hashesPerOp: number): string =>
      `    = ${formatRate(rate * hashesPerOp)} hashes/s at ${hashesPerOp.toFixed(2)} hashes per operation, ` +
      `${((100 * rate * hashesPerOp) / raw).toFixed(0)}% of the raw SHA-256 rate`;

    const leaf = await measure(
      "leaf hash SHA-256(0x00 || 64-byte entry)",
      () => leafHash(sha, nextEntry()),
      opts,
    );
    console.log(ratio(leaf, 1));
    // Trees that keep growing across warm-up and measurement: a leaf hash plus, amortised, one node hash.
    const growing = MerkleTree.create(sha);
    const append = await measure(
      "append entry, growing in-memory tree",
      () => growing.append(nextEntry()),
      opts,
    );
    console.log(ratio(append, 2) + `; the tree reached ${formatRate(Number(growing.size))} leaves`);
    const byHash = MerkleTree.create(sha);
    const leafHashes = Array.from({ length: 1024 }, (_, i) => sha(new Uint8Array([i & 255, i >> 8])));
    const appendLeafHash = await measure(
      "append leaf hash, growing in-memory tree",
      () => byHash.appendLeafHash(leafHashes[counter++ & 1023]!),
      opts,
    );
    console.log(ratio(appendLeafHash, 1));
    const inclusionVerify = await measure(
      "inclusion proof verification (RFC 9162 2.1.3.2), 1M leaves",
      () => verifyInclusion(sha, inclusionChecks[k++ % SAMPLES]!),
      opts,
    );
    console.log(ratio(inclusionVerify, inclusionHashes));
    const consistencyVerify = await measure(
      "consistency proof verification (RFC 9162 2.1.4.2), random size -> 1M",
      () => verifyConsistency(sha, consistencyChecks[k++ % SAMPLES]!),
      opts,
    );
    console.log(ratio(consistencyVerify, consistencyHashes));
    byHasher[name] = {
      rawSha256: raw,
      leafHash: leaf,
      append,
      appendLeafHash,
      inclusionVerify,
      consistencyVerify,
    };
  }

  console.log(`\n-- proof generation from the in-memory node store, 1M leaves (${hashers[0]![0]})`);
  const inclusionProof = await measure(
    "inclusion proof generation (RFC 9162 2.1.3.1)",
    () => tree.inclusionProof(indices[k++ % SAMPLES]!, size),
    opts,
  );
  const consistencyProof = await measure(
    "consistency proof generation (RFC 9162 2.1.4.1), random size -> 1M",
    () => tree.consistencyProof(sizes1[k++ % SAMPLES]!, size),
    opts,
  );
  console.log("    (generation reads ~20-40 stored nodes and hashes only the one right-edge range it needs)");
  return { byHasher, inclusionProof, consistencyProof };
}

function average(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchMerkle();
}
