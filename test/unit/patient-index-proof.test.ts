// Patient-index proofs: every mutated proof fails, the binary and JSON forms are parsed strictly, and a
// hostile proof object ends in a LedgerError, never a TypeError.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { isLedgerError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";
import {
  MAX_PROOF_BYTES,
  MemoryIndexStore,
  PatientIndex,
  decodeIndexProof,
  encodeIndexProof,
  indexProofFromJson,
  indexProofToJson,
  verifyMembership,
  verifyNonMembership,
} from "../../src/core/patient-index/index.ts";
import type {
  IndexProof,
  IndexValue,
  MembershipProof,
  NonMembershipProof,
} from "../../src/core/patient-index/index.ts";

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function refuses(fn: () => unknown, code: ErrorCode, message?: string): void {
  assert.throws(fn, (err: unknown) => isLedgerError(err, code), message ?? `expected LedgerError ${code}`);
}

function labelled(label: string): Uint8Array {
  return sha256(new TextEncoder().encode(label));
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3]! ^= 0x80 >> (bit & 7);
  return out;
}

/** True when `bits` (MSB first) has bit i set. */
function bitSet(bits: Uint8Array, i: number): boolean {
  return ((bits[i >> 3]! >> (7 - (i & 7))) & 1) === 1;
}

/** A proof with another depth: the bitmap resized to match, the siblings as they are. */
function withDepth<P extends IndexProof>(proof: P, depth: number): P {
  const bitmap = new Uint8Array(Math.ceil(depth / 8));
  bitmap.set(proof.bitmap.subarray(0, bitmap.length));
  if (depth % 8 !== 0 && bitmap.length > 0) bitmap[bitmap.length - 1]! &= 0xff << (8 - (depth % 8));
  return { ...proof, depth, bitmap };
}

/**
 * Every way we know to spoil a path: a flipped bit in each sibling, each bitmap bit flipped (with and
 * without a matching sibling added or dropped), depth one more or one less, siblings truncated, extended,
 * reordered.
 */
function spoiledPaths<P extends IndexProof>(proof: P, pick: number): [string, P][] {
  const out: [string, P][] = [];
  proof.siblings.forEach((s, i) => {
    const siblings = proof.siblings.slice();
    siblings[i] = flipBit(s, (pick + i * 37) % 256);
    out.push([`sibling ${i} bit flipped`, { ...proof, siblings }]);
  });
  // Every set bit, a few clear ones and the first padding bit: each check is reached, cheaply at depth 256.
  const bits = new Set<number>();
  for (let bit = 0; bit < proof.depth; bit++) if (bitSet(proof.bitmap, bit)) bits.add(bit);
  for (let k = 0; k < 4 && proof.depth > 0; k++) bits.add((pick + k * 61) % proof.depth);
  if (proof.depth < proof.bitmap.length * 8) bits.add(proof.depth);
  for (const bit of bits) {
    const bitmap = flipBit(proof.bitmap, bit);
    out.push([`bitmap bit ${bit} flipped`, { ...proof, bitmap }]);
    if (bit >= proof.depth) continue;
    // Keep the sibling count consistent with the new bitmap, so only the hashing can catch it.
    let before = 0;
    for (let j = 0; j < bit; j++) if (bitSet(proof.bitmap, j)) before++;
    const siblings = proof.siblings.slice();
    if (bitSet(proof.bitmap, bit)) siblings.splice(before, 1);
    else siblings.splice(before, 0, labelled(`extra ${bit}`));
    out.push([`bitmap bit ${bit} flipped, siblings adjusted`, { ...proof, bitmap, siblings }]);
  }
  if (proof.depth < 256) {
    const deeper = withDepth(proof, proof.depth + 1);
    out.push(["depth + 1", deeper]);
    const bitmap = flipBit(deeper.bitmap, proof.depth);
    out.push([
      "depth + 1 with a sibling",
      { ...deeper, bitmap, siblings: [...proof.siblings, labelled("x")] },
    ]);
  }
  if (proof.depth > 0) out.push(["depth - 1", withDepth(proof, proof.depth - 1)]);
  out.push(["a sibling appended", { ...proof, siblings: [...proof.siblings, labelled("y")] }]);
  out.push(["a sibling prepended", { ...proof, siblings: [labelled("z"), ...proof.siblings] }]);
  out.push(["an all-zero sibling appended", { ...proof, siblings: [...proof.siblings, new Uint8Array(32)] }]);
  if (proof.siblings.length > 0) {
    out.push(["last sibling dropped", { ...proof, siblings: proof.siblings.slice(0, -1) }]);
    out.push(["first sibling dropped", { ...proof, siblings: proof.siblings.slice(1) }]);
  }
  if (proof.siblings.length > 1) {
    out.push(["siblings reversed", { ...proof, siblings: [...proof.siblings].reverse() }]);
  }
  return out;
}

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

