import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  canonicalize,
  canonicalBytes,
  parseJson,
  recanonicalize,
  serializeNumber,
} from "../../src/core/encoding/jcs.ts";
import type { JsonValue } from "../../src/core/encoding/jcs.ts";
import { isLedgerError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";

function refuses(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => isLedgerError(err, code), `expected LedgerError ${code}`);
}

describe("RFC 8785 canonical serialisation", () => {
  it("sorts members by UTF-16 code units (RFC 8785 section 3.2.3 example)", () => {
    const input =
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
      '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",' +
      '"\\u00f6":"Latin Small Letter O With Diaeresis"}';
    // (Object.keys would list "1" first, as integer-like keys always are in JavaScript: compare text.)
    const expected = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]
      .map((k) => JSON.stringify(k) + ":")
      .map((k) => canonicalize(parseJson(input)).indexOf(k));
    assert.ok(
      expected.every((at, i) => at > 0 && (i === 0 || at > expected[i - 1]!)),
      String(expected),
    );
  });

  it("serialises the section 3.2.2 example (without the out-of-range 1E30)", () => {
    const input =
      '{\n  "numbers": [333333333.33333329, 4.50, 2e-3, 0.000000000000000000000000001],\n' +
      '  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n' +
      '  "literals": [null, true, false]\n}';
    assert.equal(
      canonicalize(parseJson(input)),
      '{"literals":[null,true,false],"numbers":[333333333.3333333,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it("formats numbers with the ECMAScript algorithm (RFC 8785 appendix B samples)", () => {
    const cases: [number, string][] = [
      [0, "0"],
      [-0, "0"],
      [5e-324, "5e-324"],
      [-5e-324, "-5e-324"],
      [1.7976931348623157e308, "1.7976931348623157e+308"],
      [2.2250738585072014e-308, "2.2250738585072014e-308"],
      [9007199254740992, "9007199254740992"],
      [295147905179352830000, "295147905179352830000"],
      [9.999999999999997e22, "9.999999999999997e+22"],
      [1e23, "1e+23"],
      [0.000001, "0.000001"],
      [9.999999999999997e-7, "9.999999999999997e-7"],
      [333333333.3333333, "333333333.3333333"],
    ];
    for (const [n, s] of cases) assert.equal(serializeNumber(n), s);
    refuses(() => serializeNumber(Number.NaN), "INVALID_NUMBER");
    refuses(() => serializeNumber(Number.POSITIVE_INFINITY), "INVALID_NUMBER");
  });

  it("escapes control characters and leaves other characters raw", () => {
    assert.equal(canonicalize("\u0000\u001f\u007f\u2028é"), '"\\u0000\\u001f\u007f\u2028é"');
    assert.deepEqual(canonicalBytes({ b: 1, a: [true] }), new TextEncoder().encode('{"a":[true],"b":1}'));
  });

  it("refuses values outside the model", () => {
    refuses(() => canonicalize({ a: Number.POSITIVE_INFINITY }), "INVALID_NUMBER");
    refuses(() => canonicalize(2 ** 53), "INVALID_NUMBER");
    refuses(() => canonicalize("\ud800"), "INVALID_STRING");
    refuses(() => canonicalize({ ["\udc00"]: 1 }), "INVALID_STRING");
    refuses(() => canonicalize({ a: undefined }), "MALFORMED_INPUT");
    refuses(() => canonicalize(new Date(0)), "MALFORMED_INPUT");
    refuses(() => canonicalize(10n), "MALFORMED_INPUT");
    let deep: unknown = 1;
    for (let i = 0; i < 65; i++) deep = [deep];
    refuses(() => canonicalize(deep), "TOO_DEEP");
    refuses(() => canonicalize("x".repeat(100), { maxDepth: 8, maxBytes: 50 }), "TOO_LARGE");
  });
});

