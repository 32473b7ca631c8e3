/**
 * Canonical JSON: RFC 8785 (JSON Canonicalization Scheme, JCS) serialisation, and a strict parser for the
 * JSON we accept from outside. An entry's id is the SHA-256 of its canonical bytes, so two encoders must
 * never disagree: the serialiser follows RFC 8785 section 3.2 to the letter, and the parser refuses
 * anything that could be read two ways (duplicate keys, lone surrogates) or that JCS cannot represent
 * exactly (non-finite numbers, integers beyond 2^53 - 1).
 */
import { LedgerError } from "../errors.ts";
import { fromUtf8, utf8 } from "./bytes.ts";

/** A JSON value as medledger accepts it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Limits applied by the parser and the serialiser; every size is bounded. */
export interface JsonLimits {
  /** Maximum nesting depth of arrays and objects (the top level is depth 1). */
  readonly maxDepth: number;
  /** Maximum input length in bytes (UTF-8) for parse, output length for canonicalize. */
  readonly maxBytes: number;
}

/** Defaults: deep enough for any entry or FHIR resource, shallow enough to keep the stack safe. */
export const DEFAULT_JSON_LIMITS: JsonLimits = { maxDepth: 64, maxBytes: 16 * 1024 * 1024 };

/**
 * A copy of a substring that does not keep its source alive. Engines may represent `text.slice(a, b)` as a
 * view into `text` (V8 does for 13 characters or more), so a value parsed out of an entry would hold the
 * whole entry text in memory for as long as the value lives (the ledger state keeps record ids, patients,
 * orgs and months for every entry: measured at 1.2 KB retained per record). Concatenation followed by a
 * slice flattens into a fresh string; shorter strings are always copied by the engine.
 */
function ownString(s: string): string {
  return s.length < 13 ? s : (" " + s).slice(1);
}

/**
 * Serialise a number as RFC 8785 section 3.2.2.3 requires: the ECMAScript Number-to-String algorithm
 * (ECMA-262 7.1.12.1), with -0 written as 0. Refuses NaN and the infinities.
 */
export function serializeNumber(value: number): string {
  if (!Number.isFinite(value)) {
    throw new LedgerError("INVALID_NUMBER", `JCS cannot represent the number ${String(value)}`);
  }
  // String(-0) is "0" already; ECMAScript's shortest round-trip form is exactly what JCS specifies.
  return String(value);
}

function checkNumber(value: number): void {
  if (!Number.isFinite(value)) {
    throw new LedgerError("INVALID_NUMBER", `non-finite number ${String(value)} is not allowed`);
  }
  if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
    throw new LedgerError(
      "INVALID_NUMBER",
      `number ${String(value)} is outside the safe range ±(2^53 - 1); encode large values as strings`,
    );
  }
}

/** Any UTF-16 surrogate code unit: strings without one are well-formed without a closer look. */
const SURROGATE = /[\uD800-\uDFFF]/;

/** True when the string has no unpaired UTF-16 surrogate (so it has exactly one UTF-8 encoding). */
export function isWellFormedString(s: string): boolean {
  // Nearly every string we see has no surrogate at all: one native scan answers for those.
  if (!SURROGATE.test(s)) return true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

function checkString(s: string): void {
  if (!isWellFormedString(s)) {
    throw new LedgerError("INVALID_STRING", "string contains a lone surrogate (not valid Unicode)");
  }
}

/** The serialiser's output so far and its bounds (one object per call: no closures on the hot path). */
interface Serializer {
  out: string;
  readonly maxBytes: number;
  readonly maxDepth: number;
}

function emit(st: Serializer, s: string): void {
  st.out += s;
  // out.length counts UTF-16 units, a lower bound on the UTF-8 length; canonicalBytes checks exactly.
  if (st.out.length > st.maxBytes)
    throw new LedgerError("TOO_LARGE", "canonical JSON exceeds the size limit");
}

function serialize(st: Serializer, v: unknown, depth: number): void {
  if (v === null) return emit(st, "null");
  switch (typeof v) {
    case "boolean":
      return emit(st, v ? "true" : "false");
    case "number":
      checkNumber(v);
      return emit(st, serializeNumber(v));
    case "string":
      checkString(v);
      return emit(st, JSON.stringify(v));
    case "object": {
      if (depth >= st.maxDepth) {
        throw new LedgerError("TOO_DEEP", `JSON nesting deeper than ${st.maxDepth}`);
      }
      if (Array.isArray(v)) {
        emit(st, "[");
        for (let i = 0; i < v.length; i++) {
          if (i > 0) emit(st, ",");
          serialize(st, v[i], depth + 1);
        }
        return emit(st, "]");
      }
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new LedgerError("MALFORMED_INPUT", "only plain objects can be canonicalised");
      }
      const record = v as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what RFC 8785 section 3.2.3 requires.
      const keys = Object.keys(record).sort();
      emit(st, "{");
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const member = record[key];
        if (member === undefined) {
          throw new LedgerError("MALFORMED_INPUT", `member "${key}" is undefined`);
        }
        checkString(key);
        if (i > 0) emit(st, ",");
        emit(st, JSON.stringify(key));
        emit(st, ":");
        serialize(st, member, depth + 1);
      }
      return emit(st, "}");
    }
    default:
      throw new LedgerError("MALFORMED_INPUT", `a ${typeof v} cannot be represented in JSON`);
  }
}