/** An index over a few random keys and near-copies of them (long shared prefixes). */
const populated = fc
  .tuple(
    fc.array(key32, { minLength: 0, maxLength: 12 }),
    fc.array(
      fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 255 }))),
      {
        maxLength: 4,
      },
    ),
  )
  .map(([bases, flips]) => {
    const keys = new Map<string, Uint8Array>();
    for (const b of bases) keys.set(Buffer.from(b).toString("hex"), b);
    for (const [which, bit] of flips) {
      if (bases.length === 0) break;
      const k = flipBit(bases[which % bases.length]!, bit);
      keys.set(Buffer.from(k).toString("hex"), k);
    }
    const index = new PatientIndex(sha256, new MemoryIndexStore());
    const list = [...keys.values()];
    index.update(list.map((key, i) => ({ key, value: { head: labelled(`h${i}`), length: i + 1 } })));
    return { index, keys: list };
  });

describe("patient-index proofs: every mutation fails", () => {
  it("membership proofs: spoiled paths, wrong key, value or root, and used as non-membership", () => {
    fc.assert(
      fc.property(populated, fc.nat(), fc.nat(), ({ index, keys }, which, pick) => {
        fc.pre(keys.length > 0);
        const key = keys[which % keys.length]!;
        const root = index.root;
        const found = index.lookup(key);
        if (found.value === undefined) return assert.fail("present key has no value");
        const { value, proof } = found;
        verifyMembership(sha256, root, key, value, proof);
        const fails = (what: string, fn: () => void) => refuses(fn, "PROOF_INVALID", what);
        for (const [what, bad] of spoiledPaths(proof, pick)) {
          fails(what, () => verifyMembership(sha256, root, key, value, bad));
        }
        fails("wrong key", () => verifyMembership(sha256, root, flipBit(key, pick % 256), value, proof));
        if (keys.length > 1) {
          const other = keys[(which + 1) % keys.length]!;
          fails("another present key", () => verifyMembership(sha256, root, other, value, proof));
        }
        const wrongValues: [string, IndexValue][] = [
          ["head bit flipped", { head: flipBit(value.head, pick % 256), length: value.length }],
          ["length + 1", { head: value.head, length: value.length + 1 }],
          ["length - 1", { head: value.head, length: value.length - 1 }],
        ];
        for (const [what, bad] of wrongValues)
          fails(what, () => verifyMembership(sha256, root, key, bad, proof));
        fails("wrong root", () => verifyMembership(sha256, flipBit(root, pick % 256), key, value, proof));
        const asNon = { ...proof, type: "non-membership", leaf: null } as unknown as NonMembershipProof;
        fails("as non-membership", () => verifyNonMembership(sha256, root, key, asNon));
        const asNonWithLeaf = { ...asNon, leaf: { key, value } };
        fails("as non-membership with its own leaf", () =>
          verifyNonMembership(sha256, root, key, asNonWithLeaf),
        );
        fails("non-membership type", () => verifyNonMembership(sha256, root, key, proof as never));
      }),
      { numRuns: 150 },
    );
  });

  it("non-membership proofs: spoiled paths and leaves, a present key, wrong root, used as membership", () => {
    fc.assert(
      fc.property(populated, key32, fc.nat(), ({ index, keys }, absent, pick) => {
        const root = index.root;
        const found = index.lookup(absent);
        fc.pre(found.value === undefined);
        const proof = found.proof;
        verifyNonMembership(sha256, root, absent, proof);
        const fails = (what: string, fn: () => void) => refuses(fn, "PROOF_INVALID", what);
        for (const [what, bad] of spoiledPaths(proof, pick)) {
          fails(what, () => verifyNonMembership(sha256, root, absent, bad));
        }
        // A non-membership proof covers every key sharing its first `depth` bits (all absent), so a wrong
        // key must differ within them to be wrong; a present key must fail whatever its path.
        if (proof.depth > 0) {
          fails("key flipped on the path", () =>
            verifyNonMembership(sha256, root, flipBit(absent, pick % proof.depth), proof),
          );
        }
        for (const present of keys)
          fails("a present key", () => verifyNonMembership(sha256, root, present, proof));
        fails("wrong root", () => verifyNonMembership(sha256, flipBit(root, pick % 256), absent, proof));
        const leaf = proof.leaf;
        if (leaf === null) {
          const invented = { key: flipBit(absent, 255), value: { head: labelled("h"), length: 1 } };
          fails("leaf invented", () =>
            verifyNonMembership(sha256, root, absent, { ...proof, leaf: invented }),
          );
        } else {
          fails("leaf dropped", () => verifyNonMembership(sha256, root, absent, { ...proof, leaf: null }));
          const badLeaves = [
            { key: flipBit(leaf.key, pick % 256), value: leaf.value },
            {
              key: leaf.key,
              value: { head: flipBit(leaf.value.head, pick % 256), length: leaf.value.length },
            },
            { key: leaf.key, value: { head: leaf.value.head, length: leaf.value.length + 1 } },
            { key: absent, value: leaf.value },
          ];
          for (const bad of badLeaves) {
            fails("leaf changed", () => verifyNonMembership(sha256, root, absent, { ...proof, leaf: bad }));
          }
          fails("used as the leaf's membership", () =>
            verifyMembership(sha256, root, absent, leaf.value, { ...proof, type: "membership" } as never),
          );
        }
        const asMembership = { ...proof, type: "membership" } as unknown as MembershipProof;
        fails("as membership", () =>
          verifyMembership(sha256, root, absent, { head: labelled("h"), length: 1 }, asMembership),
        );
        fails("membership type", () =>
          verifyMembership(sha256, root, absent, { head: labelled("h"), length: 1 }, proof as never),
        );
      }),
      { numRuns: 150 },
    );
  });

  it("every single-bit flip of an encoded proof is refused at decoding or at verification", () => {
    fc.assert(
      fc.property(populated, key32, fc.nat(), ({ index, keys }, outsider, which) => {
        const key = keys.length > 0 && which % 2 === 0 ? keys[which % keys.length]! : outsider;
        const root = index.root;
        const found = index.lookup(key);
        const bytes = encodeIndexProof(found.proof);
        const verify = (proof: IndexProof) =>
          proof.type === "membership"
            ? verifyMembership(sha256, root, key, found.value ?? { head: labelled("h"), length: 1 }, proof)
            : verifyNonMembership(sha256, root, key, proof);
        verify(decodeIndexProof(bytes));
        for (let bit = 0; bit < bytes.length * 8; bit++) {
          assert.throws(
            () => verify(decodeIndexProof(flipBit(bytes, bit))),
            (err: unknown) => isLedgerError(err, "MALFORMED_INPUT") || isLedgerError(err, "PROOF_INVALID"),
            `bit ${bit}`,
          );
        }
        // Truncated by one byte and extended by one byte.
        refuses(() => decodeIndexProof(bytes.subarray(0, bytes.length - 1)), "MALFORMED_INPUT");
        refuses(() => decodeIndexProof(new Uint8Array([...bytes, 0])), "MALFORMED_INPUT");
      }),
      { numRuns: 15 },
    );
  });
});