describe("strict JSON parsing", () => {
  it("refuses duplicate member names, also when they only match after unescaping", () => {
    refuses(() => parseJson('{"a":1,"a":2}'), "DUPLICATE_KEY");
    refuses(() => parseJson('{"a":1,"\\u0061":2}'), "DUPLICATE_KEY");
    refuses(() => parseJson('{"x":{"__proto__":1,"__proto__":2}}'), "DUPLICATE_KEY");
  });

  it("keeps __proto__ as data", () => {
    const v = parseJson('{"__proto__":{"polluted":true}}') as Record<string, JsonValue>;
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
    assert.deepEqual(Object.keys(v), ["__proto__"]);
    assert.equal(canonicalize(v), '{"__proto__":{"polluted":true}}');
  });

  it("refuses lone surrogates, escaped or raw", () => {
    refuses(() => parseJson('"\\ud800"'), "INVALID_STRING");
    refuses(() => parseJson('"\\udc00\\ud800"'), "INVALID_STRING");
    refuses(() => parseJson('{"\\udfff":1}'), "INVALID_STRING");
    refuses(() => parseJson('"\ud800"'), "INVALID_STRING");
    assert.equal(parseJson('"\\ud83d\\ude00"'), "\u{1f600}");
  });

  it("refuses non-finite and out-of-range numbers", () => {
    refuses(() => parseJson("1e400"), "INVALID_NUMBER");
    refuses(() => parseJson("-1e400"), "INVALID_NUMBER");
    refuses(() => parseJson("9007199254740992"), "INVALID_NUMBER");
    refuses(() => parseJson("[1E30]"), "INVALID_NUMBER");
    assert.equal(parseJson("9007199254740991"), Number.MAX_SAFE_INTEGER);
    assert.equal(parseJson("-9007199254740991"), -Number.MAX_SAFE_INTEGER);
    for (const bad of ["NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "0x10", "1e", "-"]) {
      refuses(() => parseJson(bad), "MALFORMED_INPUT");
    }
  });

  it("refuses over-deep nesting without exhausting the stack", () => {
    assert.deepEqual(parseJson("[".repeat(64) + "]".repeat(64)) !== null, true);
    refuses(() => parseJson("[".repeat(65) + "]".repeat(65)), "TOO_DEEP");
    refuses(() => parseJson('{"a":'.repeat(100000) + "1" + "}".repeat(100000)), "TOO_DEEP");
  });

  it("refuses malformed documents with a clear error", () => {
    for (const bad of [
      "",
      " ",
      "{",
      "[1,]",
      '{"a":1,}',
      '{"a" 1}',
      "{a:1}",
      "'x'",
      '"unterminated',
      '"tab\there"',
      '"bad \\x escape"',
      '"\\u12"',
      "tru",
      "nul",
      "[1] [2]",
      "1 2",
    ]) {
      refuses(() => parseJson(bad), "MALFORMED_INPUT");
    }
  });

  it("refuses invalid UTF-8 and oversized input", () => {
    refuses(() => parseJson(new Uint8Array([0x22, 0xc3, 0x28, 0x22])), "MALFORMED_INPUT");
    refuses(() => parseJson(new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])), "MALFORMED_INPUT");
    refuses(() => parseJson("[" + "1,".repeat(100) + "1]", { maxDepth: 64, maxBytes: 100 }), "TOO_LARGE");
  });

  it("accepts insignificant whitespace and re-canonicalises it away", () => {
    assert.equal(
      new TextDecoder().decode(recanonicalize(' { "b" : [ 1 , 2 ] ,\n"a":null }\t')),
      '{"a":null,"b":[1,2]}',
    );
  });
});

const jsonValue: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }),
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: "binary" }), tie("value"), { maxKeys: 5 }),
  ),
})).value;

describe("properties", () => {
  it("parse(canonicalize(x)) round-trips and canonicalize is idempotent", () => {
    fc.assert(
      fc.property(jsonValue, (x) => {
        const once = canonicalize(x);
        const parsed = parseJson(once);
        // Round trip: same canonical form, and the same value (with -0 normalised to 0 by JCS).
        assert.equal(canonicalize(parsed), once);
        assert.deepEqual(parsed, JSON.parse(once));
        assert.deepEqual(recanonicalize(once), new TextEncoder().encode(once));
      }),
      { numRuns: 500 },
    );
  });

  it("canonical output is independent of member insertion order", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.integer(), { maxKeys: 8 }), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        assert.equal(canonicalize(reversed), canonicalize(obj));
      }),
    );
  });

  it("our parser agrees with JSON.parse on everything it accepts", () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        let ours: JsonValue;
        try {
          ours = parseJson(text);
        } catch (err) {
          // Only refusals our policy adds on top of JSON are allowed.
          assert.ok(
            isLedgerError(err, "INVALID_NUMBER") || isLedgerError(err, "INVALID_STRING"),
            String(err),
          );
          return;
        }
        assert.deepEqual(ours, JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });
});
