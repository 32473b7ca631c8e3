/**
 * The part of RFC 8941 (Structured Field Values for HTTP, as carried on by RFC 9651) that request
 * authentication needs: parsing and serializing Dictionaries (section 3.2), Inner Lists (3.1.1), Items
 * (3.3) and Parameters (3.1.2), with every bare item type of RFC 8941 (Integer, Decimal, String, Token,
 * Byte Sequence, Boolean). RFC 9651's Date and Display String are not needed and are refused.
 *
 * Parsing follows the algorithms of RFC 8941 section 4.2 step by step, with three deliberate departures,
 * all towards refusing: a Dictionary key or a Parameter key that appears twice is refused instead of the
 * later one silently winning (4.2.2, 4.2.3.2), because in Signature-Input and Signature a repeated label
 * would let a proxy or an attacker swap the signature a verifier sees; a Byte Sequence with non-zero pad
 * bits is refused (4.2.7 only recommends leniency); and every input is bounded in length and in members.
 * Missing "=" padding is accepted, as 4.2.7 asks.
 */
import { fromBase64, toBase64 } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";

/** A bare item (RFC 8941 section 3.3): the value of an Item or of a Parameter. */
export type SfBareItem =
  | { readonly type: "integer"; readonly value: number }
  | { readonly type: "decimal"; readonly value: number }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "token"; readonly value: string }
  | { readonly type: "bytes"; readonly value: Uint8Array }
  | { readonly type: "boolean"; readonly value: boolean };

/** Parameters (RFC 8941 section 3.1.2): ordered key-value pairs; keys are unique. */
export type SfParameters = readonly (readonly [key: string, value: SfBareItem])[];

/** An Item (RFC 8941 section 3.3): a bare item with parameters. */
export interface SfItem {
  readonly value: SfBareItem;
  readonly params: SfParameters;
}

/** An Inner List (RFC 8941 section 3.1.1): items with parameters of its own. */
export interface SfInnerList {
  readonly items: readonly SfItem[];
  readonly params: SfParameters;
}

/** A Dictionary member value: an Item or an Inner List. */
export type SfMember = SfItem | SfInnerList;

/** A Dictionary (RFC 8941 section 3.2): ordered members with unique keys. */
export type SfDictionary = readonly (readonly [key: string, member: SfMember])[];

/** Bounds applied while parsing; every one refuses with TOO_LARGE. */
export interface SfBounds {
  /** Longest field value accepted, in characters. */
  readonly maxLength: number;
  /** Most Dictionary members. */
  readonly maxMembers: number;
  /** Most items in one Inner List. */
  readonly maxInnerListItems: number;
  /** Most Parameters on one Item or Inner List. */
  readonly maxParameters: number;
}

/** Default parse bounds: far above anything request authentication sends, far below harm. */
export const SF_DEFAULT_BOUNDS: SfBounds = {
  maxLength: 8192,
  maxMembers: 32,
  maxInnerListItems: 32,
  maxParameters: 16,
};

/** RFC 8941 section 3.3.1: integers have at most 15 digits. */
const MAX_INTEGER = 999_999_999_999_999;
/** RFC 8941 section 3.3.2: decimals have at most 12 integer digits. */
const MAX_DECIMAL_INTEGER_PART = 999_999_999_999;

/** True when the member is an Inner List rather than an Item. */
export function isInnerList(member: SfMember): member is SfInnerList {
  return "items" in member;
}

/** The value of the parameter named `key`, or undefined. */
export function getParameter(params: SfParameters, key: string): SfBareItem | undefined {
  for (const [k, v] of params) if (k === key) return v;
  return undefined;
}

