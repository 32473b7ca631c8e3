// The verifiable patient index: regression vectors cross-checked by a naive reference, property tests
// against a plain Map model, old roots, operation counts, atomicity and the store audit.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { isLedgerError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";
import {
  EMPTY_HASH,
  MemoryIndexStore,
  PatientIndex,
  decodeIndexProof,
  decodeIndexValue,
  encodeIndexProof,
  encodeIndexValue,
  indexProofFromJson,
  indexProofToJson,
  leafHash,
  patientIndexKey,
  verifyMembership,
  verifyNonMembership,
} from "../../src/core/patient-index/index.ts";
import type { IndexBatch, IndexValue, PatientIndexStore } from "../../src/core/patient-index/index.ts";

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function countingHash(): { hash: (data: Uint8Array) => Uint8Array; calls: () => number } {
  let calls = 0;
  const hash = (data: Uint8Array): Uint8Array => {
    calls++;
    return sha256(data);
  };
  return { hash, calls: () => calls };
}

/** A memory store that counts reads and can serve a replaced body for a node (to corrupt it). */
class TestStore implements PatientIndexStore {
  readonly inner = new MemoryIndexStore();
  readonly overrides = new Map<string, Uint8Array>();
  reads = 0;
  failWrites = false;

  get(hash: Uint8Array): Uint8Array | undefined {
    this.reads++;
    return this.overrides.get(hex(hash)) ?? this.inner.get(hash);
  }

  writeBatch(batch: IndexBatch): void {
    if (this.failWrites) throw new Error("disk full");
    this.inner.writeBatch(batch);
  }

  currentRoot(): Uint8Array | undefined {
    return this.inner.currentRoot();
  }
}

function refuses(fn: () => unknown, code: ErrorCode, message?: string): void {
  assert.throws(fn, (err: unknown) => isLedgerError(err, code), message ?? `expected LedgerError ${code}`);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function labelled(label: string): Uint8Array {
  return sha256(new TextEncoder().encode(label));
}

/**
 * The root straight from the definition, over a plain list, sharing no code with the index:
 * no entry -> 32 zero bytes; one entry -> SHA-256(0x02 || key || head || length as u64be);
 * more -> SHA-256(0x03 || root(entries with key bit d = 0) || root(entries with key bit d = 1)).
 */
function naiveRoot(entries: Iterable<readonly [Uint8Array, IndexValue]>): string {
  const digest = (...parts: Buffer[]): Buffer => createHash("sha256").update(Buffer.concat(parts)).digest();
  const bit = (key: Buffer, d: number): number => (key.readUInt8(Math.floor(d / 8)) >>> (7 - (d % 8))) & 1;
  type E = { key: Buffer; value: IndexValue };
  const rec = (subset: E[], d: number): Buffer => {
    if (subset.length === 0) return Buffer.alloc(32);
    if (subset.length === 1) {
      const length = Buffer.alloc(8);
      length.writeBigUInt64BE(BigInt(subset[0]!.value.length));
      return digest(Buffer.from([2]), subset[0]!.key, Buffer.from(subset[0]!.value.head), length);
    }
    assert.ok(d < 256, "naive reference: duplicate keys");
    const zero = subset.filter((e) => bit(e.key, d) === 0);
    const one = subset.filter((e) => bit(e.key, d) === 1);
    return digest(Buffer.from([3]), rec(zero, d + 1), rec(one, d + 1));
  };
  return rec(
    [...entries].map(([key, value]) => ({ key: Buffer.from(key), value })),
    0,
  ).toString("hex");
}

/** Check every proof the index gives for `keys` under `root` against the model, in all three forms. */
function checkProofs(
  index: PatientIndex,
  root: Uint8Array,
  model: Map<string, IndexValue>,
  keys: Uint8Array[],
) {
  for (const key of keys) {
    const expected = model.get(hex(key));
    const found = index.lookup(key, root);
    assert.deepEqual(found.value, expected);
    // The binary and JSON forms carry the same proof (so it verifies the same after a round trip).
    assert.deepEqual(decodeIndexProof(encodeIndexProof(found.proof)), found.proof);
    assert.deepEqual(
      indexProofFromJson(JSON.parse(JSON.stringify(indexProofToJson(found.proof)))),
      found.proof,
    );
    if (found.value !== undefined) {
      assert.equal(found.proof.type, "membership");
      verifyMembership(sha256, root, key, found.value, found.proof);
    } else {
      assert.equal(found.proof.type, "non-membership");
      verifyNonMembership(sha256, root, key, found.proof);
    }
  }
}

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
// Plain objects (fast-check's records have a null prototype, which deepEqual would tell apart).
const valueArb: fc.Arbitrary<IndexValue> = fc
  .tuple(key32, fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constant(Number.MAX_SAFE_INTEGER)))
  .map(([head, length]) => ({ head, length }));

