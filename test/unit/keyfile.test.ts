/**
 * Passphrase-protected key files on every CryptoSuite: round trips (also across implementations), wrong
 * passphrases, every header field altered, unknown versions, hostile KDF parameters and malformed files.
 * Most files use a cheap scrypt cost through the explicit allowWeakKdf option; one uses the default.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  KEYFILE_SCRYPT,
  createKeyFile,
  encodeKeyFile,
  generateKeyFileKeys,
  parseKeyFile,
  unlockKeyFile,
  type KeyFile,
  type KeyFileContents,
  type KeyKind,
} from "../../src/core/crypto/keyfile.ts";
import type { CryptoSuite } from "../../src/core/crypto/suite.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { fromBase64, toBase64, utf8 } from "../../src/core/encoding/bytes.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";

const SUITES: readonly CryptoSuite[] = [nodeCrypto, webCrypto];
const CHEAP = { kdf: { N: 1024, r: 8, p: 1 }, allowWeakKdf: true } as const;
const PASSPHRASE = "correct horse battery staple";

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  const run = typeof promise === "function" ? async () => promise() : () => promise;
  await assert.rejects(run, (err: unknown) => {
    assert.ok(isLedgerError(err, code), `expected LedgerError ${code}, got ${String(err)}`);
    return true;
  });
}

async function newFile(crypto: CryptoSuite, kind: KeyKind = "patient"): Promise<[KeyFile, KeyFileContents]> {
  const keys = await generateKeyFileKeys(crypto, kind, "Ana's phone");
  const file = await createKeyFile(
    crypto,
    {
      kind,
      label: keys.label,
      signingSecretKey: keys.signing.secretKey,
      encryptionSecretKey: keys.encryption.secretKey,
    },
    PASSPHRASE,
    CHEAP,
  );
  return [file, keys];
}

/** A copy of a key file (as parsed JSON) with one member changed by `edit`. */
function altered(file: KeyFile, edit: (json: Record<string, Record<string, unknown>>) => void): unknown {
  const json = JSON.parse(JSON.stringify(file)) as Record<string, Record<string, unknown>>;
  edit(json);
  return json;
}

function otherBase64(value: unknown): string {
  const bytes = fromBase64(value as string);
  bytes[0]! ^= 0x01;
  return toBase64(bytes);
}

