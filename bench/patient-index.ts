/**
 * Patient-index benchmark: raw SHA-256 measured in the same run, then, on an index of 100,000 patients,
 * single updates, batched updates (blocks of 1,000 patients), proof generation and proof verification.
 * Each rate is also given as a ratio to the raw SHA-256 rate (ops/s / hashes/s) and as the share of the
 * SHA-256 ceiling it reaches (ops/s x hashes counted per op / hashes/s): the rest is reads, allocation and
 * bookkeeping. Figures are printed, never asserted (STYLE.md).
 * Run on its own: node --import tsx bench/patient-index.ts
 */
import * as crypto from "node:crypto";
import { pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";
import {
  MemoryIndexStore,
  PatientIndex,
  verifyMembership,
  verifyNonMembership,
} from "../src/core/patient-index/index.ts";
import type {
  HashFunction,
  IndexChange,
  IndexValue,
  MembershipProof,
  NonMembershipProof,
} from "../src/core/patient-index/index.ts";
import { formatRate, measure } from "./harness.ts";

/** The figures of one run, in operations per second (updates counted per patient). */
export interface PatientIndexFigures {
  readonly patients: number;
  readonly rawSha256: number;
  readonly initialLoad: number;
  readonly singleUpdate: number;
  readonly batchedUpdate: number;
  readonly membershipProof: number;
  readonly membershipVerify: number;
  readonly nonMembershipVerify: number;
  /** Mean SHA-256 calls per operation, counted (not timed). */
  readonly hashesPerOp: Readonly<Record<string, number>>;
}

const PATIENTS = 100_000;
const BLOCK = 1_000;
const SAMPLES = 4096;

// node:crypto returns a Buffer, which is a Uint8Array: handed over as is, without a copy.
const sha256: HashFunction = (data) => crypto.createHash("sha256").update(data).digest();

/** Deterministic pseudo-random 32-byte strings (keys and heads), so runs compare. */
function bytes32(label: string, i: number): Uint8Array {
  return sha256(new TextEncoder().encode(`${label}-${i}`));
}

/** The index's SHA-256: the same hasher, counting its calls (an increment is noise next to a hash). */
let hashCalls = 0;
const countedSha256: HashFunction = (data) => {
  hashCalls++;
  return sha256(data);
};

/** measure() on `op`, also returning the mean SHA-256 calls per call of `op` (counted, not timed). */
async function measureCounted(label: string, op: () => unknown, opts: { seconds: number; batch: number }) {
  let calls = 0;
  const before = hashCalls;
  const rate = await measure(
    label,
    () => {
      calls++;
      return op();
    },
    opts,
  );
  return { rate, hashes: (hashCalls - before) / calls };
}

/** Run the patient-index benchmarks, print the figures and return them. */
export async function benchPatientIndex(seconds = 2): Promise<PatientIndexFigures> {
  console.log(
    `Patient index (sparse Merkle tree), node ${process.version}, ${process.platform}/${process.arch}`,
  );
  const opts = { seconds, batch: 64 };
  const input = new Uint8Array(65).fill(0xab);
  const rawSha256 = await measure("raw SHA-256 (crypto.createHash, 65-byte input)", () => sha256(input), {
    seconds,
    batch: 256,
  });
  const ratio = (rate: number, hashes: number): string =>
    `    = ${(rate / rawSha256).toFixed(4)} x raw SHA-256; ${hashes.toFixed(1)} hashes/op counted, ` +
    `${((100 * rate * hashes) / rawSha256).toFixed(0)}% of the SHA-256 ceiling`;

  const keys = Array.from({ length: PATIENTS }, (_, i) => bytes32("patient", i));
  const lengths = new Array<number>(PATIENTS).fill(1);
  // A distinct head per (patient, length) without hashing, so the timed work is the index's own.
  const value = (i: number): IndexValue => {
    const head = new Uint8Array(32);
    new DataView(head.buffer).setUint32(0, i);
    new DataView(head.buffer).setUint32(4, lengths[i]!);
    return { head, length: lengths[i]! };
  };
  const index = new PatientIndex(countedSha256, new MemoryIndexStore());
  const start = performance.now();
  index.update(keys.map((key, i) => ({ key, value: value(i) })));
  const initialLoad = PATIENTS / ((performance.now() - start) / 1000);
  console.log(
    `initial load of ${formatRate(PATIENTS)} patients in one batch: ${formatRate(initialLoad)} patients/s`,
  );

  const random = (n: number): number => Math.floor(Math.random() * n);
  // A patient's next entry: a new head, the chain one longer.
  const nextEntry = (i: number): IndexChange => {
    lengths[i]!++;
    return { key: keys[i]!, value: value(i) };
  };

  const single = await measureCounted(
    "single update (one patient's new head, one commit)",
    () => index.update([nextEntry(random(PATIENTS))]),
    opts,
  );
  console.log(ratio(single.rate, single.hashes));

  const block = (): IndexChange[] => {
    const chosen = new Set<number>();
    while (chosen.size < BLOCK) chosen.add(random(PATIENTS));
    return [...chosen].map(nextEntry);
  };
  const blocks = await measureCounted(
    `batched update (blocks of ${formatRate(BLOCK)} patients), blocks`,
    () => index.update(block()),
    { seconds, batch: 1 },
  );
  const batchedUpdate = blocks.rate * BLOCK;
  console.log(`    = ${formatRate(batchedUpdate)} patient updates/s`);
  console.log(ratio(batchedUpdate, blocks.hashes / BLOCK));

  const sampleKeys = Array.from({ length: SAMPLES }, () => keys[random(PATIENTS)]!);
  let k = 0;
  const membershipProof = await measure(
    "membership proof generation (lookup)",
    () => index.lookup(sampleKeys[k++ % SAMPLES]!),
    opts,
  );
  console.log(
    `    = ${(membershipProof / rawSha256).toFixed(4)} x raw SHA-256; no hashing, depth + 1 reads per proof`,
  );

  const root = index.root;
  const present = sampleKeys.map((key) => {
    const found = index.lookup(key);
    if (found.value === undefined) throw new Error("a loaded patient is missing");
    return { key, value: found.value, proof: found.proof };
  });
  const membershipVerify = await measure(
    "membership proof verification",
    () => {
      const p = present[k++ % SAMPLES]!;
      verifyMembership(sha256, root, p.key, p.value, p.proof);
    },
    opts,
  );
  const meanDepth = (proofs: readonly (MembershipProof | NonMembershipProof)[]): number =>
    proofs.reduce((sum, p) => sum + p.depth, 0) / proofs.length;
  console.log(ratio(membershipVerify, meanDepth(present.map((p) => p.proof)) + 1));

  const absent = Array.from({ length: SAMPLES }, (_, i) => {
    const key = bytes32("absent", i);
    const found = index.lookup(key);
    if (found.value !== undefined) throw new Error("an absent patient is present");
    return { key, proof: found.proof };
  });
  const nonMembershipVerify = await measure(
    "non-membership proof verification",
    () => {
      const p = absent[k++ % SAMPLES]!;
      verifyNonMembership(sha256, root, p.key, p.proof);
    },
    opts,
  );
  const withLeaf = absent.filter((p) => p.proof.leaf !== null).length / SAMPLES;
  console.log(ratio(nonMembershipVerify, meanDepth(absent.map((p) => p.proof)) + withLeaf));

  const sizes = present.map((p) => 3 + p.proof.bitmap.length + 32 * p.proof.siblings.length);
  const meanSize = sizes.reduce((a, b) => a + b, 0) / SAMPLES;
  const depth = meanDepth(present.map((p) => p.proof));
  console.log(
    `proofs at ${formatRate(PATIENTS)} patients: mean depth ${depth.toFixed(1)}, ` +
      `mean ${meanSize.toFixed(0)} bytes, largest ${Math.max(...sizes)} bytes`,
  );
  return {
    patients: PATIENTS,
    rawSha256,
    initialLoad,
    singleUpdate: single.rate,
    batchedUpdate,
    membershipProof,
    membershipVerify,
    nonMembershipVerify,
    hashesPerOp: { singleUpdate: single.hashes, batchedUpdate: blocks.hashes / BLOCK },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchPatientIndex();
}
