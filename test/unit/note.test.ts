/**
 * C2SP signed-note, tlog-cosignature and quorum: the published notes in test/vectors/signed-note, every
 * mutation the spec says must fail, and sign/verify round trips.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { concatBytes, fromBase64, toBase64, utf8 } from "../../src/core/encoding/bytes.ts";
import { isLedgerError, type ErrorCode } from "../../src/core/errors.ts";
import { parseCheckpoint } from "../../src/core/note/checkpoint.ts";
import {
  COSIGNATURE_V1_BYTES,
  cosignCheckpoint,
  cosignatureMessage,
  cosignatureSigner,
  cosignatureTimestamp,
  cosignatureVerifier,
  generateCosignatureKey,
  parseCosignatureSignerKey,
  parseCosignatureVerifierKey,
  verifyCosignature,
} from "../../src/core/note/cosignature.ts";
import { checkQuorum } from "../../src/core/note/quorum.ts";
import {
  computeKeyId,
  ed25519NoteSigner,
  formatNote,
  formatVerifierKey,
  generateNoteKey,
  isValidKeyName,
  MAX_NOTE_SIGNATURES,
  openNote,
  parseNote,
  parseNoteSignerKey,
  parseNoteVerifierKey,
  signNote,
  type NoteVerifier,
} from "../../src/core/note/signed-note.ts";
import { nodeCrypto } from "../../src/platform/node-crypto.ts";
import { webCrypto } from "../../src/platform/web-crypto.ts";

interface NoteVector {
  readonly what: string;
  readonly verifier_key: string;
  readonly note: string;
}

const vectors = (
  JSON.parse(readFileSync(new URL("../vectors/signed-note/notes.json", import.meta.url), "utf8")) as {
    valid: NoteVector[];
  }
).valid;

const LOG_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const checkpoint15 = readFileSync(
  new URL("../vectors/tessera-log/log/checkpoint.15", import.meta.url),
  "utf8",
);

/** Go's documented test signer key for PeterNeumann (golang.org/x/mod/sumdb/note package doc). */
const PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isLedgerError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isLedgerError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

/** Rewrite the signature bytes of the first signature line with `edit`. */
function editFirstSignature(note: string, edit: (raw: Uint8Array) => void): string {
  const parsed = parseNote(note);
  const first = parsed.signatures[0]!;
  const raw = concatBytes(
    Uint8Array.of(
      first.keyId >>> 24,
      (first.keyId >>> 16) & 255,
      (first.keyId >>> 8) & 255,
      first.keyId & 255,
    ),
    first.signature,
  );
  edit(raw);
  const split = note.lastIndexOf("\n\n");
  const lines = note.slice(split + 2).split("\n");
  lines[0] = `\u2014 ${first.name} ${toBase64(raw)}`;
  return note.slice(0, split + 2) + lines.join("\n");
}

