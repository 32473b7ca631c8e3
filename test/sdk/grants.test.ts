/**
 * Grant scopes (docs/records.md section 4): which records a scope covers (categories, restricted categories
 * only when named, the clinical-month range with open ends, psychotherapy notes never), checked case by
 * case and against a model with fast-check; when a grant is in force; and the scope's encryption on both
 * suites: readers open it, anyone else is refused, and a changed ciphertext, hash or binding is refused.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { CryptoSuite } from "../../src/core/crypto/suite.ts";
import { fromBase64, toBase64 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";
import {
  RECORD_TYPES,
  RESTRICTED_CATEGORIES,
  SENSITIVITIES,
  grantInForce,
  newScope,
  openScope,
  scopeCovers,
  sealScope,
  type GrantScope,
  type ScopedRecord,
} from "../../src/sdk/index.ts";

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];
const PATIENT = "a1".repeat(16);

function refusedWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isLedgerError(err), `expected a LedgerError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe("scope rules", () => {
  const labs = newScope(nodeCrypto, { categories: ["laboratory-result"], purpose: "treatment" });
  const record = (r: Partial<ScopedRecord>): ScopedRecord => ({
    type: "laboratory-result",
    sensitivity: "normal",
    month: "2026-10",
    ...r,
  });

  it("covers the categories it names, and no other", () => {
    assert.equal(scopeCovers(labs, record({})), true);
    assert.equal(scopeCovers(labs, record({ type: "image" })), false);
    assert.equal(scopeCovers(labs, record({ type: "consultation" })), false);
  });

  it("covers a restricted record only when the scope names its category", () => {
    assert.equal(scopeCovers(labs, record({ sensitivity: "hiv" })), false);
    const hiv = newScope(nodeCrypto, {
      categories: ["laboratory-result"],
      restricted: ["hiv"],
      purpose: "treatment",
    });
    assert.equal(scopeCovers(hiv, record({ sensitivity: "hiv" })), true);
    assert.equal(scopeCovers(hiv, record({ sensitivity: "mental-health" })), false);
    assert.equal(scopeCovers(hiv, record({})), true);
  });

  it("never covers a psychotherapy note, and no scope can name one", () => {
    const all = newScope(nodeCrypto, {
      categories: [...RECORD_TYPES],
      restricted: [...RESTRICTED_CATEGORIES],
      purpose: "treatment",
    });
    for (const type of RECORD_TYPES) {
      assert.equal(scopeCovers(all, record({ type, sensitivity: "psychotherapy-note" })), false);
    }
    assert.throws(
      () =>
        newScope(nodeCrypto, {
          categories: ["clinical-note"],
          restricted: ["psychotherapy-note" as never],
          purpose: "treatment",
        }),
      refusedWith("INVALID_ARGUMENT"),
    );
  });

  it("covers the clinical-month range inclusively, with either end open", () => {
    const range = newScope(nodeCrypto, {
      categories: ["laboratory-result"],
      from: "2025-01",
      to: "2025-12-31",
      purpose: "second-opinion",
    });
    assert.equal(range.to, "2025-12");
    assert.equal(scopeCovers(range, record({ month: "2024-12" })), false);
    assert.equal(scopeCovers(range, record({ month: "2025-01" })), true);
    assert.equal(scopeCovers(range, record({ month: "2025-12" })), true);
    assert.equal(scopeCovers(range, record({ month: "2026-01" })), false);
    const from = newScope(nodeCrypto, {
      categories: ["laboratory-result"],
      from: "2025-06",
      purpose: "research",
    });
    assert.equal(scopeCovers(from, record({ month: "2099-01" })), true);
    assert.equal(scopeCovers(from, record({ month: "2025-05" })), false);
    const to = newScope(nodeCrypto, { categories: ["laboratory-result"], to: "2025-06", purpose: "other" });
    assert.equal(scopeCovers(to, record({ month: "1990-01" })), true);
    assert.equal(scopeCovers(to, record({ month: "2025-07" })), false);
  });

  it("refuses malformed choices", () => {
    assert.throws(
      () => newScope(nodeCrypto, { categories: [], purpose: "treatment" }),
      refusedWith("INVALID_ARGUMENT"),
    );
    assert.throws(
      () =>
        newScope(nodeCrypto, { categories: ["image"], from: "2026-02", to: "2026-01", purpose: "treatment" }),
      refusedWith("INVALID_ARGUMENT"),
    );
    assert.throws(
      () => newScope(nodeCrypto, { categories: ["image"], from: "2026-13", purpose: "treatment" }),
      refusedWith("INVALID_ARGUMENT"),
    );
    assert.throws(
      () => newScope(nodeCrypto, { categories: ["image"], purpose: "curiosity" as never }),
      refusedWith("INVALID_ARGUMENT"),
    );
  });

  it("agrees with a model of the rules (fast-check)", () => {
    const month = fc
      .tuple(fc.integer({ min: 2000, max: 2030 }), fc.integer({ min: 1, max: 12 }))
      .map(([y, m]) => `${y}-${String(m).padStart(2, "0")}`);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(...RECORD_TYPES), { minLength: 1 }),
        fc.uniqueArray(fc.constantFrom(...RESTRICTED_CATEGORIES)),
        fc.option(month),
        fc.option(month),
        fc.constantFrom(...RECORD_TYPES),
        fc.constantFrom(...SENSITIVITIES),
        month,
        (categories, restricted, a, b, type, sensitivity, m) => {
          const [from, to] = a !== null && b !== null && a > b ? [b, a] : [a, b];
          const scope = newScope(nodeCrypto, { categories, restricted, from, to, purpose: "treatment" });
          const model =
            sensitivity !== "psychotherapy-note" &&
            categories.includes(type) &&
            (sensitivity === "normal" || (restricted as string[]).includes(sensitivity)) &&
            (from === null || m >= from) &&
            (to === null || m <= to);
          assert.equal(scopeCovers(scope, { type, sensitivity, month: m }), model);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("grants in force", () => {
  it("not revoked, not expired (the expiry day itself included), grantee active", () => {
    const g = { revoked: false, expires: "2026-11-30", granteeActive: true };
    assert.equal(grantInForce(g, "2026-11-25"), true);
    assert.equal(grantInForce(g, "2026-11-30"), true);
    assert.equal(grantInForce(g, "2026-12-01"), false);
    assert.equal(grantInForce({ ...g, revoked: true }, "2026-11-25"), false);
    assert.equal(grantInForce({ ...g, granteeActive: false }, "2026-11-25"), false);
  });
});

for (const suite of SUITES) {
  describe(`scope encryption (${suite.name} suite)`, () => {
    it("opens for the patient, the grantee and a scope reader; refuses anyone else and any change", async () => {
      const patient = await suite.x25519Generate();
      const grantee = await suite.x25519Generate();
      const reader = await suite.x25519Generate();
      const outsider = await suite.x25519Generate();
      const scope: GrantScope = newScope(suite, {
        categories: ["image", "laboratory-result"],
        restricted: ["substance-use"],
        from: "2025-01",
        purpose: "treatment",
      });
      const sealed = await sealScope(suite, PATIENT, "lab", scope, [
        { to: `patient:${PATIENT}`, publicKey: patient.publicKey },
        { to: "org:lab", publicKey: grantee.publicKey },
        { to: "org:hospital", publicKey: reader.publicKey },
      ]);
      assert.deepEqual(
        sealed.scope.envelopes.map((e) => e.to),
        ["org:hospital", "org:lab", `patient:${PATIENT}`],
      );
      const grant = { patient: PATIENT, grantee: "lab", ...sealed };
      assert.deepEqual(await openScope(suite, `patient:${PATIENT}`, patient, grant), scope);
      assert.deepEqual(await openScope(suite, "org:lab", grantee, grant), scope);
      assert.deepEqual(await openScope(suite, "org:hospital", reader, grant), scope);
      await assert.rejects(openScope(suite, "org:clinic", outsider, grant), refusedWith("NOT_PERMITTED"));
      await assert.rejects(openScope(suite, "org:lab", outsider, grant), refusedWith("DECRYPTION_FAILED"));
      // The scope bound to another grantee or patient does not open.
      await assert.rejects(
        openScope(suite, "org:lab", grantee, { ...grant, grantee: "clinic" }),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        openScope(suite, "org:lab", grantee, { ...grant, patient: "b2".repeat(16) }),
        refusedWith("DECRYPTION_FAILED"),
      );
      // A changed ciphertext, or a hash that does not commit to this scope.
      const ct = fromBase64(sealed.scope.ct);
      ct[ct.length - 3]! ^= 4;
      await assert.rejects(
        openScope(suite, "org:lab", grantee, { ...grant, scope: { ...sealed.scope, ct: toBase64(ct) } }),
        refusedWith("DECRYPTION_FAILED"),
      );
      await assert.rejects(
        openScope(suite, "org:lab", grantee, { ...grant, scopeHash: "00".repeat(32) }),
        refusedWith("DECRYPTION_FAILED"),
      );
    });

    it("hides the scope: two grants of the same scope choices differ in hash and ciphertext (salt)", async () => {
      const key = await suite.x25519Generate();
      const choice = { categories: ["image" as const], purpose: "treatment" as const };
      const a = await sealScope(suite, PATIENT, "lab", newScope(suite, choice), [
        { to: "org:lab", publicKey: key.publicKey },
      ]);
      const b = await sealScope(suite, PATIENT, "lab", newScope(suite, choice), [
        { to: "org:lab", publicKey: key.publicKey },
      ]);
      assert.notEqual(a.scopeHash, b.scopeHash);
      assert.notEqual(a.scope.ct, b.scope.ct);
    });
  });
}