/**
 * A pool of keys: random ones plus near-copies of them that differ in a single chosen bit, so paths share
 * long prefixes (down to a last-bit difference, a leaf at depth 256).
 */
const keyPool: fc.Arbitrary<Uint8Array[]> = fc
  .tuple(
    fc.array(key32, { minLength: 1, maxLength: 8 }),
    fc.array(fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constant(255))), {
      maxLength: 8,
    }),
  )
  .map(([bases, flips]) => {
    const pool = new Map<string, Uint8Array>();
    for (const b of bases) pool.set(hex(b), b);
    for (const [which, bit] of flips) {
      const copy = bases[which % bases.length]!.slice();
      copy[bit >> 3]! ^= 0x80 >> (bit & 7);
      pool.set(hex(copy), copy);
    }
    return [...pool.values()];
  });

describe("patient index: hashing and values", () => {
  it("derives the key as SHA-256(0x04 || UTF-8 id), refusing ids with two encodings or out of bounds", () => {
    const expected = createHash("sha256")
      .update(Buffer.from([4]))
      .update("patient-7f3a", "utf8")
      .digest();
    assert.equal(hex(patientIndexKey(sha256, "patient-7f3a")), expected.toString("hex"));
    assert.deepEqual(patientIndexKey(sha256, new TextEncoder().encode("é")), patientIndexKey(sha256, "é"));
    refuses(() => patientIndexKey(sha256, "a\ud800"), "INVALID_STRING");
    refuses(() => patientIndexKey(sha256, ""), "INVALID_ARGUMENT");
    refuses(() => patientIndexKey(sha256, "x".repeat(257)), "INVALID_ARGUMENT");
    refuses(() => patientIndexKey(sha256, 42 as unknown as string), "INVALID_ARGUMENT");
  });

  it("lays a value out as head (32) || length (u64 big-endian) and refuses anything else", () => {
    const head = labelled("head");
    const bytes = encodeIndexValue({ head, length: 258 });
    assert.equal(hex(bytes), hex(head) + "0000000000000102");
    assert.deepEqual(decodeIndexValue(bytes), { head, length: 258 });
    const max = encodeIndexValue({ head, length: Number.MAX_SAFE_INTEGER });
    assert.equal(hex(max.subarray(32)), "001fffffffffffff");
    for (const length of [0, -1, 1.5, 2 ** 53, NaN, "1"]) {
      refuses(() => encodeIndexValue({ head, length } as IndexValue), "INVALID_ARGUMENT", String(length));
    }
    refuses(() => encodeIndexValue({ head: head.subarray(1), length: 1 }), "INVALID_ARGUMENT");
    refuses(() => encodeIndexValue(null as unknown as IndexValue), "INVALID_ARGUMENT");
    refuses(() => decodeIndexValue(bytes.subarray(1)), "MALFORMED_INPUT");
    refuses(() => decodeIndexValue(new Uint8Array(41)), "MALFORMED_INPUT");
    refuses(() => decodeIndexValue(new Uint8Array(40)), "MALFORMED_INPUT");
    const tooLong = bytes.slice();
    tooLong.set([0, 0x20, 0, 0, 0, 0, 0, 0], 32);
    refuses(() => decodeIndexValue(tooLong), "MALFORMED_INPUT");
  });
});

