/**
 * Property tests for the RFC 9162 Merkle log, against a reference written plainly from the RFC 9162 section
 * 2.1 definitions (MTH, PATH, SUBPROOF, and the two verification loops on bigints):
 * 1. the incremental tree's root equals MTH for every size, and its proofs equal PATH and SUBPROOF;
 * 2. every proof verifies, and every mutated proof fails with a LedgerError;
 * 3. appends and proofs cost O(log n) hashes and store reads (counted, not timed);
 * 4. trees beyond 2^32 leaves (built virtually) verify, where a 32-bit implementation goes wrong.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { concatBytes, toHex } from "../../src/core/encoding/bytes.ts";
import { isLedgerError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";
import { RFC9162_LEAF_PREFIX, RFC9162_NODE_PREFIX, leafHash, nodeHash } from "../../src/core/merkle/hash.ts";
import type { Sha256 } from "../../src/core/merkle/hash.ts";
import {
  MAX_TREE_SIZE,
  consistencyProofFromNodes,
  inclusionProofFromNodes,
  rootFromInclusionProof,
  rootFromNodes,
  verifyConsistency,
  verifyInclusion,
} from "../../src/core/merkle/proofs.ts";
import type { MerkleNodeReader, NodeId } from "../../src/core/merkle/proofs.ts";
import { MemoryNodeStore, MerkleTree } from "../../src/core/merkle/tree.ts";
import type { MerkleNodeStore } from "../../src/core/merkle/tree.ts";

const sha: Sha256 = (d) => new Uint8Array(createHash("sha256").update(d).digest());

// ---------------------------------------------------------------------------------------------------------
// The reference: RFC 9162 section 2.1 as written, on arrays and bigints, no cleverness.
// ---------------------------------------------------------------------------------------------------------

const refLeaf = (entry: Uint8Array): Uint8Array => sha(concatBytes(new Uint8Array([0]), entry));
const refNode = (l: Uint8Array, r: Uint8Array): Uint8Array => sha(concatBytes(new Uint8Array([1]), l, r));

function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[a:b]) over leaf hashes (section 2.1.1). */
function mth(leaves: readonly Uint8Array[], a = 0, b = leaves.length): Uint8Array {
  const n = b - a;
  if (n === 0) return sha(new Uint8Array(0));
  if (n === 1) return leaves[a]!;
  const k = largestPow2Below(n);
  return refNode(mth(leaves, a, a + k), mth(leaves, a + k, b));
}

/** PATH(m, D[a:b]) (section 2.1.3.1). */
function path(leaves: readonly Uint8Array[], m: number, a: number, b: number): Uint8Array[] {
  const n = b - a;
  if (n === 1) return [];
  const k = largestPow2Below(n);
  if (m < k) return [...path(leaves, m, a, a + k), mth(leaves, a + k, b)];
  return [...path(leaves, m - k, a + k, b), mth(leaves, a, a + k)];
}

/** SUBPROOF(m, D[a:b], flag) (section 2.1.4.1). */
function subproof(
  leaves: readonly Uint8Array[],
  m: number,
  a: number,
  b: number,
  flag: boolean,
): Uint8Array[] {
  const n = b - a;
  if (m === n) return flag ? [] : [mth(leaves, a, b)];
  const k = largestPow2Below(n);
  if (m <= k) return [...subproof(leaves, m, a, a + k, flag), mth(leaves, a + k, b)];
  return [...subproof(leaves, m - k, a + k, b, false), mth(leaves, a, a + k)];
}

/**
 * The left/right moves the section 2.1.3.2 loop makes for (index, size) over a path of `length` hashes, or
 * null where the loop fails. Two (index, size) pairs with the same moves compute the same root from the same
 * proof: that is how the RFC binds the size (through the signed checkpoint, not the proof).
 */
function inclusionMoves(index: bigint, size: bigint, length: number): string | null {
  if (index < 0n || index >= size) return null;
  let fn = index;
  let sn = size - 1n;
  let moves = "";
  for (let i = 0; i < length; i++) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      moves += "L";
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else moves += "R";
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? moves : null;
}

/** The same for the section 2.1.4.2 loop. */
function consistencyMoves(size1: bigint, size2: bigint, length: number): string | null {
  if (size1 <= 0n || size1 > size2 || size2 > MAX_TREE_SIZE) return null;
  if (size1 === size2) return length === 0 ? "=" : null;
  if (length === 0) return null;
  const prepend = (size1 & (size1 - 1n)) === 0n;
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let moves = prepend ? "P" : "F";
  for (let i = 1; i < length + (prepend ? 1 : 0); i++) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      moves += "B";
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else moves += "S";
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? moves : null;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function outcome(fn: () => unknown): ErrorCode | "ok" {
  try {
    fn();
    return "ok";
  } catch (err) {
    if (isLedgerError(err)) return err.code;
    throw err;
  }
}

const hex = (hs: readonly Uint8Array[]): string[] => hs.map(toHex);

function entriesOf(n: number, seed = 0): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => new TextEncoder().encode(`entry ${seed}:${i}`));
}