// Both crypto suites must pass the same vectors (STYLE.md, "A pure core, I/O in adapters").
for (const crypto of [nodeCrypto, webCrypto]) {
  describe(`with the ${crypto.name} crypto suite`, () => {
    describe("signed-note: published vectors", () => {
      for (const v of vectors) {
        it(`verifies ${v.what}`, async () => {
          const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
          assert.equal(verifier.verifierKey, v.verifier_key);
          const opened = await openNote(v.note, [verifier]);
          assert.equal(opened.text, v.note.slice(0, v.note.lastIndexOf("\n\n") + 1));
          assert.deepEqual(opened.signedBy, [verifier]);
          assert.equal(opened.unknown.length, 0);
          assert.equal(formatNote(opened), v.note);
        });

        it(`refuses every one-bit change of ${v.what}`, async () => {
          const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
          const bytes = utf8(v.note);
          for (let i = 0; i < bytes.length; i++) {
            const mutated = bytes.slice();
            mutated[i]! ^= 0x01;
            await assert.rejects(openNote(mutated, [verifier]), `byte ${i} flipped was accepted`);
          }
        });

        it(`refuses a changed text byte, signature byte and key for ${v.what}`, async () => {
          const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
          const textChanged = (v.note[0] === "X" ? "Y" : "X") + v.note.slice(1);
          await rejects(openNote(textChanged, [verifier]), "SIGNATURE_INVALID");
          const sigChanged = editFirstSignature(v.note, (raw) => {
            raw[10]! ^= 0x80;
          });
          await rejects(openNote(sigChanged, [verifier]), "SIGNATURE_INVALID");
          // Another key under the same name: a different key ID, so the vector's line is from an unknown key.
          const otherKey = verifier.publicKey.slice();
          otherKey[0]! ^= 1;
          const other = parseNoteVerifierKey(
            crypto,
            formatVerifierKey(verifier.name, computeKeyId(crypto, verifier.name, 1, otherKey), 1, otherKey),
          );
          await rejects(openNote(v.note, [other]), "SIGNATURE_INVALID");
          // The same key ID forced onto a different key: the key string itself is refused.
          throwsCode(
            () => parseNoteVerifierKey(crypto, formatVerifierKey(verifier.name, verifier.keyId, 1, otherKey)),
            "KEY_INVALID",
          );
        });

        it(`refuses structural damage to ${v.what}`, async () => {
          const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
          const split = v.note.lastIndexOf("\n\n");
          const noBlank = v.note.slice(0, split + 1) + v.note.slice(split + 2);
          await rejects(openNote(noBlank, [verifier]), "MALFORMED_INPUT");
          await rejects(openNote(v.note.replace("\u2014 ", "- "), [verifier]), "MALFORMED_INPUT");
          await rejects(openNote(v.note.replace("\u2014 ", "\u2013 "), [verifier]), "MALFORMED_INPUT");
          await rejects(openNote(v.note.replace("\u2014 ", "\u2014"), [verifier]), "MALFORMED_INPUT");
          await rejects(openNote(v.note.slice(0, -1), [verifier]), "MALFORMED_INPUT");
          await rejects(openNote(`${v.note}\n`, [verifier]), "MALFORMED_INPUT");
          await rejects(openNote(v.note.replace("\n", "\r\n"), [verifier]), "MALFORMED_INPUT");
        });

        it(`ignores an unknown extra signature on ${v.what}, but not when it is the only one`, async () => {
          const verifier = parseNoteVerifierKey(crypto, v.verifier_key);
          const stranger = await ed25519NoteSigner(crypto, "stranger.example", crypto.randomBytes(32));
          const parsed = parseNote(v.note);
          const doubled = await signNote(parsed, [stranger]);
          const opened = await openNote(doubled, [verifier]);
          assert.deepEqual(opened.signedBy, [verifier]);
          assert.equal(opened.unknown.length, 1);
          assert.equal(opened.unknown[0]!.name, "stranger.example");
          const onlyStranger = await signNote(parsed.text, [stranger]);
          await rejects(openNote(onlyStranger, [verifier]), "SIGNATURE_INVALID");
          await rejects(openNote(v.note, []), "SIGNATURE_INVALID");
        });
      }
    });

    describe("signed-note: keys", () => {
      it("rebuilds Go's PeterNeumann note from its signer key (Ed25519 is deterministic)", async () => {
        const peter = vectors.find((v) => v.verifier_key.startsWith("PeterNeumann+"))!;
        const signer = await parseNoteSignerKey(crypto, PETER_SKEY);
        assert.equal(signer.verifier.verifierKey, peter.verifier_key);
        const text = parseNote(peter.note).text;
        assert.equal(await signNote(text, [signer]), peter.note);
      });

      it("generates key pairs that sign and verify", async () => {
        const keys = await generateNoteKey(crypto, "medledger.example/log");
        const signer = await parseNoteSignerKey(crypto, keys.signerKey);
        const verifier = parseNoteVerifierKey(crypto, keys.verifierKey);
        const note = await signNote("hello\n\nworld\n", [signer]);
        const opened = await openNote(note, [verifier]);
        assert.equal(opened.text, "hello\n\nworld\n");
      });

      it("refuses malformed verifier keys", () => {
        const good = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        assert.equal(parseNoteVerifierKey(crypto, good).verifierKey, good);
        assert.equal(parseNoteVerifierKey(crypto, good.replace("c74f20a3", "C74F20A3")).verifierKey, good);
        const bad = [
          "",
          "PeterNeumann",
          "PeterNeumann+c74f20a3",
          "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
          "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
          "PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
          "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
          "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
          "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
          "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq_LDE4izWy10TW",
          "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ",
          "PeterNeumann+c74f20a3+",
        ];
        for (const vkey of bad) throwsCode(() => parseNoteVerifierKey(crypto, vkey), "KEY_INVALID");
      });

      it("refuses a wrong type byte and a wrong key length even with a matching key ID", () => {
        const pub = fromBase64("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").subarray(1);
        const as04 = formatVerifierKey("PeterNeumann", computeKeyId(crypto, "PeterNeumann", 4, pub), 4, pub);
        throwsCode(() => parseNoteVerifierKey(crypto, as04), "KEY_INVALID");
        const short = pub.subarray(0, 31);
        throwsCode(
          () =>
            parseNoteVerifierKey(
              crypto,
              formatVerifierKey("PeterNeumann", computeKeyId(crypto, "PeterNeumann", 1, short), 1, short),
            ),
          "KEY_INVALID",
        );
        const long = concatBytes(pub, Uint8Array.of(0));
        throwsCode(
          () =>
            parseNoteVerifierKey(
              crypto,
              formatVerifierKey("PeterNeumann", computeKeyId(crypto, "PeterNeumann", 1, long), 1, long),
            ),
          "KEY_INVALID",
        );
      });

      it("refuses signer keys with a wrong prefix, key ID or length", async () => {
        await rejects(parseNoteSignerKey(crypto, PETER_SKEY.replace("c74f20a3", "c74f20a4")), "KEY_INVALID");
        await rejects(
          parseNoteSignerKey(crypto, PETER_SKEY.replace("PRIVATE+KEY+", "PRIVATE+")),
          "KEY_INVALID",
        );
        await rejects(parseNoteSignerKey(crypto, PETER_SKEY.slice(0, -4)), "KEY_INVALID");
        await rejects(parseNoteSignerKey(crypto, PETER_SKEY.replace("+AYEK", "+BYEK")), "KEY_INVALID");
      });

      it("applies the key name rules: non-empty, no Unicode space, no '+'", () => {
        for (const ok of ["a", "example.com/log", "ünïcode", "a-b_c"]) assert.ok(isValidKeyName(ok), ok);
        for (const bad of [
          "",
          "a b",
          "a+b",
          "a\tb",
          "a\u00a0b",
          "a\u2003b",
          "a\u3000b",
          "a\u0085b",
          "a\u0001b",
          "a\ud800b",
        ]) {
          assert.ok(!isValidKeyName(bad), JSON.stringify(bad));
        }
      });
    });

    describe("signed-note: parsing and signing rules", () => {
      it("verifies every line of a known key, so a bad duplicate fails the note", async () => {
        const signer = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        const note = await signNote("text\n", [signer]);
        const line = note.slice(note.lastIndexOf("\n\n") + 2);
        const opened = await openNote(note + line, [signer.verifier]);
        assert.equal(opened.signedBy.length, 1);
        const bad = editFirstSignature(note, (raw) => {
          raw[20]! ^= 1;
        });
        await rejects(
          openNote(note + bad.slice(bad.lastIndexOf("\n\n") + 2), [signer.verifier]),
          "SIGNATURE_INVALID",
        );
      });

      it("rejects the note when one known key fails even if another known key verifies", async () => {
        const a = await ed25519NoteSigner(crypto, "a.example", crypto.randomBytes(32));
        const b = await ed25519NoteSigner(crypto, "b.example", crypto.randomBytes(32));
        const note = await signNote("text\n", [a]);
        const forged = `${note}\u2014 b.example ${toBase64(concatBytes(Uint8Array.of(b.keyId >>> 24, (b.keyId >>> 16) & 255, (b.keyId >>> 8) & 255, b.keyId & 255), new Uint8Array(64)))}\n`;
        await rejects(openNote(forged, [a.verifier, b.verifier]), "SIGNATURE_INVALID");
        assert.equal((await openNote(forged, [a.verifier])).unknown.length, 1);
      });

      it("ignores a signature sharing only the name or only the key ID of a known key", async () => {
        const known = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        const note = await signNote("text\n", [known]);
        const sameName = `${note}\u2014 k.example ${toBase64(new Uint8Array(68))}\n`;
        assert.equal((await openNote(sameName, [known.verifier])).unknown.length, 1);
        const id = Uint8Array.of(
          known.keyId >>> 24,
          (known.keyId >>> 16) & 255,
          (known.keyId >>> 8) & 255,
          known.keyId & 255,
        );
        const sameId = `${note}\u2014 other.example ${toBase64(concatBytes(id, new Uint8Array(64)))}\n`;
        assert.equal((await openNote(sameId, [known.verifier])).unknown.length, 1);
      });

      it("refuses malformed signature lines, control characters, invalid UTF-8 and oversize notes", async () => {
        const signer = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        const v = [signer.verifier];
        const note = await signNote("text\n", [signer]);
        const sig = note.slice(note.lastIndexOf(" ") + 1, -1);
        await rejects(openNote(`text\n\n\u2014 k.example\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n\u2014 k.example \n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n\u2014 k.example AAAAAA==\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n\u2014 k+x ${sig}\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n\u2014  ${sig}\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n\u2014 k.example ${sig} \n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`text\n\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(`te\u0000xt\n\n\u2014 k.example ${sig}\n`, v), "MALFORMED_INPUT");
        await rejects(openNote(concatBytes(Uint8Array.of(0xff), utf8(note)), v), "MALFORMED_INPUT");
        await rejects(openNote(`${"x".repeat(1024 * 1024)}\n${note}`, v), "TOO_LARGE");
        const many =
          note + `\u2014 other.example ${toBase64(new Uint8Array(68))}\n`.repeat(MAX_NOTE_SIGNATURES);
        await rejects(openNote(many, v), "TOO_LARGE");
        const sixteen = note + `\u2014 other.example ${toBase64(new Uint8Array(68))}\n`.repeat(15);
        assert.equal((await openNote(sixteen, v)).unknown.length, 15);
      });

      it("keeps empty lines inside the text, split at the last blank line", async () => {
        const signer = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        for (const text of ["\n", "a\n\nb\n", "a\n\n\n", "line\n\n\u2014 not a signature\n", "\ufeffbom\n"]) {
          const opened = await openNote(await signNote(text, [signer]), [signer.verifier]);
          assert.equal(opened.text, text);
        }
      });

      it("refuses to sign a text without a final newline or with control characters", async () => {
        const signer = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        await rejects(signNote("no newline", [signer]), "MALFORMED_INPUT");
        await rejects(signNote("tab\there\n", [signer]), "MALFORMED_INPUT");
        await rejects(signNote("", [signer]), "MALFORMED_INPUT");
      });

      it("replaces an existing signature from the same key when re-signing", async () => {
        const signer = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        const other = await ed25519NoteSigner(crypto, "o.example", crypto.randomBytes(32));
        const once = await signNote("text\n", [signer, other]);
        const twice = await signNote(parseNote(once), [signer]);
        assert.equal(parseNote(twice).signatures.length, 2);
        assert.equal((await openNote(twice, [signer.verifier, other.verifier])).signedBy.length, 2);
      });

      it("refuses two different known keys with the same name and key ID", async () => {
        const signer = await ed25519NoteSigner(crypto, "k.example", crypto.randomBytes(32));
        const clash: NoteVerifier = { ...signer.verifier, publicKey: new Uint8Array(32) };
        await rejects(
          openNote(await signNote("t\n", [signer]), [signer.verifier, clash]),
          "INVALID_ARGUMENT",
        );
        assert.equal(
          (await openNote(await signNote("t\n", [signer]), [signer.verifier, signer.verifier])).signedBy
            .length,
          1,
        );
      });
    });

    describe("tlog-cosignature (cosignature/v1)", () => {
      const logKey = parseNoteVerifierKey(crypto, LOG_VKEY);
      const T = 1_700_000_000n;

      it("reads the timestamp of the spec's example cosignature", () => {
        const example =
          "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n" +
          "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
        const sig = parseNote(example).signatures[0]!;
        assert.equal(sig.signature.length, COSIGNATURE_V1_BYTES);
        assert.equal(cosignatureTimestamp(sig.signature), 1679315147n);
      });

      it("builds the signed message of tlog-cosignature 'Ed25519 signed message'", () => {
        const body = utf8(
          "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        );
        const expected =
          "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert.deepEqual(cosignatureMessage(1679315147n, body), utf8(expected));
        assert.throws(() => cosignatureMessage(1n << 63n, body));
        assert.throws(() => cosignatureMessage(-1n, body));
      });

      it("cosigns a real checkpoint and verifies it with the log key and the witness key", async () => {
        const pair = await crypto.ed25519Generate();
        const witness = await cosignatureSigner(crypto, "witness.example/w1", pair.secretKey, () => T);
        const cosigned = await cosignCheckpoint(checkpoint15, witness);
        const opened = await openNote(cosigned, [logKey, witness.verifier]);
        assert.deepEqual(opened.signedBy, [logKey, witness.verifier]);
        const line = opened.signatures[1]!;
        assert.equal(line.signature.length, 72);
        assert.equal(cosignatureTimestamp(line.signature), T);
        // Independent check of the message layout: Ed25519 over "cosignature/v1\ntime T\n" || body.
        const message = utf8(`cosignature/v1\ntime ${T}\n${opened.text}`);
        assert.ok(await crypto.ed25519Verify(pair.publicKey, message, line.signature.subarray(8)));
        // Key ID: SHA-256(name || "\n" || 0x04 || pub)[:4].
        assert.equal(witness.keyId, computeKeyId(crypto, "witness.example/w1", 0x04, pair.publicKey));
        assert.ok(await verifyCosignature(crypto, pair.publicKey, utf8(opened.text), line.signature));
      });

      it("refuses a mutated timestamp, body or signature, and ignores an unknown witness", async () => {
        const pair = await crypto.ed25519Generate();
        const witness = await cosignatureSigner(crypto, "witness.example/w1", pair.secretKey, () => T);
        const cosigned = await cosignCheckpoint(checkpoint15, witness);
        const parsed = parseNote(cosigned);
        const sig = parsed.signatures[1]!;
        const body = utf8(parsed.text);
        const later = sig.signature.slice();
        later[7]! ^= 1;
        assert.equal(await verifyCosignature(crypto, pair.publicKey, body, later), false);
        const flipped = sig.signature.slice();
        flipped[40]! ^= 1;
        assert.equal(await verifyCosignature(crypto, pair.publicKey, body, flipped), false);
        const otherBody = utf8(parsed.text.replace("\n15\n", "\n16\n"));
        assert.equal(await verifyCosignature(crypto, pair.publicKey, otherBody, sig.signature), false);
        const huge = sig.signature.slice();
        huge[0] = 0x80;
        assert.equal(await verifyCosignature(crypto, pair.publicKey, body, huge), false);
        assert.equal(await verifyCosignature(crypto, pair.publicKey, body, sig.signature.subarray(1)), false);

        const tampered = formatNote({
          text: parsed.text,
          signatures: [parsed.signatures[0]!, { ...sig, signature: later }],
        });
        await rejects(openNote(tampered, [logKey, witness.verifier]), "SIGNATURE_INVALID");
        const onlyWitness = await openNote(cosigned, [logKey]);
        assert.equal(onlyWitness.unknown.length, 1);
        // The witness line of a different body fails: the log line is unknown here, the witness key known.
        const moved = formatNote({ text: parsed.text.replace("\n15\n", "\n16\n"), signatures: [sig] });
        await rejects(openNote(moved, [witness.verifier]), "SIGNATURE_INVALID");
      });

      it("is not accepted as a plain Ed25519 signature, nor the reverse", async () => {
        const pair = await crypto.ed25519Generate();
        const witness = await cosignatureSigner(crypto, "w.example", pair.secretKey, () => T);
        const plain = await ed25519NoteSigner(crypto, "w.example", pair.secretKey);
        assert.notEqual(witness.keyId, plain.keyId);
        const cosigned = await cosignCheckpoint(checkpoint15, witness);
        await rejects(openNote(cosigned, [plain.verifier]), "SIGNATURE_INVALID");
        const signed = await signNote(parseNote(checkpoint15).text, [plain]);
        await rejects(openNote(signed, [witness.verifier]), "SIGNATURE_INVALID");
      });

      it("round-trips witness key strings and refuses wrong ones", async () => {
        const keys = await generateCosignatureKey(crypto, "witness.example/w2");
        const verifier = parseCosignatureVerifierKey(crypto, keys.verifierKey);
        assert.equal(verifier.verifierKey, keys.verifierKey);
        // The base64 part may itself contain '+': split at the first two only.
        const first = keys.verifierKey.indexOf("+");
        const second = keys.verifierKey.indexOf("+", first + 1);
        const name = keys.verifierKey.slice(0, first);
        const b64 = keys.verifierKey.slice(second + 1);
        assert.equal(fromBase64(b64)[0], 0x04);
        const signer = await parseCosignatureSignerKey(crypto, keys.signerKey, () => T);
        const opened = await openNote(await cosignCheckpoint(checkpoint15, signer), [verifier]);
        assert.deepEqual(opened.signedBy, [verifier]);
        throwsCode(() => parseCosignatureVerifierKey(crypto, LOG_VKEY), "KEY_INVALID");
        throwsCode(() => parseNoteVerifierKey(crypto, keys.verifierKey), "KEY_INVALID");
        throwsCode(() => parseCosignatureVerifierKey(crypto, `${name}+00000000+${b64}`), "KEY_INVALID");
        throwsCode(() => cosignatureVerifier(crypto, name, new Uint8Array(31)), "KEY_INVALID");
      });

      it("refuses to cosign something that is not a checkpoint", async () => {
        const pair = await crypto.ed25519Generate();
        const witness = await cosignatureSigner(crypto, "w.example", pair.secretKey, () => T);
        const plain = await ed25519NoteSigner(crypto, "p.example", pair.secretKey);
        await rejects(
          cosignCheckpoint(await signNote("not\na checkpoint\n", [plain]), witness),
          "CHECKPOINT_INVALID",
        );
        assert.equal(parseCheckpoint(parseNote(checkpoint15).text).size, 15n);
      });
    });

    describe("quorum", () => {
      const keys = Promise.all(
        ["w1", "w2", "w3"].map(
          async (n) => (await cosignatureSigner(crypto, `${n}.example`, crypto.randomBytes(32))).verifier,
        ),
      );

      it("passes k of n with distinct signers and counts each key once", async () => {
        const [a, b, c] = (await keys) as [NoteVerifier, NoteVerifier, NoteVerifier];
        assert.equal(checkQuorum({ keys: [a, b, c], threshold: 2 }, [a, b]).signed.length, 2);
        assert.equal(checkQuorum({ keys: [a, b, c], threshold: 0 }, []).signed.length, 0);
        assert.equal(checkQuorum({ keys: [], threshold: 0 }, []).total, 0);
        throwsCode(() => checkQuorum({ keys: [a, b, c], threshold: 2 }, [a, a, a]), "QUORUM_NOT_MET");
        throwsCode(() => checkQuorum({ keys: [a, a, b], threshold: 3 }, [a, b]), "INVALID_ARGUMENT");
        assert.equal(checkQuorum({ keys: [a, a, b], threshold: 2 }, [a, b]).total, 2);
      });

      it("does not count signers outside the policy", async () => {
        const [a, b, c] = (await keys) as [NoteVerifier, NoteVerifier, NoteVerifier];
        throwsCode(() => checkQuorum({ keys: [a, b], threshold: 1 }, [c]), "QUORUM_NOT_MET");
        const lookalike: NoteVerifier = { ...a, publicKey: new Uint8Array(32) };
        throwsCode(() => checkQuorum({ keys: [a], threshold: 1 }, [lookalike]), "QUORUM_NOT_MET");
      });

      it("refuses impossible thresholds", async () => {
        const [a] = (await keys) as [NoteVerifier];
        throwsCode(() => checkQuorum({ keys: [a], threshold: 2 }, [a]), "INVALID_ARGUMENT");
        throwsCode(() => checkQuorum({ keys: [a], threshold: -1 }, [a]), "INVALID_ARGUMENT");
        throwsCode(() => checkQuorum({ keys: [a], threshold: 0.5 }, [a]), "INVALID_ARGUMENT");
        throwsCode(() => checkQuorum({ keys: [], threshold: 1 }, []), "INVALID_ARGUMENT");
      });
    });
  });
}