/**
 * RFC 8785 canonical serialisation of a JSON value as a string: object members sorted by the UTF-16 code
 * units of their names (section 3.2.3), no whitespace, strings escaped as ECMAScript JSON.stringify does
 * (section 3.2.2.2), numbers as in serializeNumber. Refuses values outside the medledger JSON model.
 */
export function canonicalize(value: unknown, limits: JsonLimits = DEFAULT_JSON_LIMITS): string {
  const st: Serializer = { out: "", maxBytes: limits.maxBytes, maxDepth: limits.maxDepth };
  serialize(st, value, 0);
  return st.out;
}

/** RFC 8785 canonical bytes (UTF-8) of a JSON value. */
export function canonicalBytes(value: unknown, limits: JsonLimits = DEFAULT_JSON_LIMITS): Uint8Array {
  const bytes = utf8(canonicalize(value, limits));
  if (bytes.length > limits.maxBytes)
    throw new LedgerError("TOO_LARGE", "canonical JSON exceeds the size limit");
  return bytes;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Parse JSON (RFC 8259) strictly: refuses duplicate member names, lone surrogates (raw or escaped),
 * numbers that overflow or leave the safe range, nesting beyond the limit, trailing content, and input
 * beyond the size limit. Accepts a string, or bytes that must be valid UTF-8.
 */
export function parseJson(input: string | Uint8Array, limits: JsonLimits = DEFAULT_JSON_LIMITS): JsonValue {
  let text: string;
  if (typeof input === "string") {
    if (input.length > limits.maxBytes)
      throw new LedgerError("TOO_LARGE", "JSON input exceeds the size limit");
    text = input;
  } else {
    if (input.length > limits.maxBytes)
      throw new LedgerError("TOO_LARGE", "JSON input exceeds the size limit");
    text = fromUtf8(input);
  }
  let pos = 0;
  const fail = (code: "MALFORMED_INPUT", why: string): never => {
    throw new LedgerError(code, `invalid JSON at offset ${pos}: ${why}`);
  };
  const skipWs = (): void => {
    while (pos < text.length && WS.has(text.charCodeAt(pos))) pos++;
  };
  const expectWord = (word: string): void => {
    if (text.startsWith(word, pos)) pos += word.length;
    else fail("MALFORMED_INPUT", "unexpected token");
  };

  const parseString = (): string => {
    // Called with text[pos] === '"'.
    pos++;
    let out = "";
    let runStart = pos;
    while (true) {
      if (pos >= text.length) fail("MALFORMED_INPUT", "unterminated string");
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out = out === "" ? ownString(text.slice(runStart, pos)) : out + text.slice(runStart, pos);
        pos++;
        break;
      }
      if (c < 0x20) fail("MALFORMED_INPUT", "control character in string");
      if (c === 0x5c) {
        out += text.slice(runStart, pos);
        pos++;
        const e = text[pos];
        switch (e) {
          case '"':
            out += '"';
            break;
          case "\\":
            out += "\\";
            break;
          case "/":
            out += "/";
            break;
          case "b":
            out += "\b";
            break;
          case "f":
            out += "\f";
            break;
          case "n":
            out += "\n";
            break;
          case "r":
            out += "\r";
            break;
          case "t":
            out += "\t";
            break;
          case "u": {
            const hex = text.slice(pos + 1, pos + 5);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("MALFORMED_INPUT", "bad \\u escape");
            out += String.fromCharCode(parseInt(hex, 16));
            pos += 4;
            break;
          }
          default:
            fail("MALFORMED_INPUT", "bad escape");
        }
        pos++;
        runStart = pos;
        continue;
      }
      pos++;
    }
    if (!isWellFormedString(out)) {
      throw new LedgerError(
        "INVALID_STRING",
        `invalid JSON at offset ${pos}: string contains a lone surrogate`,
      );
    }
    return out;
  };

  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const parseNumber = (): number => {
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) return fail("MALFORMED_INPUT", "bad number");
    pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isFinite(n)) {
      throw new LedgerError("INVALID_NUMBER", `invalid JSON: number ${m[0]} overflows`);
    }
    checkNumber(n);
    return n;
  };

  const parseValue = (depth: number): JsonValue => {
    skipWs();
    const c = text[pos];
    switch (c) {
      case "{": {
        if (depth >= limits.maxDepth) {
          throw new LedgerError("TOO_DEEP", `JSON nesting deeper than ${limits.maxDepth}`);
        }
        pos++;
        const obj: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
        skipWs();
        if (text[pos] === "}") {
          pos++;
          return Object.setPrototypeOf(obj, Object.prototype) as Record<string, JsonValue>;
        }
        while (true) {
          skipWs();
          if (text[pos] !== '"') fail("MALFORMED_INPUT", "expected a member name");
          const key = parseString();
          if (Object.prototype.hasOwnProperty.call(obj, key)) {
            throw new LedgerError(
              "DUPLICATE_KEY",
              `invalid JSON: duplicate member name ${JSON.stringify(key)}`,
            );
          }
          skipWs();
          if (text[pos] !== ":") fail("MALFORMED_INPUT", "expected ':'");
          pos++;
          // defineProperty so that a member named "__proto__" is data, never a prototype change.
          Object.defineProperty(obj, key, {
            value: parseValue(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
          skipWs();
          if (text[pos] === ",") {
            pos++;
            continue;
          }
          if (text[pos] === "}") {
            pos++;
            return Object.setPrototypeOf(obj, Object.prototype) as Record<string, JsonValue>;
          }
          fail("MALFORMED_INPUT", "expected ',' or '}'");
        }
      }
      case "[": {
        if (depth >= limits.maxDepth) {
          throw new LedgerError("TOO_DEEP", `JSON nesting deeper than ${limits.maxDepth}`);
        }
        pos++;
        const arr: JsonValue[] = [];
        skipWs();
        if (text[pos] === "]") {
          pos++;
          return arr;
        }
        while (true) {
          arr.push(parseValue(depth + 1));
          skipWs();
          if (text[pos] === ",") {
            pos++;
            continue;
          }
          if (text[pos] === "]") {
            pos++;
            return arr;
          }
          fail("MALFORMED_INPUT", "expected ',' or ']'");
        }
      }
      case '"':
        return parseString();
      case "t":
        expectWord("true");
        return true;
      case "f":
        expectWord("false");
        return false;
      case "n":
        expectWord("null");
        return null;
      default:
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return parseNumber();
        return fail("MALFORMED_INPUT", c === undefined ? "unexpected end of input" : "unexpected character");
    }
  };

  const value = parseValue(0);
  skipWs();
  if (pos !== text.length) fail("MALFORMED_INPUT", "trailing content after the JSON value");
  return value;
}

/** A `\u` escape of a surrogate code unit, the way JSON.stringify writes a lone one (either case). */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

/**
 * The shape checks JSON.stringify does not make: nesting within `maxDepth` (counted as parseJson and
 * canonicalize count it), object members in strictly ascending UTF-16 order (sorted as RFC 8785 section
 * 3.2.3 requires, hence also no duplicates), numbers in the safe integer range.
 */
function canonicalShape(v: unknown, depth: number, maxDepth: number): boolean {
  if (typeof v === "number") return Math.abs(v) <= Number.MAX_SAFE_INTEGER;
  if (typeof v !== "object" || v === null) return true;
  if (depth >= maxDepth) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!canonicalShape(v[i], depth + 1, maxDepth)) return false;
    return true;
  }
  const record = v as Record<string, unknown>;
  const keys = Object.keys(record);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
    if (!canonicalShape(record[keys[i]!], depth + 1, maxDepth)) return false;
  }
  return true;
}