describe("patient index: regression vectors", () => {
  // Eight patients "patient-0".."patient-7" with head SHA-256("head-i") and length i + 1. The root was
  // computed once by this implementation and is checked against the naive reference on every run.
  const VECTOR_ROOT = "254c23fbe3fc90494ef6d7af38ccb09b2263bc2864ac86cae267f1836a41cd50";
  const vectorEntries = Array.from(
    { length: 8 },
    (_, i) =>
      [patientIndexKey(sha256, `patient-${i}`), { head: labelled(`head-${i}`), length: i + 1 }] as const,
  );

  it("the empty index has the all-zero root; one entry's root is its leaf hash", () => {
    const index = new PatientIndex(sha256, new MemoryIndexStore());
    assert.deepEqual(index.root, EMPTY_HASH);
    assert.equal(naiveRoot([]), hex(EMPTY_HASH));
    const [key, value] = vectorEntries[0]!;
    index.set(key, value);
    assert.equal(hex(index.root), hex(leafHash(sha256, key, encodeIndexValue(value))));
    assert.equal(hex(index.root), naiveRoot([[key, value]]));
  });

  it("a fixed set of eight patients gives a fixed root, equal to the naive reference", () => {
    const index = new PatientIndex(sha256, new MemoryIndexStore());
    index.update(vectorEntries.map(([key, value]) => ({ key, value })));
    assert.equal(hex(index.root), naiveRoot(vectorEntries));
    assert.equal(hex(index.root), VECTOR_ROOT);
  });

  it("two keys differing only in their last bit sit at depth 256", () => {
    const a = labelled("deep");
    const b = a.slice();
    b[31]! ^= 1;
    const value = { head: labelled("h"), length: 1 };
    const index = new PatientIndex(sha256, new MemoryIndexStore());
    index.update([
      { key: a, value },
      { key: b, value },
    ]);
    const found = index.lookup(a);
    assert.equal(found.proof.depth, 256);
    assert.equal(found.proof.siblings.length, 1);
    assert.equal(
      hex(index.root),
      naiveRoot([
        [a, value],
        [b, value],
      ]),
    );
    verifyMembership(sha256, index.root, a, value, found.proof as never);
    assert.equal(index.audit(), 2);
  });
});

