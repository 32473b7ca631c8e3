import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  constantTimeEqual,
  fromBase64,
  fromHex,
  fromUtf8,
  i2osp,
  toBase64,
  toHex,
} from "../../src/core/encoding/bytes.ts";
import { isLedgerError } from "../../src/core/errors.ts";

const malformed = (err: unknown): boolean => isLedgerError(err, "MALFORMED_INPUT");

describe("byte helpers", () => {
  it("base64 agrees with Node's encoder and round-trips", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = toBase64(bytes);
        assert.equal(text, Buffer.from(bytes).toString("base64"));
        assert.deepEqual(fromBase64(text), bytes);
      }),
    );
  });

  it("base64 parsing is strict: one accepted encoding per byte string", () => {
    for (const bad of [
      "A",
      "AA",
      "AAA",
      "AA=A",
      "=AAA",
      "AAAA=",
      "AB==",
      "AAB=",
      "A A=",
      "AA-_",
      "AA\n==",
      "Zg=\u0100",
    ]) {
      assert.throws(() => fromBase64(bad), malformed, bad);
    }
    assert.deepEqual(fromBase64("Zg=="), new Uint8Array([0x66]));
    assert.deepEqual(fromBase64(""), new Uint8Array());
  });

  it("hex round-trips and refuses odd or non-hex input", () => {
    assert.equal(toHex(new Uint8Array([0, 15, 255])), "000fff");
    assert.deepEqual(fromHex("000FfF"), new Uint8Array([0, 15, 255]));
    for (const bad of ["0", "0g", "zz", " 00"]) assert.throws(() => fromHex(bad), malformed, bad);
  });

  it("UTF-8 decoding is strict and keeps a leading byte order mark (signed bytes must not change)", () => {
    assert.equal(fromUtf8(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), "\ufeffa");
    assert.throws(() => fromUtf8(new Uint8Array([0xff])), malformed);
    assert.throws(() => fromUtf8(new Uint8Array([0xed, 0xa0, 0x80])), malformed);
  });

  it("constant-time equality compares contents and lengths", () => {
    assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
    assert.equal(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 0])), false);
  });

  it("i2osp encodes big-endian and refuses values that do not fit", () => {
    assert.deepEqual(i2osp(258, 2), new Uint8Array([1, 2]));
    assert.deepEqual(i2osp(2 ** 40 + 1, 8), new Uint8Array([0, 0, 1, 0, 0, 0, 0, 1]));
    assert.throws(
      () => i2osp(256, 1),
      (e: unknown) => isLedgerError(e, "INVALID_ARGUMENT"),
    );
    assert.throws(
      () => i2osp(-1, 4),
      (e: unknown) => isLedgerError(e, "INVALID_ARGUMENT"),
    );
  });
});