/** The member named `key` of a Dictionary, or undefined. */
export function getMember(dictionary: SfDictionary, key: string): SfMember | undefined {
  for (const [k, v] of dictionary) if (k === key) return v;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Parsing (RFC 8941 section 4.2)
// ---------------------------------------------------------------------------------------------------

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLcAlpha = (c: number): boolean => c >= 0x61 && c <= 0x7a;
const isAlpha = (c: number): boolean => isLcAlpha(c) || (c >= 0x41 && c <= 0x5a);
/** RFC 9110 section 5.6.2 tchar. */
const isTchar = (c: number): boolean =>
  isAlpha(c) || isDigit(c) || (c < 128 && "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));
/** RFC 8941 section 3.1.2 key characters after the first. */
const isKeyChar = (c: number): boolean =>
  isLcAlpha(c) || isDigit(c) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x2a;
const isBase64Char = (c: number): boolean =>
  isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2f || c === 0x3d;

class Parser {
  pos = 0;
  readonly text: string;
  readonly what: string;
  readonly bounds: SfBounds;

  constructor(text: string, what: string, bounds: SfBounds) {
    this.text = text;
    this.what = what;
    this.bounds = bounds;
  }

  fail(why: string): never {
    throw new LedgerError("MALFORMED_INPUT", `${this.what}: ${why} at offset ${this.pos}`);
  }

  tooLarge(why: string): never {
    throw new LedgerError("TOO_LARGE", `${this.what}: ${why}`);
  }

  get done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): number {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  skipSp(): void {
    while (this.peek() === 0x20) this.pos++;
  }

  /** OWS: SP and HTAB (RFC 9110 section 5.6.3). */
  skipOws(): void {
    while (this.peek() === 0x20 || this.peek() === 0x09) this.pos++;
  }

  /** RFC 8941 section 4.2.2. */
  dictionary(): SfDictionary {
    const members: (readonly [string, SfMember])[] = [];
    const seen = new Set<string>();
    while (!this.done) {
      const keyAt = this.pos;
      const key = this.key();
      if (seen.has(key)) {
        this.pos = keyAt;
        this.fail(`member "${key}" appears twice`);
      }
      seen.add(key);
      if (members.length >= this.bounds.maxMembers)
        this.tooLarge(`more than ${this.bounds.maxMembers} members`);
      let member: SfMember;
      if (this.peek() === 0x3d /* = */) {
        this.pos++;
        member = this.itemOrInnerList();
      } else {
        member = { value: { type: "boolean", value: true }, params: this.parameters() };
      }
      members.push([key, member]);
      this.skipOws();
      if (this.done) return members;
      if (this.peek() !== 0x2c /* , */) this.fail("expected a comma between members");
      this.pos++;
      this.skipOws();
      if (this.done) this.fail("trailing comma");
    }
    return members;
  }

  itemOrInnerList(): SfMember {
    return this.peek() === 0x28 /* ( */ ? this.innerList() : this.item();
  }

  /** RFC 8941 section 4.2.1.2. */
  innerList(): SfInnerList {
    this.pos++; // "("
    const items: SfItem[] = [];
    while (!this.done) {
      this.skipSp();
      if (this.peek() === 0x29 /* ) */) {
        this.pos++;
        return { items, params: this.parameters() };
      }
      if (items.length >= this.bounds.maxInnerListItems) {
        this.tooLarge(`an inner list has more than ${this.bounds.maxInnerListItems} items`);
      }
      items.push(this.item());
      const c = this.peek();
      if (c !== 0x20 && c !== 0x29) this.fail("expected a space or ')' after an inner-list item");
    }
    return this.fail("unterminated inner list");
  }

  /** RFC 8941 section 4.2.3. */
  item(): SfItem {
    const value = this.bareItem();
    return { value, params: this.parameters() };
  }

  /** RFC 8941 section 4.2.3.1. */
  bareItem(): SfBareItem {
    const c = this.peek();
    if (c === 0x2d /* - */ || isDigit(c)) return this.number();
    if (c === 0x22 /* " */) return this.string();
    if (isAlpha(c) || c === 0x2a /* * */) return this.token();
    if (c === 0x3a /* : */) return this.bytes();
    if (c === 0x3f /* ? */) return this.boolean();
    if (c === -1) return this.fail("expected an item, found the end");
    return this.fail(`unexpected character ${JSON.stringify(String.fromCharCode(c))}`);
  }

  /** RFC 8941 section 4.2.3.2. */
  parameters(): SfParameters {
    const params: (readonly [string, SfBareItem])[] = [];
    while (this.peek() === 0x3b /* ; */) {
      this.pos++;
      this.skipSp();
      const keyAt = this.pos;
      const key = this.key();
      if (params.some(([k]) => k === key)) {
        this.pos = keyAt;
        this.fail(`parameter "${key}" appears twice`);
      }
      if (params.length >= this.bounds.maxParameters)
        this.tooLarge(`more than ${this.bounds.maxParameters} parameters`);
      let value: SfBareItem = { type: "boolean", value: true };
      if (this.peek() === 0x3d /* = */) {
        this.pos++;
        value = this.bareItem();
      }
      params.push([key, value]);
    }
    return params;
  }

  /** RFC 8941 section 4.2.3.3. */
  key(): string {
    const start = this.pos;
    const c = this.peek();
    if (!isLcAlpha(c) && c !== 0x2a) this.fail("a key must start with a lower-case letter or '*'");
    this.pos++;
    while (isKeyChar(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /** RFC 8941 section 4.2.4. */
  number(): SfBareItem {
    let sign = 1;
    if (this.peek() === 0x2d) {
      sign = -1;
      this.pos++;
    }
    if (!isDigit(this.peek())) this.fail("expected a digit");
    const digitsStart = this.pos;
    let dot = -1;
    while (!this.done) {
      const c = this.peek();
      if (isDigit(c)) {
        this.pos++;
      } else if (c === 0x2e /* . */ && dot < 0) {
        if (this.pos - digitsStart > 12) this.fail("a decimal has more than 12 integer digits");
        dot = this.pos;
        this.pos++;
      } else {
        break;
      }
      const length = this.pos - digitsStart;
      if (dot < 0 && length > 15) this.fail("an integer has more than 15 digits");
      if (dot >= 0 && length > 16) this.fail("a decimal has more than 16 characters");
    }
    const digits = this.text.slice(digitsStart, this.pos);
    if (dot < 0) {
      return { type: "integer", value: sign * Number.parseInt(digits, 10) };
    }
    const fraction = this.pos - dot - 1;
    if (fraction === 0) this.fail("a decimal ends with '.'");
    if (fraction > 3) this.fail("a decimal has more than 3 fractional digits");
    return { type: "decimal", value: sign * Number.parseFloat(digits) };
  }

  /** RFC 8941 section 4.2.5. */
  string(): SfBareItem {
    this.pos++; // DQUOTE
    let out = "";
    while (!this.done) {
      const c = this.peek();
      this.pos++;
      if (c === 0x5c /* \ */) {
        const next = this.peek();
        if (next !== 0x22 && next !== 0x5c) this.fail("a backslash in a string escapes only '\"' or '\\'");
        out += String.fromCharCode(next);
        this.pos++;
      } else if (c === 0x22) {
        return { type: "string", value: out };
      } else if (c < 0x20 || c > 0x7e) {
        this.pos--;
        this.fail("a string holds a character outside printable ASCII");
      } else {
        out += String.fromCharCode(c);
      }
    }
    return this.fail("unterminated string");
  }

  /** RFC 8941 section 4.2.6. */
  token(): SfBareItem {
    const start = this.pos;
    this.pos++;
    for (let c = this.peek(); isTchar(c) || c === 0x3a || c === 0x2f; c = this.peek()) this.pos++;
    return { type: "token", value: this.text.slice(start, this.pos) };
  }

  /** RFC 8941 section 4.2.7. */
  bytes(): SfBareItem {
    this.pos++; // ":"
    const start = this.pos;
    while (isBase64Char(this.peek())) this.pos++;
    if (this.peek() !== 0x3a)
      this.fail("a byte sequence holds a character outside base64 or is unterminated");
    let b64 = this.text.slice(start, this.pos);
    this.pos++;
    // Section 4.2.7: parsers SHOULD NOT fail when "=" padding is missing.
    if (!b64.includes("=") && b64.length % 4 !== 0) b64 += "=".repeat(4 - (b64.length % 4));
    try {
      return { type: "bytes", value: fromBase64(b64) };
    } catch (cause) {
      throw new LedgerError("MALFORMED_INPUT", `${this.what}: invalid base64 in a byte sequence`, { cause });
    }
  }

  /** RFC 8941 section 4.2.8. */
  boolean(): SfBareItem {
    this.pos++; // "?"
    const c = this.peek();
    if (c !== 0x30 && c !== 0x31) this.fail("a boolean is ?0 or ?1");
    this.pos++;
    return { type: "boolean", value: c === 0x31 };
  }
}

/**
 * Parse a field value as a Dictionary (RFC 8941 section 4.2 with 4.2.2). `what` names the field in
 * error messages. Refuses MALFORMED_INPUT on any syntax error or repeated key, TOO_LARGE past a bound.
 */
export function parseDictionary(
  text: string,
  what: string,
  bounds: SfBounds = SF_DEFAULT_BOUNDS,
): SfDictionary {
  const parser = startParser(text, what, bounds);
  const dictionary = parser.dictionary();
  return finish(parser, dictionary);
}

/** Parse a field value as an Item (RFC 8941 section 4.2 with 4.2.3). */
export function parseItem(text: string, what: string, bounds: SfBounds = SF_DEFAULT_BOUNDS): SfItem {
  const parser = startParser(text, what, bounds);
  const item = parser.item();
  return finish(parser, item);
}

function startParser(text: string, what: string, bounds: SfBounds): Parser {
  if (typeof text !== "string") throw new LedgerError("INVALID_ARGUMENT", `${what} must be a string`);
  if (text.length > bounds.maxLength) {
    throw new LedgerError("TOO_LARGE", `${what}: longer than ${bounds.maxLength} characters`);
  }
  const parser = new Parser(text, what, bounds);
  // Section 4.2 step 1: the field value must be ASCII.
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      parser.pos = i;
      parser.fail("non-ASCII character");
    }
  }
  parser.skipSp();
  return parser;
}

function finish<T>(parser: Parser, value: T): T {
  parser.skipSp();
  if (!parser.done) parser.fail("unexpected characters after the value");
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Serialization (RFC 8941 section 4.1)
// ---------------------------------------------------------------------------------------------------

function serializationError(why: string): never {
  throw new LedgerError("INVALID_ARGUMENT", `cannot serialize a structured field: ${why}`);
}

/** Serialize a key (RFC 8941 section 4.1.1.3). */
export function serializeKey(key: string): string {
  if (key.length === 0) serializationError("empty key");
  const first = key.charCodeAt(0);
  if (!isLcAlpha(first) && first !== 0x2a) serializationError(`invalid key ${JSON.stringify(key)}`);
  for (let i = 1; i < key.length; i++) {
    if (!isKeyChar(key.charCodeAt(i))) serializationError(`invalid key ${JSON.stringify(key)}`);
  }
  return key;
}

/** Serialize a bare item (RFC 8941 section 4.1.3.1). */
export function serializeBareItem(item: SfBareItem): string {
  switch (item.type) {
    case "integer":
      // Section 4.1.4.
      if (!Number.isInteger(item.value) || Math.abs(item.value) > MAX_INTEGER) {
        serializationError(`integer out of range: ${item.value}`);
      }
      return String(item.value);
    case "decimal": {
      // Section 4.1.5: at most 12 integer digits, at most 3 fractional digits (rounded), at least one.
      const v = item.value;
      if (!Number.isFinite(v)) serializationError("non-finite decimal");
      const rounded = roundHalfEven(v * 1000) / 1000;
      if (Math.abs(Math.trunc(rounded)) > MAX_DECIMAL_INTEGER_PART)
        serializationError(`decimal out of range: ${v}`);
      let text = Math.abs(rounded)
        .toFixed(3)
        .replace(/0{1,2}$/, "");
      if (rounded < 0) text = "-" + text;
      return text;
    }
    case "string": {
      // Section 4.1.6.
      let out = '"';
      for (let i = 0; i < item.value.length; i++) {
        const c = item.value.charCodeAt(i);
        if (c < 0x20 || c > 0x7e) serializationError("a string holds a character outside printable ASCII");
        if (c === 0x22 || c === 0x5c) out += "\\";
        out += item.value[i]!;
      }
      return out + '"';
    }
    case "token": {
      // Section 4.1.7.
      const t = item.value;
      const first = t.charCodeAt(0);
      if (t.length === 0 || !(isAlpha(first) || first === 0x2a))
        serializationError(`invalid token ${JSON.stringify(t)}`);
      for (let i = 1; i < t.length; i++) {
        const c = t.charCodeAt(i);
        if (!(isTchar(c) || c === 0x3a || c === 0x2f))
          serializationError(`invalid token ${JSON.stringify(t)}`);
      }
      return t;
    }
    case "bytes":
      // Section 4.1.8.
      return `:${toBase64(item.value)}:`;
    case "boolean":
      // Section 4.1.9.
      return item.value ? "?1" : "?0";
  }
}

/** Round to the nearest integer, ties to even (RFC 8941 section 4.1.5). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Serialize parameters (RFC 8941 section 4.1.1.2). */
export function serializeParameters(params: SfParameters): string {
  let out = "";
  for (const [key, value] of params) {
    out += ";" + serializeKey(key);
    if (!(value.type === "boolean" && value.value)) out += "=" + serializeBareItem(value);
  }
  return out;
}

/** Serialize an Item (RFC 8941 section 4.1.3). */
export function serializeItem(item: SfItem): string {
  return serializeBareItem(item.value) + serializeParameters(item.params);
}

/** Serialize an Inner List (RFC 8941 section 4.1.1.1). */
export function serializeInnerList(list: SfInnerList): string {
  return "(" + list.items.map(serializeItem).join(" ") + ")" + serializeParameters(list.params);
}

/** Serialize a Dictionary (RFC 8941 section 4.1.2). */
export function serializeDictionary(dictionary: SfDictionary): string {
  return dictionary
    .map(([key, member]) => {
      const k = serializeKey(key);
      if (isInnerList(member)) return `${k}=${serializeInnerList(member)}`;
      if (member.value.type === "boolean" && member.value.value)
        return k + serializeParameters(member.params);
      return `${k}=${serializeItem(member)}`;
    })
    .join(", ");
}