for (const crypto of SUITES) {
  describe(`key files on ${crypto.name}`, () => {
    it("create and unlock round trip, from the object and from the JSON text", async () => {
      const [file, keys] = await newFile(crypto);
      assert.equal(file.format, "medledger-keyfile");
      assert.equal(file.version, 1);
      assert.equal(file.cipher, "AES-256-GCM");
      assert.deepEqual(file.kdf.N, 1024);
      assert.equal(file.public.signing, toBase64(keys.signing.publicKey));
      assert.equal(file.public.encryption, toBase64(keys.encryption.publicKey));
      for (const input of [file, encodeKeyFile(file), utf8(encodeKeyFile(file))]) {
        const opened = await unlockKeyFile(crypto, input, PASSPHRASE);
        assert.deepEqual(opened, keys);
      }
    });

    it("keeps every kind of actor", async () => {
      for (const kind of ["patient", "org", "validator", "log", "witness"] as const) {
        const [file] = await newFile(crypto, kind);
        assert.equal((await unlockKeyFile(crypto, file, PASSPHRASE)).kind, kind);
      }
    });

    it("a wrong passphrase is PASSPHRASE_WRONG", async () => {
      const [file] = await newFile(crypto);
      await rejectsWith(unlockKeyFile(crypto, file, "Correct horse battery staple"), "PASSPHRASE_WRONG");
      await rejectsWith(unlockKeyFile(crypto, file, ""), "PASSPHRASE_WRONG");
    });

    it("the passphrase is compared in Unicode NFC form", async () => {
      const keys = await generateKeyFileKeys(crypto, "org", "clinic");
      const composed = "caf\u00e9 cr\u00e8me";
      const file = await createKeyFile(
        crypto,
        {
          kind: "org",
          label: "clinic",
          signingSecretKey: keys.signing.secretKey,
          encryptionSecretKey: keys.encryption.secretKey,
        },
        composed,
        CHEAP,
      );
      assert.deepEqual(await unlockKeyFile(crypto, file, composed.normalize("NFD")), keys);
    });

    it("every header field altered is refused", async () => {
      const [file] = await newFile(crypto);
      const other = await generateKeyFileKeys(crypto, "patient", "x");
      const edits: Array<[string, (j: Record<string, Record<string, unknown>>) => void, ErrorCode]> = [
        ["kind", (j) => void ((j as Record<string, unknown>).kind = "org"), "PASSPHRASE_WRONG"],
        ["label", (j) => void ((j as Record<string, unknown>).label = "Ana's laptop"), "PASSPHRASE_WRONG"],
        [
          "public.signing",
          (j) => void (j.public!.signing = toBase64(other.signing.publicKey)),
          "PASSPHRASE_WRONG",
        ],
        [
          "public.encryption",
          (j) => void (j.public!.encryption = toBase64(other.encryption.publicKey)),
          "PASSPHRASE_WRONG",
        ],
        ["kdf.N", (j) => void (j.kdf!.N = 2048), "PASSPHRASE_WRONG"],
        ["kdf.r", (j) => void (j.kdf!.r = 4), "PASSPHRASE_WRONG"],
        ["kdf.p", (j) => void (j.kdf!.p = 2), "PASSPHRASE_WRONG"],
        ["kdf.salt", (j) => void (j.kdf!.salt = otherBase64(j.kdf!.salt)), "PASSPHRASE_WRONG"],
        [
          "nonce",
          (j) => void ((j as Record<string, unknown>).nonce = otherBase64(j.nonce)),
          "PASSPHRASE_WRONG",
        ],
        [
          "ciphertext",
          (j) => void ((j as Record<string, unknown>).ciphertext = otherBase64(j.ciphertext)),
          "PASSPHRASE_WRONG",
        ],
        [
          "format",
          (j) => void ((j as Record<string, unknown>).format = "medledger-keyfile-x"),
          "MALFORMED_INPUT",
        ],
        ["version", (j) => void ((j as Record<string, unknown>).version = 2), "UNSUPPORTED_VERSION"],
        [
          "cipher",
          (j) => void ((j as Record<string, unknown>).cipher = "ChaCha20-Poly1305"),
          "UNSUPPORTED_ALGORITHM",
        ],
        ["kdf.name", (j) => void (j.kdf!.name = "argon2id"), "UNSUPPORTED_ALGORITHM"],
        ["an added member", (j) => void ((j as Record<string, unknown>).comment = "hi"), "MALFORMED_INPUT"],
        ["an added kdf member", (j) => void (j.kdf!.dkLen = 32), "MALFORMED_INPUT"],
        ["a removed member", (j) => void delete (j as Record<string, unknown>).label, "MALFORMED_INPUT"],
      ];
      for (const [what, edit, code] of edits) {
        await rejectsWith(unlockKeyFile(crypto, altered(file, edit) as KeyFile, PASSPHRASE), code).catch(
          (err: unknown) => {
            throw new Error(`altering ${what}: ${String(err)}`);
          },
        );
      }
      // The untouched file still opens.
      await unlockKeyFile(crypto, file, PASSPHRASE);
    });

    it("refuses unknown versions with UNSUPPORTED_VERSION, whatever else the file holds", async () => {
      await rejectsWith(
        unlockKeyFile(crypto, '{"format":"medledger-keyfile","version":2}', PASSPHRASE),
        "UNSUPPORTED_VERSION",
      );
      await rejectsWith(
        unlockKeyFile(crypto, '{"format":"medledger-keyfile","version":0}', PASSPHRASE),
        "UNSUPPORTED_VERSION",
      );
      await rejectsWith(
        unlockKeyFile(crypto, '{"format":"medledger-keyfile","version":"1"}', PASSPHRASE),
        "MALFORMED_INPUT",
      );
    });

    it("refuses absurd KDF parameters before doing any work", async () => {
      const [file] = await newFile(crypto);
      const started = Date.now();
      const hostile: Array<[Record<string, unknown>, ErrorCode]> = [
        [{ N: 2 ** 30 }, "TOO_LARGE"],
        [{ N: 2 ** 21 }, "TOO_LARGE"],
        [{ N: 2 ** 20, r: 8 }, "TOO_LARGE"],
        [{ r: 1000 }, "TOO_LARGE"],
        [{ p: 64 }, "TOO_LARGE"],
        [{ N: 2 ** 18, r: 8, p: 4 }, "TOO_LARGE"],
        [{ N: 1000 }, "MALFORMED_INPUT"],
        [{ N: 512 }, "MALFORMED_INPUT"],
        [{ N: 1.5 }, "MALFORMED_INPUT"],
        [{ N: "1024" }, "MALFORMED_INPUT"],
        [{ r: 0 }, "MALFORMED_INPUT"],
        [{ p: -1 }, "MALFORMED_INPUT"],
      ];
      for (const [params, code] of hostile) {
        const json = altered(file, (j) => Object.assign(j.kdf!, params));
        await rejectsWith(unlockKeyFile(crypto, json as KeyFile, PASSPHRASE), code);
      }
      assert.ok(Date.now() - started < 2000, "refusals must not run scrypt");
    });

    it("refuses malformed files with MALFORMED_INPUT (or TOO_LARGE)", async () => {
      const [file] = await newFile(crypto);
      const text = encodeKeyFile(file);
      const cases: Array<[unknown, ErrorCode]> = [
        ["not json", "MALFORMED_INPUT"],
        ["[]", "MALFORMED_INPUT"],
        ["null", "MALFORMED_INPUT"],
        [text.replace('"kind"', '"kind": "org", "kind"'), "MALFORMED_INPUT"],
        [text + "x", "MALFORMED_INPUT"],
        [utf8("\u00ff").fill(0xff), "MALFORMED_INPUT"],
        ["x".repeat(20000), "TOO_LARGE"],
        [altered(file, (j) => void ((j as Record<string, unknown>).kind = "admin")), "MALFORMED_INPUT"],
        [altered(file, (j) => void ((j as Record<string, unknown>).label = 7)), "MALFORMED_INPUT"],
        [
          altered(file, (j) => void ((j as Record<string, unknown>).label = "x".repeat(300))),
          "MALFORMED_INPUT",
        ],
        [altered(file, (j) => void ((j as Record<string, unknown>).nonce = "AAAA")), "MALFORMED_INPUT"],
        [
          altered(file, (j) => void ((j as Record<string, unknown>).nonce = "not base64!")),
          "MALFORMED_INPUT",
        ],
        [
          altered(file, (j) => void ((j as Record<string, unknown>).ciphertext = "A".repeat(10000))),
          "MALFORMED_INPUT",
        ],
        [altered(file, (j) => void (j.kdf!.salt = "AAAA")), "MALFORMED_INPUT"],
        [altered(file, (j) => void (j.public!.signing = "AAAA")), "MALFORMED_INPUT"],
        [altered(file, (j) => void ((j as Record<string, unknown>).public = [])), "MALFORMED_INPUT"],
        [altered(file, (j) => void ((j as Record<string, unknown>).kdf = "scrypt")), "MALFORMED_INPUT"],
      ];
      for (const [input, code] of cases) {
        await rejectsWith(unlockKeyFile(crypto, input as KeyFile, PASSPHRASE), code);
      }
    });

    it("creating refuses weak KDF costs without allowWeakKdf, empty passphrases and bad keys", async () => {
      const keys = await generateKeyFileKeys(crypto, "log", "log signer");
      const input = {
        kind: "log" as const,
        label: "log signer",
        signingSecretKey: keys.signing.secretKey,
        encryptionSecretKey: keys.encryption.secretKey,
      };
      await rejectsWith(
        createKeyFile(crypto, input, PASSPHRASE, { kdf: { N: 1024, r: 8, p: 1 } }),
        "INVALID_ARGUMENT",
      );
      await rejectsWith(
        createKeyFile(crypto, input, PASSPHRASE, { kdf: { N: 2 ** 17, r: 1, p: 1 } }),
        "INVALID_ARGUMENT",
      );
      await rejectsWith(
        createKeyFile(crypto, input, PASSPHRASE, { kdf: { N: 2 ** 30, r: 8, p: 1 }, allowWeakKdf: true }),
        "TOO_LARGE",
      );
      await rejectsWith(createKeyFile(crypto, input, "", CHEAP), "INVALID_ARGUMENT");
      await rejectsWith(
        createKeyFile(crypto, { ...input, signingSecretKey: new Uint8Array(31) }, PASSPHRASE, CHEAP),
        "KEY_INVALID",
      );
      await rejectsWith(
        createKeyFile(crypto, { ...input, kind: "admin" as KeyKind }, PASSPHRASE, CHEAP),
        "MALFORMED_INPUT",
      );
    });
  });
}

