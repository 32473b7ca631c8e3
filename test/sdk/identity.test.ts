/**
 * Identities (docs/sdk.md): key files the SDK writes unlock into the identity they were made for, on both
 * suites; the files `medledger node init` writes (bare org ids, consortium-<n>) are read the same way; a
 * label that contradicts its kind is refused. An org's blinding key is one derivation, shared with the
 * seeder, equal on both suites. And the SDK bundles for a browser: no node: import anywhere under it.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { build } from "esbuild";
import {
  createKeyFile,
  encodeKeyFile,
  generateKeyFileKeys,
  type KeyKind,
} from "../../src/core/crypto/keyfile.ts";
import type { CryptoSuite } from "../../src/core/crypto/suite.ts";
import { toHex } from "../../src/core/encoding/bytes.ts";
import { isLedgerError } from "../../src/core/errors.ts";
import { seedBlindingKey } from "../../src/node/seed.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";
import {
  createOrgKeyFile,
  createPatientKeyFile,
  deriveBlindingKey,
  unlockIdentity,
} from "../../src/sdk/index.ts";

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];
const WEAK = { kdf: { N: 2 ** 10, r: 8, p: 1 }, allowWeakKdf: true } as const;

async function fileOf(
  crypto: CryptoSuite,
  kind: KeyKind,
  label: string,
): Promise<{ file: string; signKey: string }> {
  const keys = await generateKeyFileKeys(crypto, kind, label);
  const file = await createKeyFile(
    crypto,
    { kind, label, signingSecretKey: keys.signing.secretKey, encryptionSecretKey: keys.encryption.secretKey },
    "pw",
    WEAK,
  );
  return { file: encodeKeyFile(file), signKey: toHex(keys.signing.publicKey) };
}

for (const crypto of SUITES) {
  describe(`identities (${crypto.name} suite)`, () => {
    it("a patient key file unlocks into the patient it was made for", async () => {
      const { file, patientId } = await createPatientKeyFile(crypto, { passphrase: "pw", ...WEAK });
      const ana = await unlockIdentity(crypto, file, "pw");
      assert.equal(ana.kind, "patient");
      assert.equal(ana.id, patientId);
      assert.equal(ana.keyid, `patient:${patientId}`);
      assert.equal(ana.blindingKey, undefined);
      await assert.rejects(unlockIdentity(crypto, file, "pW"), (e) => isLedgerError(e, "PASSPHRASE_WRONG"));
    });

    it("an org key file (org or validator kind) unlocks into the org, with its blinding key", async () => {
      for (const validator of [false, true]) {
        const made = await createOrgKeyFile(crypto, { orgId: "lab-2", passphrase: "pw", validator, ...WEAK });
        const lab = await unlockIdentity(crypto, made.file, "pw");
        assert.equal(lab.kind, "org");
        assert.equal(lab.keyid, "org:lab-2");
        assert.equal(toHex(lab.signing.publicKey), made.signKey);
        assert.equal(toHex(lab.encryption.publicKey), made.encKey);
        assert.deepEqual(lab.blindingKey, await deriveBlindingKey(crypto, lab.signing.secretKey));
      }
      await assert.rejects(
        createOrgKeyFile(crypto, { orgId: "Not-A-Slug", passphrase: "pw", ...WEAK }),
        (e) => isLedgerError(e, "INVALID_ARGUMENT"),
      );
    });

    it("reads the key files of `node init`: bare org ids and the consortium key", async () => {
      const hospital = await unlockIdentity(crypto, (await fileOf(crypto, "org", "hospital")).file, "pw");
      assert.equal(hospital.keyid, "org:hospital");
      const validator = await unlockIdentity(
        crypto,
        (await fileOf(crypto, "validator", "validator")).file,
        "pw",
      );
      assert.equal(validator.keyid, "org:validator");
      const made = await fileOf(crypto, "org", "consortium-1");
      const consortium = await unlockIdentity(crypto, made.file, "pw");
      assert.equal(consortium.kind, "consortium");
      assert.equal(consortium.keyid, `consortium:${made.signKey}`);
    });

    it("refuses a label that contradicts its kind, and kinds that are no identity", async () => {
      for (const [kind, label] of [
        ["org", `patient:${"a1".repeat(16)}`],
        ["patient", "org:lab"],
        ["log", "north"],
        ["patient", "not-hex"],
      ] as const) {
        await assert.rejects(unlockIdentity(crypto, (await fileOf(crypto, kind, label)).file, "pw"), (e) =>
          isLedgerError(e, "KEY_INVALID"),
        );
      }
    });
  });
}

describe("the blinding key", () => {
  it("is one derivation: the seeder's, equal on both suites, different per org", async () => {
    const keys = await generateKeyFileKeys(nodeCrypto, "org", "hospital");
    const a = await deriveBlindingKey(nodeCrypto, keys.signing.secretKey);
    assert.equal(a.length, 32);
    assert.deepEqual(await deriveBlindingKey(webCrypto, keys.signing.secretKey), a);
    assert.deepEqual(await seedBlindingKey(nodeCrypto, keys), a);
    const other = await generateKeyFileKeys(nodeCrypto, "org", "lab");
    assert.notDeepEqual(await deriveBlindingKey(nodeCrypto, other.signing.secretKey), a);
  });
});

describe("the SDK in a browser bundle", () => {
  it("bundles for the browser platform: no node: import under src/sdk", async () => {
    const result = await build({
      entryPoints: ["src/sdk/index.ts", "src/platform/web-crypto.ts"],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      outdir: "out",
      logLevel: "silent",
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((i) => i.startsWith("src/sdk/")));
    assert.deepEqual(
      inputs.filter((i) => i.startsWith("node:") || i.includes("src/node/") || i.includes("src/server/")),
      [],
    );
  });
});