describe("patient-index proofs: strict parsing and hostile objects", () => {
  const index = new PatientIndex(sha256, new MemoryIndexStore());
  index.update(
    Array.from({ length: 40 }, (_, i) => ({
      key: labelled(`k${i}`),
      value: { head: labelled(`h${i}`), length: 1 },
    })),
  );
  const present = index.lookup(labelled("k3"));
  const absent = index.lookup(labelled("nobody"));
  const emptyEnd = Array.from({ length: 200 }, (_, i) => index.lookup(labelled(`a${i}`))).find(
    (found) => found.proof.type === "non-membership" && found.proof.leaf === null,
  )!;
  const leafEnd = Array.from({ length: 200 }, (_, i) => index.lookup(labelled(`a${i}`))).find(
    (found) => found.proof.type === "non-membership" && found.proof.leaf !== null,
  )!;

  it("has proofs of all three shapes to work on", () => {
    assert.equal(present.proof.type, "membership");
    assert.equal(absent.proof.type, "non-membership");
    assert.ok(emptyEnd !== undefined && leafEnd !== undefined);
  });

  it("writes the documented byte layout", () => {
    const bytes = encodeIndexProof(present.proof);
    const { depth, bitmap, siblings } = present.proof;
    assert.equal(bytes[0], 1);
    assert.equal((bytes[1]! << 8) | bytes[2]!, depth);
    assert.deepEqual(bytes.subarray(3, 3 + bitmap.length), bitmap);
    assert.equal(bytes.length, 3 + bitmap.length + 32 * siblings.length);
    const empty = encodeIndexProof(emptyEnd.proof);
    assert.equal(empty[0], 2);
    assert.equal(empty[empty.length - 1], 0);
    const leaf = encodeIndexProof(leafEnd.proof);
    assert.equal(leaf[leaf.length - 73], 1);
    assert.equal(MAX_PROOF_BYTES, 8300);
  });

  it("refuses malformed binary proofs", () => {
    const good = encodeIndexProof(present.proof);
    const cases: [string, Uint8Array][] = [
      ["empty", new Uint8Array()],
      ["two bytes", new Uint8Array([1, 0])],
      ["unknown type", new Uint8Array([3, 0, 0])],
      ["depth 257", new Uint8Array([1, 1, 1, ...new Uint8Array(33)])],
      ["non-membership without a terminal", new Uint8Array([2, 0, 0])],
      ["unknown terminal", new Uint8Array([2, 0, 0, 2])],
      ["empty terminal with a trailing byte", new Uint8Array([2, 0, 0, 0, 0])],
      ["leaf terminal cut short", new Uint8Array([2, 0, 0, 1, ...new Uint8Array(40)])],
      ["bitmap bits past the depth", new Uint8Array([1, 0, 1, 0x40, ...labelled("s")])],
      ["explicit all-zero sibling", new Uint8Array([1, 0, 1, 0x80, ...new Uint8Array(32)])],
      ["truncated", good.subarray(0, good.length - 5)],
      ["too long", new Uint8Array(MAX_PROOF_BYTES + 1)],
    ];
    for (const [what, bytes] of cases) refuses(() => decodeIndexProof(bytes), "MALFORMED_INPUT", what);
    refuses(() => decodeIndexProof("AQAA" as unknown as Uint8Array), "MALFORMED_INPUT");
    // A leaf whose value has length 0 is refused at decoding.
    const leafBytes = encodeIndexProof(leafEnd.proof);
    leafBytes.fill(0, leafBytes.length - 8);
    refuses(() => decodeIndexProof(leafBytes), "MALFORMED_INPUT");
  });

  it("refuses JSON proofs that are off in any way", () => {
    const json = indexProofToJson(present.proof) as Record<string, unknown>;
    const nonJson = indexProofToJson(leafEnd.proof) as Record<string, unknown>;
    const leafJson = nonJson["leaf"] as Record<string, unknown>;
    const siblings = json["siblings"] as string[];
    // 0xfb bytes encode to "+/v7...": in the URL-safe alphabet they read "-_v7...".
    const urlSafe = Buffer.alloc(32, 0xfb).toString("base64url") + "=";
    const cases: [string, unknown][] = [
      ["null", null],
      ["array", [json]],
      ["string", JSON.stringify(json)],
      ["extra member", { ...json, extra: 1 }],
      ["missing member", { ...json, siblings: undefined }],
      ["leaf on a membership proof", { ...json, leaf: null }],
      ["non-membership without leaf", { ...nonJson, leaf: undefined }],
      ["unknown type", { ...json, type: "inclusion" }],
      ["depth as a string", { ...json, depth: String(json["depth"]) }],
      ["depth fractional", { ...json, depth: 1.5 }],
      ["depth 257", { ...json, depth: 257 }],
      ["depth negative", { ...json, depth: -1 }],
      ["bitmap not base64", { ...json, bitmap: "!!" }],
      ["bitmap unpadded", { ...json, bitmap: (json["bitmap"] as string).replace(/=+$/, "") }],
      ["bitmap too long", { ...json, bitmap: "A".repeat(48) }],
      ["siblings not an array", { ...json, siblings: "x" }],
      ["a sibling not a string", { ...json, siblings: [...siblings.slice(1), 7] }],
      [
        "a sibling 31 bytes",
        { ...json, siblings: [Buffer.alloc(31).toString("base64"), ...siblings.slice(1)] },
      ],
      ["a sibling in URL-safe base64", { ...json, siblings: [urlSafe, ...siblings.slice(1)] }],
      ["one sibling too many", { ...json, siblings: [...siblings, siblings[0]] }],
      ["one sibling too few", { ...json, siblings: siblings.slice(1) }],
      ["257 siblings", { ...json, siblings: Array.from({ length: 257 }, () => siblings[0]) }],
      ["leaf a string", { ...nonJson, leaf: "x" }],
      ["leaf missing length", { ...nonJson, leaf: { ...leafJson, length: undefined } }],
      ["leaf length 0", { ...nonJson, leaf: { ...leafJson, length: 0 } }],
      ["leaf length unsafe", { ...nonJson, leaf: { ...leafJson, length: 2 ** 53 } }],
      [
        "leaf key 33 bytes",
        { ...nonJson, leaf: { ...leafJson, key: Buffer.alloc(33, 1).toString("base64") } },
      ],
      ["leaf extra member", { ...nonJson, leaf: { ...leafJson, value: 1 } }],
    ];
    for (const [what, value] of cases) {
      // Through JSON text, as on the wire (members set to undefined disappear).
      const wire = JSON.parse(JSON.stringify(value)) as unknown;
      refuses(() => indexProofFromJson(wire), "MALFORMED_INPUT", what);
    }
    refuses(
      () => indexProofFromJson(Object.assign(Object.create({ inherited: 1 }) as object, json)),
      "MALFORMED_INPUT",
    );
  });

  it("verifiers answer PROOF_INVALID, never a TypeError, to hostile arguments", () => {
    const root = index.root;
    const key = labelled("k3");
    const value = present.value!;
    const proof = present.proof as MembershipProof;
    const hostileProofs: unknown[] = [
      null,
      undefined,
      42,
      "proof",
      {},
      { type: "membership" },
      { ...proof, depth: "3" },
      { ...proof, depth: NaN },
      { ...proof, depth: 1e9 },
      { ...proof, depth: -1 },
      { ...proof, bitmap: Array.from(proof.bitmap) },
      { ...proof, bitmap: null },
      { ...proof, siblings: null },
      { ...proof, siblings: { length: proof.siblings.length } },
      { ...proof, siblings: proof.siblings.map((s) => Array.from(s)) },
      { ...proof, siblings: proof.siblings.map((s) => s.subarray(1)) },
    ];
    for (const bad of hostileProofs) {
      refuses(
        () => verifyMembership(sha256, root, key, value, bad as MembershipProof),
        "PROOF_INVALID",
        String(bad),
      );
      refuses(() => verifyNonMembership(sha256, root, key, bad as NonMembershipProof), "PROOF_INVALID");
    }
    const nonProof = absent.proof as NonMembershipProof;
    for (const leaf of [
      undefined,
      1,
      { key: 1 },
      { key: labelled("x") },
      { key: labelled("x"), value: null },
    ]) {
      refuses(
        () => verifyNonMembership(sha256, root, labelled("nobody"), { ...nonProof, leaf } as never),
        "PROOF_INVALID",
        JSON.stringify(leaf),
      );
    }
    const badArgs: [string, () => void][] = [
      ["root 31 bytes", () => verifyMembership(sha256, root.subarray(1), key, value, proof)],
      ["root a string", () => verifyMembership(sha256, "root" as never, key, value, proof)],
      ["key 33 bytes", () => verifyMembership(sha256, root, new Uint8Array(33), value, proof)],
      ["key null", () => verifyNonMembership(sha256, root, null as never, nonProof)],
      ["value null", () => verifyMembership(sha256, root, key, null as never, proof)],
      ["value length 0", () => verifyMembership(sha256, root, key, { head: value.head, length: 0 }, proof)],
      [
        "value head short",
        () => verifyMembership(sha256, root, key, { head: new Uint8Array(3), length: 1 }, proof),
      ],
    ];
    for (const [what, fn] of badArgs) refuses(fn, "PROOF_INVALID", what);
  });
});