describe("key files across implementations", () => {
  it("a file created by the node suite unlocks with the web suite, and the reverse", async () => {
    for (const [maker, opener] of [
      [nodeCrypto, webCrypto],
      [webCrypto, nodeCrypto],
    ] as const) {
      const [file, keys] = await newFile(maker, "validator");
      assert.deepEqual(
        await opener.scrypt(utf8("p"), utf8("s"), { N: 1024, r: 8, p: 1 }, 32),
        await maker.scrypt(utf8("p"), utf8("s"), { N: 1024, r: 8, p: 1 }, 32),
      );
      assert.deepEqual(await unlockKeyFile(opener, encodeKeyFile(file), PASSPHRASE), keys);
      await rejectsWith(unlockKeyFile(opener, file, "wrong"), "PASSPHRASE_WRONG");
    }
  });

  it("the default cost is scrypt N = 2^17, r = 8, p = 1 (one full-cost file)", async () => {
    assert.deepEqual(KEYFILE_SCRYPT, { N: 131072, r: 8, p: 1 });
    const keys = await generateKeyFileKeys(nodeCrypto, "witness", "witness 1");
    const file = await createKeyFile(
      nodeCrypto,
      {
        kind: "witness",
        label: "witness 1",
        signingSecretKey: keys.signing.secretKey,
        encryptionSecretKey: keys.encryption.secretKey,
      },
      PASSPHRASE,
    );
    assert.deepEqual(parseKeyFile(encodeKeyFile(file)).kdf, {
      ...file.kdf,
      name: "scrypt",
      N: 131072,
      r: 8,
      p: 1,
    });
    assert.deepEqual(await unlockKeyFile(nodeCrypto, encodeKeyFile(file), PASSPHRASE), keys);
  });
});