function flipBit(proof: readonly Uint8Array[], at: number, bit: number): Uint8Array[] {
  return proof.map((h, i) => {
    const c = new Uint8Array(h);
    if (i === at) c[bit >> 3]! ^= 1 << (bit & 7);
    return c;
  });
}

// One shared tree of random-ish leaves; a tree of size n is its prefix (rootAt, proofs at n).
const BIG = 3000;
const bigEntries = entriesOf(BIG, 7);
const bigLeaves = bigEntries.map(refLeaf);
const bigTree = MerkleTree.create(sha);
bigTree.appendMany(bigEntries);

// ---------------------------------------------------------------------------------------------------------

describe("RFC 9162 section 2.1.1 hashing", () => {
  it("uses the 0x00 leaf and 0x01 node prefixes", () => {
    assert.equal(RFC9162_LEAF_PREFIX, 0);
    assert.equal(RFC9162_NODE_PREFIX, 1);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (e, h) => {
          assert.equal(toHex(leafHash(sha, e)), toHex(refLeaf(e)));
          assert.equal(toHex(nodeHash(sha, h, refLeaf(e))), toHex(refNode(h, refLeaf(e))));
        },
      ),
    );
  });

  it("handles entries larger than the reusable leaf buffer", () => {
    const big = new Uint8Array(200_000).fill(7);
    assert.equal(toHex(leafHash(sha, big)), toHex(refLeaf(big)));
  });

  it("refuses node children that are not 32 bytes with a LedgerError", () => {
    const h = sha(new Uint8Array(0));
    assert.equal(
      outcome(() => nodeHash(sha, h.subarray(1), h)),
      "MALFORMED_INPUT",
    );
  });
});

describe("incremental tree against the RFC definitions", () => {
  it("root and rootAt equal MTH for every size up to 600", () => {
    const entries = entriesOf(600, 1);
    const leaves = entries.map(refLeaf);
    const tree = MerkleTree.create(sha);
    assert.equal(toHex(tree.root()), toHex(mth([])));
    for (let n = 1; n <= entries.length; n++) {
      tree.append(entries[n - 1]!);
      assert.equal(toHex(tree.root()), toHex(mth(leaves, 0, n)), `size ${n}`);
    }
    for (let n = 0; n <= entries.length; n++) {
      assert.equal(toHex(tree.rootAt(BigInt(n))), toHex(mth(leaves, 0, n)), `rootAt ${n}`);
    }
  });

  it("any entries, appended one by one, by batch or by leaf hash, give MTH at every size", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 70 }), (entries) => {
        const leaves = entries.map(refLeaf);
        const one = MerkleTree.create(sha);
        const batch = MerkleTree.create(sha);
        const byHash = MerkleTree.create(sha);
        assert.equal(batch.appendMany(entries), 0n);
        entries.forEach((e, i) => {
          assert.equal(one.append(e), BigInt(i));
          assert.equal(byHash.appendLeafHash(refLeaf(e)), BigInt(i));
          assert.equal(toHex(one.root()), toHex(mth(leaves, 0, i + 1)));
        });
        for (const t of [one, batch, byHash]) {
          assert.equal(t.size, BigInt(entries.length));
          assert.equal(toHex(t.root()), toHex(mth(leaves)));
          for (let n = 0; n <= entries.length; n++)
            assert.equal(toHex(t.rootAt(BigInt(n))), toHex(mth(leaves, 0, n)));
        }
      }),
      { numRuns: 60 },
    );
  });

  it("reopens from its store at any size and goes on appending to the same roots", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 50 }), (at, more) => {
        const entries = entriesOf(at + more, 3);
        const store = new MemoryNodeStore();
        const first = MerkleTree.create(sha, store);
        first.appendMany(entries.slice(0, at));
        const reopened = MerkleTree.open(sha, store, BigInt(at));
        assert.equal(toHex(reopened.root()), toHex(first.root()));
        reopened.appendMany(entries.slice(at));
        assert.equal(toHex(reopened.root()), toHex(mth(entries.map(refLeaf))));
      }),
      { numRuns: 40 },
    );
  });

  it("inclusion proofs equal PATH (section 2.1.3.1) and verify, random indices and sizes up to 3000", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: BIG }), fc.nat(), (size, seed) => {
        const index = seed % size;
        const proof = bigTree.inclusionProof(BigInt(index), BigInt(size));
        assert.deepEqual(hex(proof), hex(path(bigLeaves, index, 0, size)));
        const root = bigTree.rootAt(BigInt(size));
        const check = { index: BigInt(index), size: BigInt(size), leafHash: bigLeaves[index]!, proof, root };
        assert.equal(verifyInclusion(sha, check), root);
        assert.equal(toHex(rootFromInclusionProof(sha, check)), toHex(root));
      }),
      { numRuns: 150 },
    );
  });

  it("consistency proofs equal SUBPROOF (section 2.1.4.1) and verify, all pairs up to size 48", () => {
    const leaves = bigLeaves.slice(0, 48);
    for (let n = 1; n <= leaves.length; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = bigTree.consistencyProof(BigInt(m), BigInt(n));
        assert.deepEqual(hex(proof), hex(m === n ? [] : subproof(leaves, m, 0, n, true)), `${m} -> ${n}`);
        const check = {
          size1: BigInt(m),
          size2: BigInt(n),
          root1: mth(leaves, 0, m),
          root2: mth(leaves, 0, n),
        };
        verifyConsistency(sha, { ...check, proof });
      }
    }
  });

  it("consistency proofs equal SUBPROOF and verify, sampled pairs up to size 3000", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: BIG }), fc.integer({ min: 1, max: BIG }), (a, b) => {
        const [m, n] = a <= b ? [a, b] : [b, a];
        const proof = bigTree.consistencyProof(BigInt(m), BigInt(n));
        assert.deepEqual(hex(proof), hex(m === n ? [] : subproof(bigLeaves, m, 0, n, true)));
        const root1 = bigTree.rootAt(BigInt(m));
        const root2 = bigTree.rootAt(BigInt(n));
        assert.equal(
          verifyConsistency(sha, { size1: BigInt(m), size2: BigInt(n), root1, root2, proof }),
          root2,
        );
      }),
      { numRuns: 150 },
    );
  });
});