describe("patient index: properties against a Map model", () => {
  it("roots, proofs, old roots, entries and audit agree with the model after every batch", () => {
    fc.assert(
      fc.property(
        keyPool,
        fc.array(fc.array(fc.tuple(fc.nat(), fc.option(valueArb, { freq: 4 })), { maxLength: 12 }), {
          minLength: 1,
          maxLength: 8,
        }),
        key32,
        (pool, batches, outsider) => {
          const index = new PatientIndex(sha256, new MemoryIndexStore());
          const model = new Map<string, IndexValue>();
          const history: { root: Uint8Array; model: Map<string, IndexValue> }[] = [];
          for (const batch of batches) {
            // One change per key in a batch (the index refuses duplicates): the last one wins.
            const changes = new Map<string, { key: Uint8Array; value: IndexValue | null }>();
            for (const [which, value] of batch) {
              const key = pool[which % pool.length]!;
              changes.set(hex(key), { key, value });
            }
            index.update(changes.values());
            for (const [k, { value }] of changes) {
              if (value === null) model.delete(k);
              else model.set(k, value);
            }
            const root = index.root;
            const entries = pool
              .filter((k) => model.has(hex(k)))
              .map((k) => [k, model.get(hex(k))!] as const);
            assert.equal(hex(root), naiveRoot(entries));

            // Same set, other orders and batchings: the same root.
            const oneBatch = new PatientIndex(sha256, new MemoryIndexStore());
            oneBatch.update([...entries].reverse().map(([key, value]) => ({ key, value })));
            assert.deepEqual(oneBatch.root, root);
            const oneByOne = new PatientIndex(sha256, new MemoryIndexStore());
            for (const [key, value] of [...entries].reverse()) oneByOne.set(key, value);
            assert.deepEqual(oneByOne.root, root);

            checkProofs(index, root, model, [...pool, outsider]);
            assert.equal(index.audit(), model.size);
            assert.deepEqual(
              [...index.entries()].map((e) => hex(e.key)),
              [...model.keys()].sort(),
            );
            history.push({ root, model: new Map(model) });
          }
          // Every older root still serves proofs of its own state.
          for (const { root, model: then } of history) {
            checkProofs(index, root, then, pool);
            assert.equal(index.audit(root), then.size);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("reopening a store resumes at its last root", () => {
    const store = new MemoryIndexStore();
    const index = new PatientIndex(sha256, store);
    index.set(labelled("a"), { head: labelled("h"), length: 3 });
    const reopened = new PatientIndex(sha256, store);
    assert.deepEqual(reopened.root, index.root);
    assert.deepEqual(reopened.get(labelled("a")), { head: labelled("h"), length: 3 });
  });
});

describe("patient index: cost of an update is bounded (counted, not timed)", () => {
  const N = 2048;
  const value = (i: number): IndexValue => ({ head: labelled(`head-${i}`), length: i + 1 });
  const build = () => {
    const counter = countingHash();
    const store = new TestStore();
    const index = new PatientIndex(counter.hash, store);
    index.update(Array.from({ length: N }, (_, i) => ({ key: labelled(`key-${i}`), value: value(i) })));
    return { counter, store, index };
  };

  it("one insert or update costs at most depth + 2 hashes and depth + 1 reads", () => {
    const { counter, store, index } = build();
    let worstHashes = 0;
    for (let i = 0; i < 200; i++) {
      // Alternately a new patient and an existing patient's next entry.
      const key = labelled(i % 2 === 0 ? `new-${i}` : `key-${i}`);
      const [hashesBefore, readsBefore] = [counter.calls(), store.reads];
      index.set(key, value(i + 7));
      const [hashes, reads] = [counter.calls() - hashesBefore, store.reads - readsBefore];
      const depth = index.lookup(key).proof.depth;
      assert.ok(hashes <= depth + 2, `hashes ${hashes} at depth ${depth}`);
      assert.ok(reads <= depth + 1, `reads ${reads} at depth ${depth}`);
      worstHashes = Math.max(worstHashes, hashes);
    }
    // log2(2048) = 11; random keys stay within a small multiple of it, far below 2 * 256.
    assert.ok(worstHashes <= 40, `worst ${worstHashes}`);
  });

  it("even two keys sharing 255 bits cost at most 258 hashes, never a rebuild", () => {
    const { counter, index } = build();
    const near = labelled("key-5").slice();
    near[31]! ^= 1;
    const before = counter.calls();
    index.set(near, value(1));
    const hashes = counter.calls() - before;
    assert.ok(hashes <= 258, `hashes ${hashes}`);
    assert.equal(index.lookup(near).proof.depth, 256);
  });

  it("a batch shares the work of the paths its keys have in common", () => {
    const changes = Array.from({ length: 256 }, (_, i) => ({ key: labelled(`batch-${i}`), value: value(i) }));
    const single = build();
    const singleBefore = single.counter.calls();
    for (const change of changes) single.index.update([change]);
    const singleCost = single.counter.calls() - singleBefore;
    const batched = build();
    const batchedBefore = batched.counter.calls();
    batched.index.update(changes);
    const batchedCost = batched.counter.calls() - batchedBefore;
    assert.deepEqual(batched.index.root, single.index.root);
    assert.ok(batchedCost < 0.75 * singleCost, `batched ${batchedCost} vs one by one ${singleCost}`);
  });

  it("verifying a proof costs depth + 1 hashes", () => {
    const { index } = build();
    const counter = countingHash();
    const key = labelled("key-9");
    const found = index.lookup(key);
    if (found.value === undefined) assert.fail("key-9 is present");
    verifyMembership(counter.hash, index.root, key, found.value, found.proof);
    assert.equal(counter.calls(), found.proof.depth + 1);
  });
});

describe("patient index: refused input changes nothing", () => {
  const fresh = () => {
    const store = new TestStore();
    const index = new PatientIndex(sha256, store);
    index.set(labelled("a"), { head: labelled("h"), length: 1 });
    return { store, index, root: index.root, size: store.inner.size };
  };

  it("a batch with one bad change, a duplicate key or a non-iterable is refused whole", () => {
    const { store, index, root, size } = fresh();
    const good = { key: labelled("b"), value: { head: labelled("h"), length: 1 } };
    const bad: unknown[] = [
      { key: labelled("c").subarray(1), value: good.value },
      { key: labelled("c"), value: { head: labelled("h"), length: 0 } },
      { key: labelled("c"), value: undefined },
      null,
      "key",
    ];
    for (const change of bad) {
      refuses(() => index.update([good, change as never]), "INVALID_ARGUMENT", JSON.stringify(change));
    }
    refuses(() => index.update([good, { ...good, value: null }]), "INVALID_ARGUMENT");
    refuses(() => index.update(null as never), "INVALID_ARGUMENT");
    assert.deepEqual(index.root, root);
    assert.equal(store.inner.size, size);
    assert.equal(index.get(labelled("b")), undefined);
  });

  it("a failed store write leaves the root where it was", () => {
    const { store, index, root } = fresh();
    store.failWrites = true;
    assert.throws(() => index.set(labelled("b"), { head: labelled("h"), length: 1 }), /disk full/);
    assert.deepEqual(index.root, root);
  });

  it("a root the store does not hold is refused, and bad keys too", () => {
    const { index } = fresh();
    refuses(() => index.lookup(labelled("a"), labelled("no such root")), "INVALID_ARGUMENT");
    refuses(() => index.get(labelled("a"), labelled("no such root")), "INVALID_ARGUMENT");
    refuses(() => index.audit(labelled("no such root")), "INVALID_ARGUMENT");
    refuses(() => index.lookup(new Uint8Array(31)), "INVALID_ARGUMENT");
    refuses(() => index.get(new Uint8Array(33)), "INVALID_ARGUMENT");
  });
});

describe("patient index: audit of the store", () => {
  it("any single flipped byte of any stored node is caught", () => {
    const store = new TestStore();
    const index = new PatientIndex(sha256, store);
    index.update(
      Array.from({ length: 6 }, (_, i) => ({
        key: labelled(`k${i}`),
        value: { head: labelled(`h${i}`), length: 1 },
      })),
    );
    assert.equal(index.audit(), 6);
    const nodes: Uint8Array[] = [];
    const walk = (hash: Uint8Array): void => {
      if (hex(hash) === hex(EMPTY_HASH)) return;
      nodes.push(hash);
      const body = store.inner.get(hash)!;
      if (body[0] === 3) {
        walk(body.subarray(1, 33));
        walk(body.subarray(33));
      }
    };
    walk(index.root);
    assert.ok(nodes.length >= 11);
    for (const hash of nodes) {
      const body = store.inner.get(hash)!;
      for (let at = 0; at < body.length; at++) {
        const flipped = body.slice();
        flipped[at]! ^= 1 << (at % 8);
        store.overrides.set(hex(hash), flipped);
        refuses(() => index.audit(), "INCONSISTENT_TREE", `node ${hex(hash)} byte ${at}`);
        store.overrides.clear();
      }
    }
    assert.equal(index.audit(), 6);
  });

  it("refuses a well-hashed but non-canonical tree (an internal node over one leaf)", () => {
    const store = new MemoryIndexStore();
    const key = new Uint8Array(32);
    const leafBody = new Uint8Array([2, ...key, ...encodeIndexValue({ head: labelled("h"), length: 1 })]);
    const leaf = sha256(leafBody);
    const parentBody = new Uint8Array([3, ...leaf, ...EMPTY_HASH]);
    const parent = sha256(parentBody);
    store.writeBatch({
      nodes: [
        { hash: leaf, body: leafBody },
        { hash: parent, body: parentBody },
      ],
      root: parent,
    });
    const index = new PatientIndex(sha256, store);
    refuses(() => index.audit(), "INCONSISTENT_TREE");
    // Two leaves in canonical shape, but the right one's key has bit 0 = 0: it is off its path.
    const otherKey = new Uint8Array(32);
    otherKey[31] = 1;
    const otherBody = new Uint8Array([
      2,
      ...otherKey,
      ...encodeIndexValue({ head: labelled("h"), length: 1 }),
    ]);
    const other = sha256(otherBody);
    const offBody = new Uint8Array([3, ...leaf, ...other]);
    const off = sha256(offBody);
    store.writeBatch({
      nodes: [
        { hash: other, body: otherBody },
        { hash: off, body: offBody },
      ],
      root: off,
    });
    assert.throws(
      () => new PatientIndex(sha256, store).audit(),
      (err: unknown) => isLedgerError(err, "INCONSISTENT_TREE") && /path/.test(err.message),
    );
  });
});

/**
 * What every PatientIndexStore adapter must do, written against a factory so a durable adapter (SQLite,
 * PostgreSQL) runs the same cases.
 */
function storeConformance(name: string, open: () => PatientIndexStore): void {
  describe(`patient index store conformance: ${name}`, () => {
    const record = (i: number) => {
      const body = new Uint8Array(i % 3 === 0 ? 73 : 65);
      body[0] = i % 3 === 0 ? 2 : 3;
      body.set(labelled(`body-${i}`), 1);
      return { hash: labelled(`node-${i}`), body };
    };

    it("returns every body written, over many batches, and undefined for unknown hashes", () => {
      const store = open();
      assert.equal(store.currentRoot(), undefined);
      // 40,000 nodes: past the memory store's first table size (32,768 nodes) and over several 1 MiB slabs.
      const records = Array.from({ length: 40_000 }, (_, i) => record(i));
      for (let start = 0; start < records.length; start += 5_000) {
        const nodes = records.slice(start, start + 5_000);
        store.writeBatch({ nodes, root: nodes[0]!.hash });
      }
      const wrong = records.filter(
        ({ hash, body }) => !Buffer.from(body).equals(store.get(hash) ?? Buffer.alloc(0)),
      );
      assert.equal(wrong.length, 0);
      assert.equal(store.get(labelled("never written")), undefined);
      assert.equal(store.get(new Uint8Array(31)), undefined);
      assert.deepEqual(store.currentRoot(), records[35_000]!.hash);
    });

    it("writing a node again is a no-op, and the root follows the last batch", () => {
      const store = open();
      const node = record(1);
      store.writeBatch({ nodes: [node], root: node.hash });
      store.writeBatch({ nodes: [node, node], root: EMPTY_HASH });
      assert.deepEqual(store.get(node.hash), node.body);
      assert.deepEqual(store.currentRoot(), EMPTY_HASH);
      // The root handed back is a copy: changing it changes nothing stored.
      store.currentRoot()![0] = 1;
      assert.deepEqual(store.currentRoot(), EMPTY_HASH);
    });

    it("a batch with one bad node writes nothing", () => {
      const store = open();
      const good = record(1);
      const bad = { hash: labelled("bad"), body: new Uint8Array(64) };
      refuses(() => store.writeBatch({ nodes: [good, bad], root: good.hash }), "INVALID_ARGUMENT");
      refuses(() => store.writeBatch({ nodes: [good], root: new Uint8Array(31) }), "INVALID_ARGUMENT");
      assert.equal(store.get(good.hash), undefined);
      assert.equal(store.currentRoot(), undefined);
    });
  });
}

storeConformance("memory", () => new MemoryIndexStore());