/**
 * The value of `text` when `text` is exactly the RFC 8785 canonical form of a JSON value that parseJson
 * accepts within `limits`; otherwise undefined, which proves nothing (the text may still be canonical: ask
 * parseJson and canonicalize, which also say why not). The same value parseJson would give, at a fraction
 * of the cost, because the engine's JSON.parse and JSON.stringify do the work:
 *
 * - JSON.stringify writes strings and numbers exactly as RFC 8785 sections 3.2.2.2 and 3.2.2.3 do, and
 *   object members in property order, which for an object from JSON.parse is the order of the text; so
 *   when that order is already the sorted one, JSON.stringify's output is the canonical form.
 * - What JSON.parse accepts and parseJson refuses cannot come back equal: a duplicate member leaves one
 *   member in the output, whitespace or another spelling of a string or number changes it; lone surrogates
 *   (which JSON.stringify writes as `\u` escapes), unsafe numbers and nesting beyond the limit are
 *   checked here.
 */
export function parseCanonical(
  text: string,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): JsonValue | undefined {
  if (text.length > limits.maxBytes || ESCAPED_SURROGATE.test(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!canonicalShape(value, 0, limits.maxDepth)) return undefined;
  return JSON.stringify(value) === text ? (value as JsonValue) : undefined;
}

/** Parse strictly, then re-serialise canonically: the canonical form of any accepted JSON text. */
export function recanonicalize(
  input: string | Uint8Array,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): Uint8Array {
  return canonicalBytes(parseJson(input, limits), limits);
}