describe("mutated proofs fail", () => {
  const inclusionCase = fc
    .tuple(fc.integer({ min: 1, max: BIG }), fc.nat())
    .map(([size, seed]) => ({ size: BigInt(size), index: BigInt(seed % size) }));

  it("inclusion: a flipped bit in any hash, the leaf or the root", () => {
    fc.assert(
      fc.property(
        inclusionCase,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        ({ size, index }, which, bit) => {
          const proof = bigTree.inclusionProof(index, size);
          const root = bigTree.rootAt(size);
          const lh = bigLeaves[Number(index)]!;
          const base = { index, size, leafHash: lh, proof, root };
          if (proof.length > 0) {
            const bad = flipBit(proof, which % proof.length, bit);
            assert.equal(
              outcome(() => verifyInclusion(sha, { ...base, proof: bad })),
              "PROOF_INVALID",
            );
          }
          const badLeaf = flipBit([lh], 0, bit)[0]!;
          assert.equal(
            outcome(() => verifyInclusion(sha, { ...base, leafHash: badLeaf })),
            "PROOF_INVALID",
          );
          const badRoot = flipBit([root], 0, bit)[0]!;
          assert.equal(
            outcome(() => verifyInclusion(sha, { ...base, root: badRoot })),
            "PROOF_INVALID",
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("inclusion: a hash dropped, added or duplicated anywhere", () => {
    fc.assert(
      fc.property(inclusionCase, fc.nat(), ({ size, index }, where) => {
        const proof = bigTree.inclusionProof(index, size);
        const root = bigTree.rootAt(size);
        const base = { index, size, leafHash: bigLeaves[Number(index)]!, proof, root };
        const at = where % (proof.length + 1);
        const variants: Uint8Array[][] = [
          [...proof.slice(0, at), sha(new Uint8Array([1])), ...proof.slice(at)],
          [...proof.slice(0, at), root, ...proof.slice(at)],
        ];
        if (proof.length > 0) {
          const d = at % proof.length;
          variants.push([...proof.slice(0, d), ...proof.slice(d + 1)]);
          variants.push([...proof.slice(0, d + 1), ...proof.slice(d)]);
        }
        for (const bad of variants) {
          assert.equal(
            outcome(() => verifyInclusion(sha, { ...base, proof: bad })),
            "PROOF_INVALID",
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  it("inclusion: a wrong index fails; a wrong size fails unless the RFC loop makes the same moves", () => {
    fc.assert(
      fc.property(inclusionCase, fc.bigInt({ min: 0n, max: 2n * BigInt(BIG) }), ({ size, index }, other) => {
        const proof = bigTree.inclusionProof(index, size);
        const root = bigTree.rootAt(size);
        const base = { index, size, leafHash: bigLeaves[Number(index)]!, proof, root };
        const moves = inclusionMoves(index, size, proof.length);
        assert.notEqual(moves, null);
        for (const probe of [
          { ...base, index: other },
          { ...base, index: index ^ 2n },
          { ...base, index: index + 1n },
          { ...base, index: index - 1n },
        ]) {
          if (probe.index === index || probe.index < 0n) continue;
          const got = outcome(() => verifyInclusion(sha, probe));
          assert.notEqual(got, "ok", `index ${probe.index} instead of ${index} in ${size}`);
        }
        for (const probe of [
          { ...base, size: other },
          { ...base, size: size * 2n },
          { ...base, size: size / 2n },
          { ...base, size: size + 1n },
          { ...base, size: size - 1n },
        ]) {
          if (probe.size === size) continue;
          const got = outcome(() => verifyInclusion(sha, probe));
          const same = inclusionMoves(index, probe.size, proof.length) === moves;
          assert.equal(got === "ok", same, `size ${probe.size} instead of ${size} for leaf ${index}: ${got}`);
        }
      }),
      { numRuns: 150 },
    );
  });

  const consistencyCase = fc
    .tuple(fc.integer({ min: 1, max: BIG }), fc.integer({ min: 1, max: BIG }))
    .filter(([a, b]) => a !== b)
    .map(([a, b]) =>
      a < b ? { size1: BigInt(a), size2: BigInt(b) } : { size1: BigInt(b), size2: BigInt(a) },
    );

  it("consistency: a flipped bit, a hash dropped, added or duplicated, swapped or wrong roots", () => {
    fc.assert(
      fc.property(
        consistencyCase,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        ({ size1, size2 }, where, bit) => {
          const proof = bigTree.consistencyProof(size1, size2);
          const root1 = bigTree.rootAt(size1);
          const root2 = bigTree.rootAt(size2);
          const base = { size1, size2, root1, root2, proof };
          assert.ok(proof.length > 0);
          const at = where % proof.length;
          const variants: Uint8Array[][] = [
            flipBit(proof, at, bit),
            [...proof.slice(0, at), ...proof.slice(at + 1)],
            [...proof.slice(0, at + 1), ...proof.slice(at)],
            [...proof.slice(0, at), sha(new Uint8Array([2])), ...proof.slice(at)],
            [...proof, root1],
            [root2, ...proof],
            [],
          ];
          for (const bad of variants) {
            assert.equal(
              outcome(() => verifyConsistency(sha, { ...base, proof: bad })),
              "PROOF_INVALID",
            );
          }
          for (const probe of [
            { ...base, root1: root2, root2: root1 },
            { ...base, root1: flipBit([root1], 0, bit)[0]! },
            { ...base, root2: flipBit([root2], 0, bit)[0]! },
          ]) {
            assert.equal(
              outcome(() => verifyConsistency(sha, probe)),
              "PROOF_INVALID",
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("consistency: a wrong size fails unless the RFC loop makes the same moves", () => {
    fc.assert(
      fc.property(
        consistencyCase,
        fc.bigInt({ min: 0n, max: 2n * BigInt(BIG) }),
        ({ size1, size2 }, other) => {
          const proof = bigTree.consistencyProof(size1, size2);
          const base = { size1, size2, root1: bigTree.rootAt(size1), root2: bigTree.rootAt(size2), proof };
          const moves = consistencyMoves(size1, size2, proof.length);
          assert.notEqual(moves, null);
          const probes = [other, size1 + 1n, size1 - 1n, size1 ^ 2n, size1 * 2n, size1 / 2n].flatMap((s) => [
            { ...base, size1: s },
            { ...base, size2: s === size1 ? size2 + 1n : s },
          ]);
          probes.push({ ...base, size2: size2 * 2n }, { ...base, size2: size2 / 2n });
          for (const probe of probes) {
            if (probe.size1 === size1 && probe.size2 === size2) continue;
            const got = outcome(() => verifyConsistency(sha, probe));
            const same = consistencyMoves(probe.size1, probe.size2, proof.length) === moves;
            assert.equal(
              got === "ok",
              same,
              `${probe.size1} -> ${probe.size2} instead of ${size1} -> ${size2}: ${got}`,
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("hostile input is refused with LedgerError codes", () => {
  const root = bigTree.rootAt(10n);
  const proof = bigTree.inclusionProof(3n, 10n);
  const base = { index: 3n, size: 10n, leafHash: bigLeaves[3]!, proof, root };

  it("inclusion", () => {
    const bad: [unknown, ErrorCode][] = [
      [{ ...base, index: 10n }, "INDEX_OUT_OF_RANGE"],
      [{ ...base, size: 0n }, "INDEX_OUT_OF_RANGE"],
      [{ ...base, index: -1n }, "INVALID_ARGUMENT"],
      [{ ...base, size: 1n << 64n }, "INVALID_ARGUMENT"],
      [{ ...base, index: 3 }, "INVALID_ARGUMENT"],
      [{ ...base, size: "10" }, "INVALID_ARGUMENT"],
      [{ ...base, leafHash: new Uint8Array(31) }, "MALFORMED_INPUT"],
      [{ ...base, leafHash: "aa" }, "MALFORMED_INPUT"],
      [{ ...base, root: new Uint8Array(33) }, "MALFORMED_INPUT"],
      [{ ...base, root: undefined }, "MALFORMED_INPUT"],
      [{ ...base, proof: [...proof.slice(1), new Uint8Array(32 + 1)] }, "MALFORMED_INPUT"],
      [{ ...base, proof: [...proof.slice(1), null] }, "MALFORMED_INPUT"],
      [{ ...base, proof: "not an array" }, "MALFORMED_INPUT"],
      [{ ...base, proof: null }, "MALFORMED_INPUT"],
      [{ ...base, proof: Array.from({ length: 65 }, () => root) }, "PROOF_INVALID"],
      [{ ...base, proof: Array.from({ length: 64 }, () => root) }, "PROOF_INVALID"],
    ];
    for (const [check, code] of bad) {
      assert.equal(
        outcome(() => verifyInclusion(sha, check as typeof base)),
        code,
        String(code),
      );
    }
  });

  it("consistency", () => {
    const c = {
      size1: 4n,
      size2: 10n,
      root1: bigTree.rootAt(4n),
      root2: root,
      proof: bigTree.consistencyProof(4n, 10n),
    };
    verifyConsistency(sha, c);
    const bad: [unknown, ErrorCode][] = [
      [{ ...c, size1: 11n }, "INVALID_ARGUMENT"],
      [{ ...c, size1: 0n }, "INVALID_ARGUMENT"],
      [{ ...c, size1: 0n, size2: 0n, proof: [] }, "INVALID_ARGUMENT"],
      [{ ...c, size2: 1n << 64n }, "INVALID_ARGUMENT"],
      [{ ...c, size1: 4 }, "INVALID_ARGUMENT"],
      [{ ...c, root1: new Uint8Array(0) }, "MALFORMED_INPUT"],
      [{ ...c, root2: [1, 2, 3] }, "MALFORMED_INPUT"],
      [{ ...c, proof: [new Uint8Array(16)] }, "MALFORMED_INPUT"],
      [{ ...c, proof: {} }, "MALFORMED_INPUT"],
      [{ ...c, proof: Array.from({ length: 65 }, () => root) }, "PROOF_INVALID"],
      [{ ...c, proof: Array.from({ length: 66 }, () => root) }, "PROOF_INVALID"],
      [{ ...c, size1: 10n, root1: root }, "PROOF_INVALID"],
      [{ ...c, size1: 10n, proof: [] }, "PROOF_INVALID"],
    ];
    for (const [check, code] of bad) {
      assert.equal(
        outcome(() => verifyConsistency(sha, check as typeof c)),
        code,
        String(code),
      );
    }
  });

  it("tree and store", () => {
    const tree = MerkleTree.create(sha);
    tree.appendMany(entriesOf(5));
    const bad: [() => unknown, ErrorCode][] = [
      [() => tree.inclusionProof(5n), "INDEX_OUT_OF_RANGE"],
      [() => tree.inclusionProof(0n, 6n), "INDEX_OUT_OF_RANGE"],
      [() => tree.consistencyProof(3n, 6n), "INDEX_OUT_OF_RANGE"],
      [() => tree.consistencyProof(4n, 3n), "INVALID_ARGUMENT"],
      [() => tree.rootAt(6n), "INDEX_OUT_OF_RANGE"],
      [() => tree.rootAt(-1n), "INVALID_ARGUMENT"],
      [() => tree.leafHash(5n), "INDEX_OUT_OF_RANGE"],
      [() => tree.appendLeafHash(new Uint8Array(31)), "MALFORMED_INPUT"],
      [() => tree.append("entry" as unknown as Uint8Array), "MALFORMED_INPUT"],
      [() => tree.appendMany([new Uint8Array(1), "x" as unknown as Uint8Array]), "MALFORMED_INPUT"],
      [() => MerkleTree.open(sha, new MemoryNodeStore(), 5n), "INCONSISTENT_TREE"],
      [() => MerkleTree.open(sha, new MemoryNodeStore(), -1n), "INVALID_ARGUMENT"],
      [() => new MemoryNodeStore().put(64, 0n, root), "INVALID_ARGUMENT"],
      [() => new MemoryNodeStore().put(0, -1n, root), "INVALID_ARGUMENT"],
      [() => new MemoryNodeStore().put(0, 1n << 47n, root), "TOO_LARGE"],
      [() => new MemoryNodeStore().put(0, 0n, new Uint8Array(3)), "MALFORMED_INPUT"],
      [() => inclusionProofFromNodes(sha, new MemoryNodeStore(), 0n, 2n), "INCONSISTENT_TREE"],
      [() => rootFromNodes(sha, { get: () => new Uint8Array(31) }, 3n), "INCONSISTENT_TREE"],
    ];
    for (const [fn, code] of bad) assert.equal(outcome(fn), code, fn.toString());
    assert.equal(tree.size, 5n, "refused appends changed nothing");
  });

  it("the store refuses to overwrite a node with a different hash, and copies what it hands out", () => {
    const store = new MemoryNodeStore();
    const h = sha(new Uint8Array([1]));
    store.put(3, 5n, h);
    store.put(3, 5n, new Uint8Array(h));
    assert.equal(
      outcome(() => store.put(3, 5n, sha(new Uint8Array([2])))),
      "INCONSISTENT_TREE",
    );
    assert.equal(store.get(3, 4n), undefined);
    assert.equal(store.get(2, 5n), undefined);
    assert.equal(store.get(3, 1n << 60n), undefined);
    const tree = MerkleTree.create(sha);
    tree.appendMany(entriesOf(4));
    const before = toHex(tree.rootAt(2n));
    const p = tree.inclusionProof(0n, 2n);
    p[0]!.fill(0);
    tree.root().fill(0);
    assert.equal(toHex(tree.rootAt(2n)), before);
  });
});

// ---------------------------------------------------------------------------------------------------------

class CountingStore implements MerkleNodeStore {
  reads = 0;
  writes = 0;
  batches = 0;
  readonly inner = new MemoryNodeStore();
  get(level: number, index: bigint): Uint8Array | undefined {
    this.reads++;
    return this.inner.get(level, index);
  }
  put(level: number, index: bigint, hash: Uint8Array): void {
    this.writes++;
    this.inner.put(level, index, hash);
  }
}

class BatchingStore extends CountingStore {
  getMany(ids: readonly NodeId[]): (Uint8Array | undefined)[] {
    this.batches++;
    return ids.map((id) => this.get(id.level, id.index));
  }
}

describe("cost: O(log n) hashes and store accesses (counted)", () => {
  it("each of 100,000 appends costs at most log2(n) + 2 hashes, log2(n) + 2 writes and no reads", () => {
    let hashes = 0;
    const counting: Sha256 = (d) => {
      hashes++;
      return sha(d);
    };
    const store = new CountingStore();
    const tree = MerkleTree.create(counting, store);
    const entry = new Uint8Array(40);
    const N = 100_000;
    let worstHashes = 0;
    for (let n = 1; n <= N; n++) {
      const [h0, w0, r0] = [hashes, store.writes, store.reads];
      entry[0] = n & 255;
      entry[1] = n >> 8;
      tree.append(entry);
      const bound = Math.log2(n) + 2;
      const dh = hashes - h0;
      worstHashes = Math.max(worstHashes, dh);
      if (dh > bound || store.writes - w0 > bound || store.reads - r0 > 0) {
        assert.fail(`append ${n}: ${dh} hashes, ${store.writes - w0} writes, ${store.reads - r0} reads`);
      }
    }
    // Amortised: one leaf hash plus one node hash per append. Only complete subtrees are stored, so a tree of
    // n leaves holds n leaf hashes and n - popcount(n) node hashes, each hashed once.
    const popcount = N.toString(2).replaceAll("0", "").length;
    assert.equal(hashes, 2 * N - popcount);
    assert.equal(store.writes, 2 * N - popcount);
    assert.equal(worstHashes, 1 + Math.floor(Math.log2(N)));

    // Proofs and past roots read O(log n) nodes: at most 2 per level.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: N }), fc.integer({ min: 1, max: N }), fc.nat(), (a, b, seed) => {
        const [m, n] = a <= b ? [a, b] : [b, a];
        const levels = Math.ceil(Math.log2(n)) + 1;
        let r0 = store.reads;
        let h0 = hashes;
        tree.inclusionProof(BigInt(seed % n), BigInt(n));
        assert.ok(store.reads - r0 <= 2 * levels, `inclusion proof read ${store.reads - r0} nodes, n=${n}`);
        assert.ok(hashes - h0 <= levels);
        r0 = store.reads;
        h0 = hashes;
        tree.consistencyProof(BigInt(m), BigInt(n));
        assert.ok(store.reads - r0 <= 2 * levels, `consistency proof read ${store.reads - r0} nodes`);
        assert.ok(hashes - h0 <= levels);
        r0 = store.reads;
        tree.rootAt(BigInt(m));
        assert.ok(store.reads - r0 <= levels);
      }),
      { numRuns: 300 },
    );
  });

  it("reopening reads one node per set bit of the size; batching readers get one call per proof", () => {
    const store = new BatchingStore();
    const tree = MerkleTree.create(sha, store);
    tree.appendMany(entriesOf(1000));
    const r0 = store.reads;
    const reopened = MerkleTree.open(sha, store, 1000n);
    assert.equal(store.reads - r0, 6); // 1000 = 0b1111101000
    assert.equal(toHex(reopened.root()), toHex(tree.root()));
    const b0 = store.batches;
    tree.inclusionProof(123n, 999n);
    tree.consistencyProof(321n, 999n);
    assert.equal(store.batches - b0, 2);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Beyond 2^32 leaves: a virtual tree whose leaves all equal `filler` except one, `special` at `specialIndex`.
// A perfect subtree without the special leaf hashes to P[level] (P[0] = filler, P[l+1] = H(P[l], P[l])), so
// every node is computed in O(level) hashes without materialising the tree.
// ---------------------------------------------------------------------------------------------------------

class VirtualStore implements MerkleNodeStore, MerkleNodeReader {
  private readonly perfect: Uint8Array[] = [];
  private readonly special = new Map<string, Uint8Array>();
  private readonly written = new Map<string, Uint8Array>();
  private readonly size: bigint;
  private readonly filler: Uint8Array;
  private readonly specialIndex: bigint;
  private readonly specialHash: Uint8Array;
  constructor(size: bigint, filler: Uint8Array, specialIndex: bigint, specialHash: Uint8Array) {
    this.size = size;
    this.filler = filler;
    this.specialIndex = specialIndex;
    this.specialHash = specialHash;
    this.perfect.push(filler);
    for (let l = 1; l <= 64; l++) this.perfect.push(refNode(this.perfect[l - 1]!, this.perfect[l - 1]!));
  }
  get(level: number, index: bigint): Uint8Array | undefined {
    const key = `${level}/${index}`;
    const w = this.written.get(key);
    if (w) return w;
    const width = 1n << BigInt(level);
    if ((index + 1n) * width > this.size) return undefined;
    return this.hashOf(level, index);
  }
  put(level: number, index: bigint, hash: Uint8Array): void {
    this.written.set(`${level}/${index}`, hash);
  }
  /** MTH(D[a:b]) of the virtual leaves, straight from the RFC definition, memoised by range. */
  mth(a: bigint, b: bigint): Uint8Array {
    const n = b - a;
    if (n === 1n) return a === this.specialIndex ? this.specialHash : this.filler;
    if (this.specialIndex < a || this.specialIndex >= b) {
      if ((n & (n - 1n)) === 0n) return this.perfect[n.toString(2).length - 1]!;
    }
    let k = 1n;
    while (k * 2n < n) k *= 2n;
    const key = `m${a}/${b}`;
    const known = this.special.get(key);
    if (known) return known;
    const h = refNode(this.mth(a, a + k), this.mth(a + k, b));
    this.special.set(key, h);
    return h;
  }
  private hashOf(level: number, index: bigint): Uint8Array {
    const width = 1n << BigInt(level);
    return this.mth(index * width, (index + 1n) * width);
  }
}

/** PATH(m, D[a:b]) (section 2.1.3.1) over the virtual tree. */
function vpath(v: VirtualStore, m: bigint, a: bigint, b: bigint): Uint8Array[] {
  const n = b - a;
  if (n === 1n) return [];
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  if (m < k) return [...vpath(v, m, a, a + k), v.mth(a + k, b)];
  return [...vpath(v, m - k, a + k, b), v.mth(a, a + k)];
}

/** SUBPROOF(m, D[a:b], flag) (section 2.1.4.1) over the virtual tree. */
function vsubproof(v: VirtualStore, m: bigint, a: bigint, b: bigint, flag: boolean): Uint8Array[] {
  const n = b - a;
  if (m === n) return flag ? [] : [v.mth(a, b)];
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  if (m <= k) return [...vsubproof(v, m, a, a + k, flag), v.mth(a + k, b)];
  return [...vsubproof(v, m - k, a + k, b, false), v.mth(a, a + k)];
}

/** Section 2.1.3.2 as a careless port would write it, with JavaScript's 32-bit bitwise operators. */
function naive32VerifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      r = refNode(p, r);
      if (!(fn & 1)) while (!(fn & 1) && fn !== 0) [fn, sn] = [fn >>> 1, sn >>> 1];
    } else r = refNode(r, p);
    [fn, sn] = [fn >>> 1, sn >>> 1];
  }
  return sn === 0 && toHex(r) === toHex(root);
}

describe("tree sizes beyond 2^32 (virtual trees)", () => {
  const filler = refLeaf(new TextEncoder().encode("filler"));
  const special = refLeaf(new TextEncoder().encode("the one that matters"));
  const cases: [string, bigint, bigint][] = [
    ["2^32 + 5 leaves, leaf 2^32 + 1", (1n << 32n) + 5n, (1n << 32n) + 1n],
    ["2^40 + 3 leaves, leaf 2^32 + 1", (1n << 40n) + 3n, (1n << 32n) + 1n],
    ["2^40 + 3 leaves, the last leaf", (1n << 40n) + 3n, (1n << 40n) + 2n],
    ["2^53 + 12345 leaves, leaf 2^53 + 7", (1n << 53n) + 12345n, (1n << 53n) + 7n],
    ["2^64 - 1 leaves, leaf 2^63 + 1", MAX_TREE_SIZE, (1n << 63n) + 1n],
  ];

  for (const [name, size, index] of cases) {
    it(`inclusion: ${name}`, () => {
      const v = new VirtualStore(size, filler, index, special);
      const root = v.mth(0n, size);
      assert.equal(toHex(rootFromNodes(sha, v, size)), toHex(root));
      const proof = inclusionProofFromNodes(sha, v, index, size);
      assert.deepEqual(hex(proof), hex(vpath(v, index, 0n, size)));
      assert.equal(verifyInclusion(sha, { index, size, leafHash: special, proof, root }), root);
      // What 32-bit truncation would ask about instead, and a neighbour: both fail.
      for (const wrong of [index & 0xffffffffn, index - 1n]) {
        const got = outcome(() =>
          verifyInclusion(sha, { index: wrong, size, leafHash: special, proof, root }),
        );
        assert.equal(got, "PROOF_INVALID", `index ${wrong}`);
      }
      if (size <= BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.equal(naive32VerifyInclusion(Number(index), Number(size), special, proof, root), false);
      }
    });
  }

  const pairs: [bigint, bigint][] = [
    [(1n << 32n) + 5n, (1n << 40n) + 3n],
    [1n << 32n, (1n << 32n) + 1n],
    [(1n << 32n) - 1n, (1n << 33n) + 1n],
    [3n, (1n << 40n) + 3n],
    [(1n << 63n) + 5n, MAX_TREE_SIZE],
  ];
  for (const [size1, size2] of pairs) {
    it(`consistency: ${size1} -> ${size2}`, () => {
      const v = new VirtualStore(size2, filler, size1 - 1n, special);
      const root1 = v.mth(0n, size1);
      const root2 = v.mth(0n, size2);
      const proof = consistencyProofFromNodes(sha, v, size1, size2);
      assert.deepEqual(hex(proof), hex(vsubproof(v, size1, 0n, size2, true)));
      assert.equal(verifyConsistency(sha, { size1, size2, root1, root2, proof }), root2);
      const truncated = { size1: size1 & 0xffffffffn, size2: size2 & 0xffffffffn, root1, root2, proof };
      assert.notEqual(
        outcome(() => verifyConsistency(sha, truncated)),
        "ok",
      );
    });
  }

  it("the incremental tree reopens at 2^40 + 3 leaves and appends, proves and roots past 2^32", () => {
    const size = (1n << 40n) + 3n;
    const v = new VirtualStore(size, filler, (1n << 32n) + 1n, special);
    const tree = MerkleTree.open(sha, v, size);
    assert.equal(toHex(tree.root()), toHex(v.mth(0n, size)));
    const extra = [new TextEncoder().encode("after"), new TextEncoder().encode("more")];
    tree.appendMany(extra);
    // The grown tree: the virtual leaves followed by the two new ones, by the RFC definition.
    const grown = new VirtualStore(size, filler, (1n << 32n) + 1n, special);
    const newLeaves = extra.map(refLeaf);
    const root = refNode(
      grown.mth(0n, 1n << 40n),
      refNode(refNode(filler, filler), refNode(filler, newLeaves[0]!)),
    );
    const withSecond = refNode(
      refNode(refNode(filler, filler), refNode(filler, newLeaves[0]!)),
      newLeaves[1]!,
    );
    const expected = refNode(grown.mth(0n, 1n << 40n), withSecond);
    assert.equal(toHex(tree.rootAt(size + 1n)), toHex(root));
    assert.equal(toHex(tree.root()), toHex(expected));
    const last = size + 1n;
    const proof = tree.inclusionProof(last, size + 2n);
    verifyInclusion(sha, { index: last, size: size + 2n, leafHash: newLeaves[1]!, proof, root: expected });
    const cproof = tree.consistencyProof((1n << 32n) + 9n, size + 2n);
    verifyConsistency(sha, {
      size1: (1n << 32n) + 9n,
      size2: size + 2n,
      root1: grown.mth(0n, (1n << 32n) + 9n),
      root2: expected,
      proof: cproof,
    });
  });
});
