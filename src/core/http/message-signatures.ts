/**
 * RFC 9421 HTTP Message Signatures for requests, with Ed25519 (section 3.3.6, alg "ed25519").
 *
 * A signature covers an ordered list of components of the request: derived components (section 2.2:
 * @method, @authority, @path, @query) and header fields (section 2.1, by lower-case name). The signer
 * builds the signature base (section 2.5), one line per component and a last "@signature-params" line,
 * signs it, and sends two Dictionary fields under one label (section 4):
 *
 *     Signature-Input: sig1=("@method" "@path" "content-digest");created=1700000000;keyid="org:a";nonce="..."
 *     Signature: sig1=:<base64 of the 64-byte Ed25519 signature>:
 *
 * The verifier rebuilds the base from the request it received and the parsed Signature-Input, and checks
 * the signature. The "@signature-params" line is the canonical re-serialization (RFC 8941 section 4.1) of
 * the parsed inner list, so parameters keep their order and any change to them changes the base.
 *
 * This module is the mechanism only; what medledger requires of a request (which components, the clock
 * window, nonces and replays) is the policy in ./request-auth.ts. Component parameters (;sf, ;key, ;bs,
 * ;req, ;name, ;tr), other derived components and responses are not supported and are refused.
 *
 * Codes: a missing field or label is AUTH_REQUIRED; a field that does not parse MALFORMED_INPUT (or
 * TOO_LARGE past a bound); a Signature-Input that parses but breaks RFC 9421 or our subset AUTH_INVALID;
 * an alg other than ed25519 UNSUPPORTED_ALGORITHM; a signature that does not verify SIGNATURE_INVALID.
 */
import type { CryptoSuite } from "../crypto/suite.ts";
import { toBase64, utf8 } from "../encoding/bytes.ts";
import { LedgerError } from "../errors.ts";
import {
  getMember,
  isInnerList,
  parseDictionary,
  serializeInnerList,
  serializeKey,
  type SfBareItem,
  type SfBounds,
  type SfDictionary,
  type SfInnerList,
  type SfParameters,
} from "./structured-fields.ts";

/** Header fields as Node's IncomingHttpHeaders or Object.fromEntries(new Headers(...)) give them. */
export type HttpHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** A request as the signer sends it or the verifier received it. */
export interface HttpRequest {
  /** The method, as sent (RFC 9110 section 9.1: case-sensitive; never normalized). */
  readonly method: string;
  /** The absolute target URI, e.g. "https://node.example/v1/entries?since=3". */
  readonly url: string;
  /** Header fields; names in any case. */
  readonly headers: HttpHeaders;
  /** The content, when there is one. */
  readonly body?: Uint8Array | undefined;
}

/** The signature parameters of RFC 9421 section 2.3 (all optional there; the policy requires some). */
export interface SignatureParams {
  /** Creation time, Unix seconds. */
  readonly created?: number;
  /** Expiry time, Unix seconds. */
  readonly expires?: number;
  /** Identifies the key that signed. */
  readonly keyid?: string;
  /** The algorithm; only "ed25519" here. */
  readonly alg?: string;
  /** A random, single-use value. */
  readonly nonce?: string;
  /** An application tag. */
  readonly tag?: string;
}

/** One signature's entry of Signature-Input, parsed and checked. */
export interface SignatureInput {
  /** The Dictionary key both fields use for this signature. */
  readonly label: string;
  /** The covered component names, in order. */
  readonly components: readonly string[];
  /** The signature parameters. */
  readonly params: SignatureParams;
  /** The serialized inner list: the value of the "@signature-params" line of the base. */
  readonly serializedParams: string;
}

/** A signature read from a request: its input and the signature bytes. */
export interface RequestSignature {
  readonly input: SignatureInput;
  readonly signature: Uint8Array;
}

/** The algorithm name of RFC 9421 section 3.3.6. */
export const ALG_ED25519 = "ed25519";

/** Longest Signature-Input or Signature field value we parse. */
export const MAX_SIGNATURE_FIELD_LENGTH = 4096;
/** Most signatures (labels) in one Signature-Input or Signature field. */
export const MAX_SIGNATURE_LABELS = 8;
/** Most covered components in one signature. */
export const MAX_COVERED_COMPONENTS = 16;
/** Longest covered header field value (after combining its lines). */
export const MAX_COVERED_FIELD_LENGTH = 8192;
/** Longest keyid, nonce and tag. */
export const MAX_KEYID_LENGTH = 256;
export const MAX_NONCE_LENGTH = 128;
export const MAX_TAG_LENGTH = 64;
/** Longest method name. */
export const MAX_METHOD_LENGTH = 32;

/** The derived components we can compute (RFC 9421 section 2.2). */
export const SUPPORTED_DERIVED_COMPONENTS = ["@method", "@authority", "@path", "@query"] as const;

/** The parameters of RFC 9421 section 2.3 and their types. */
const PARAM_TYPES: Readonly<Record<keyof SignatureParams, "integer" | "string">> = {
  created: "integer",
  expires: "integer",
  keyid: "string",
  alg: "string",
  nonce: "string",
  tag: "string",
};

/** The order in which we write parameters (RFC 9421 B.2.6 writes created before keyid). */
const PARAM_ORDER: readonly (keyof SignatureParams)[] = [
  "created",
  "expires",
  "keyid",
  "alg",
  "nonce",
  "tag",
];

const PARAM_MAX_LENGTH: Readonly<Record<"keyid" | "alg" | "nonce" | "tag", number>> = {
  keyid: MAX_KEYID_LENGTH,
  alg: 32,
  nonce: MAX_NONCE_LENGTH,
  tag: MAX_TAG_LENGTH,
};

const SIGNATURE_FIELD_BOUNDS: SfBounds = {
  maxLength: MAX_SIGNATURE_FIELD_LENGTH,
  maxMembers: MAX_SIGNATURE_LABELS,
  maxInnerListItems: MAX_COVERED_COMPONENTS,
  maxParameters: 8,
};

/** RFC 9110 section 5.6.2 token, lower case only: the form of a component name for a header field. */
const LOWER_FIELD_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const METHOD_TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

function authInvalid(message: string): never {
  throw new LedgerError("AUTH_INVALID", message);
}

// ---------------------------------------------------------------------------------------------------
// The request as the signature base sees it
// ---------------------------------------------------------------------------------------------------

/** A request with its URL parsed. */
interface Message {
  readonly method: string;
  readonly url: URL;
  readonly headers: HttpHeaders;
}

function toMessage(request: HttpRequest): Message {
  if (typeof request.method !== "string" || request.method.length > MAX_METHOD_LENGTH) {
    throw new LedgerError("MALFORMED_INPUT", "the request method is not a method name");
  }
  let url: URL;
  try {
    url = new URL(request.url);
  } catch (cause) {
    throw new LedgerError("INVALID_ARGUMENT", "the request URL must be an absolute URL", { cause });
  }
  return { method: request.method, url, headers: request.headers };
}

/**
 * The combined value of a header field (RFC 9421 section 2.1) looked up by lower-case name in any case,
 * or undefined when the field is absent: the value of each field line stripped of leading and trailing
 * whitespace, joined with ", " in order.
 */
export function combinedFieldValue(headers: HttpHeaders, name: string): string | undefined {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key.toLowerCase() !== name) continue;
    if (typeof value === "string") lines.push(value);
    else lines.push(...value);
  }
  if (lines.length === 0) return undefined;
  return lines.map(trimOws).join(", ");
}

/** Strip leading and trailing SP and HTAB, in linear time (a regex with `[ \t]+$` is not, on hostile input). */
function trimOws(line: string): string {
  let start = 0;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return line.slice(start, end);
}

function fieldValue(message: Message, name: string): string | undefined {
  return combinedFieldValue(message.headers, name);
}

/** The value of one covered component (RFC 9421 sections 2.1 and 2.2). */
function componentValue(message: Message, name: string): string {
  let value: string;
  switch (name) {
    case "@method":
      // Section 2.2.1: the method name, not normalized.
      if (!METHOD_TOKEN.test(message.method)) {
        throw new LedgerError("MALFORMED_INPUT", "the request method is not a method name");
      }
      value = message.method;
      break;
    case "@authority":
      // Section 2.2.3: host lower-cased, default port removed; the WHATWG URL parser does both.
      value = message.url.host;
      break;
    case "@path":
      // Section 2.2.6: the absolute path; an empty path is "/" (the WHATWG URL parser ensures it).
      value = message.url.pathname;
      break;
    case "@query":
      // Section 2.2.7: the query with its leading "?"; "?" alone when there is none.
      value = message.url.search === "" ? "?" : message.url.search;
      break;
    default: {
      const field = fieldValue(message, name);
      if (field === undefined) {
        authInvalid(
          `the signature covers the ${name} field but the request has none: send it, or sign again`,
        );
      }
      if (field.length > MAX_COVERED_FIELD_LENGTH) {
        throw new LedgerError(
          "TOO_LARGE",
          `the ${name} field is longer than ${MAX_COVERED_FIELD_LENGTH} characters`,
        );
      }
      value = field;
    }
  }
  // The base is ASCII, one component per line: a control or non-ASCII character would make it ambiguous.
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) {
      throw new LedgerError(
        "MALFORMED_INPUT",
        `the ${name} component holds a control or non-ASCII character`,
      );
    }
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Signature-Input: checking and serializing
// ---------------------------------------------------------------------------------------------------

/** Check a component list: supported names only, lower case, no parameters, no repeats (section 2). */
function checkComponents(components: readonly string[]): void {
  if (components.length > MAX_COVERED_COMPONENTS) {
    throw new LedgerError("TOO_LARGE", `a signature covers more than ${MAX_COVERED_COMPONENTS} components`);
  }
  const seen = new Set<string>();
  for (const name of components) {
    if (name.startsWith("@")) {
      if (!(SUPPORTED_DERIVED_COMPONENTS as readonly string[]).includes(name)) {
        authInvalid(
          `unsupported derived component ${JSON.stringify(name)}: use ${SUPPORTED_DERIVED_COMPONENTS.join(", ")}`,
        );
      }
    } else if (!LOWER_FIELD_NAME.test(name)) {
      authInvalid(`component ${JSON.stringify(name)} is not a lower-case field name (RFC 9421 section 2.1)`);
    }
    // Section 2.5 step 2.1: a component identifier may appear once only.
    if (seen.has(name)) authInvalid(`component ${JSON.stringify(name)} is covered twice`);
    seen.add(name);
  }
}

/** Check parameter values: known types, non-negative times, bounded strings. */
function checkParams(params: SignatureParams): void {
  for (const key of PARAM_ORDER) {
    const value = params[key];
    if (value === undefined) continue;
    if (PARAM_TYPES[key] === "integer") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
        authInvalid(`signature parameter ${key} must be a non-negative integer (Unix seconds)`);
      }
    } else {
      const max = PARAM_MAX_LENGTH[key as keyof typeof PARAM_MAX_LENGTH];
      if (typeof value !== "string" || value.length === 0 || value.length > max) {
        authInvalid(`signature parameter ${key} must be a string of 1 to ${max} characters`);
      }
    }
  }
}

/** The inner list of a Signature-Input member, in our parameter order. */
function toInnerList(components: readonly string[], params: SignatureParams): SfInnerList {
  const sfParams: (readonly [string, SfBareItem])[] = [];
  for (const key of PARAM_ORDER) {
    const value = params[key];
    if (value === undefined) continue;
    sfParams.push([key, typeof value === "number" ? { type: "integer", value } : { type: "string", value }]);
  }
  return {
    items: components.map((name) => ({ value: { type: "string", value: name }, params: [] })),
    params: sfParams,
  };
}

/** Read the typed parameters of a parsed inner list; unknown parameters and wrong types are refused. */
function readParams(sfParams: SfParameters): SignatureParams {
  const params: Record<string, string | number> = {};
  for (const [key, value] of sfParams) {
    if (!Object.hasOwn(PARAM_TYPES, key)) {
      authInvalid(`unknown signature parameter ${JSON.stringify(key)}: use ${PARAM_ORDER.join(", ")}`);
    }
    const type = PARAM_TYPES[key as keyof SignatureParams];
    if (value.type !== type)
      authInvalid(`signature parameter ${key} must be a${type === "integer" ? "n integer" : " string"}`);
    params[key] = value.value;
  }
  const typed = params as SignatureParams;
  checkParams(typed);
  return typed;
}

/** Parse one member of a Signature-Input Dictionary into a SignatureInput. */
function readSignatureInput(label: string, list: SfInnerList): SignatureInput {
  const components: string[] = [];
  for (const item of list.items) {
    if (item.value.type !== "string") authInvalid("Signature-Input components must be strings");
    if (item.params.length > 0) {
      authInvalid(
        `component parameters (such as ;sf, ;key, ;req) are not supported: sign ${item.value.value} without them`,
      );
    }
    components.push(item.value.value);
  }
  checkComponents(components);
  const params = readParams(list.params);
  return { label, components, params, serializedParams: serializeInnerList(list) };
}

/**
 * Serialize the signature parameters (RFC 9421 section 2.3): the inner list of component names with
 * the parameters in the order created, expires, keyid, alg, nonce, tag.
 */
export function serializeSignatureParams(components: readonly string[], params: SignatureParams): string {
  checkComponents(components);
  checkParams(params);
  return serializeInnerList(toInnerList(components, params));
}

// ---------------------------------------------------------------------------------------------------
// The signature base (RFC 9421 section 2.5)
// ---------------------------------------------------------------------------------------------------

/**
 * The signature base of a request for the given components and serialized signature parameters (RFC
 * 9421 section 2.5): one `"name": value` line per component, LF-terminated, then the
 * `"@signature-params": ` line without a trailing LF.
 */
export function signatureBase(
  request: HttpRequest,
  components: readonly string[],
  serializedParams: string,
): string {
  checkComponents(components);
  return buildBase(toMessage(request), components, serializedParams);
}

function buildBase(message: Message, components: readonly string[], serializedParams: string): string {
  let base = "";
  for (const name of components) {
    // Component identifiers are serialized as sf-strings (section 2.5 step 2.1); names need no escaping.
    base += `"${name}": ${componentValue(message, name)}\n`;
  }
  return base + `"@signature-params": ${serializedParams}`;
}

// ---------------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------------

/** What createMessageSignature needs to sign. */
export interface MessageSignatureOptions {
  /** The Dictionary key of this signature in both fields. */
  readonly label: string;
  /** The covered components, in order. */
  readonly components: readonly string[];
  /** The signature parameters. */
  readonly params: SignatureParams;
  /** The Ed25519 secret key (32-byte seed). */
  readonly secretKey: Uint8Array;
}

/** The two fields a signature adds to a request, and the base that was signed. */
export interface MessageSignatureFields {
  /** The Signature-Input field value. */
  readonly signatureInput: string;
  /** The Signature field value. */
  readonly signature: string;
  /** The signature base (for logs and tests; not sent). */
  readonly base: string;
}

/** Sign a request (RFC 9421 section 3.1) with Ed25519; returns the Signature-Input and Signature values. */
export async function createMessageSignature(
  crypto: Pick<CryptoSuite, "ed25519Sign">,
  request: HttpRequest,
  options: MessageSignatureOptions,
): Promise<MessageSignatureFields> {
  const label = serializeKey(options.label);
  if (options.params.alg !== undefined && options.params.alg !== ALG_ED25519) {
    throw new LedgerError(
      "UNSUPPORTED_ALGORITHM",
      `cannot sign with alg ${options.params.alg}: only ed25519`,
    );
  }
  const serializedParams = serializeSignatureParams(options.components, options.params);
  const base = buildBase(toMessage(request), options.components, serializedParams);
  const signature = await crypto.ed25519Sign(options.secretKey, utf8(base));
  return {
    signatureInput: `${label}=${serializedParams}`,
    signature: `${label}=:${toBase64(signature)}:`,
    base,
  };
}

// ---------------------------------------------------------------------------------------------------
// Verifying
// ---------------------------------------------------------------------------------------------------

/**
 * Read the signature labelled `label` from a request's Signature-Input and Signature fields, without
 * verifying it: AUTH_REQUIRED when either field or the label is missing, MALFORMED_INPUT when a field
 * does not parse (a label given twice included), AUTH_INVALID when the entry breaks RFC 9421 or our subset.
 */
export function readRequestSignature(request: HttpRequest, label: string): RequestSignature {
  const message = toMessage(request);
  return readSignature(message, label);
}

function readSignature(message: Message, label: string): RequestSignature {
  const inputField = fieldValue(message, "signature-input");
  const signatureField = fieldValue(message, "signature");
  if (inputField === undefined || signatureField === undefined) {
    throw new LedgerError(
      "AUTH_REQUIRED",
      `the request is not signed: it needs both Signature-Input and Signature fields (RFC 9421), labelled ${label}`,
    );
  }
  const inputs: SfDictionary = parseDictionary(inputField, "Signature-Input", SIGNATURE_FIELD_BOUNDS);
  const signatures: SfDictionary = parseDictionary(signatureField, "Signature", SIGNATURE_FIELD_BOUNDS);
  const inputMember = getMember(inputs, label);
  const signatureMember = getMember(signatures, label);
  if (inputMember === undefined || signatureMember === undefined) {
    throw new LedgerError(
      "AUTH_REQUIRED",
      `the request has no signature labelled ${label} in both Signature-Input and Signature: sign it with that label`,
    );
  }
  if (!isInnerList(inputMember)) authInvalid(`Signature-Input ${label} must be an inner list of components`);
  if (isInnerList(signatureMember) || signatureMember.value.type !== "bytes") {
    authInvalid(`Signature ${label} must be a byte sequence (:<base64>:)`);
  }
  return { input: readSignatureInput(label, inputMember), signature: signatureMember.value.value };
}

/**
 * Check a signature read by readRequestSignature against the request and an Ed25519 public key (RFC
 * 9421 section 3.2 steps 6 to 8). UNSUPPORTED_ALGORITHM for an alg other than ed25519, AUTH_INVALID
 * when a covered field is missing, SIGNATURE_INVALID when the signature does not verify.
 */
export async function checkRequestSignature(
  crypto: Pick<CryptoSuite, "ed25519Verify">,
  request: HttpRequest,
  read: RequestSignature,
  publicKey: Uint8Array,
): Promise<void> {
  const { input, signature } = read;
  if (input.params.alg !== undefined && input.params.alg !== ALG_ED25519) {
    throw new LedgerError(
      "UNSUPPORTED_ALGORITHM",
      `signature alg ${JSON.stringify(input.params.alg)} is not supported: sign with ed25519`,
    );
  }
  const base = buildBase(toMessage(request), input.components, input.serializedParams);
  if (!(await crypto.ed25519Verify(publicKey, utf8(base), signature))) {
    throw new LedgerError(
      "SIGNATURE_INVALID",
      `signature ${input.label} does not verify: the request was changed after signing, or signed with another key than ${input.params.keyid ?? "the one given"}`,
    );
  }
}

/**
 * Read and verify the signature labelled `label` with the given Ed25519 public key: the mechanism of
 * RFC 9421 section 3.2 with no policy (no clock, nonce or required-component checks; see
 * ./request-auth.ts for those). Returns the verified signature input.
 */
export async function verifyMessageSignature(
  crypto: Pick<CryptoSuite, "ed25519Verify">,
  request: HttpRequest,
  label: string,
  publicKey: Uint8Array,
): Promise<SignatureInput> {
  const read = readRequestSignature(request, label);
  await checkRequestSignature(crypto, request, read, publicKey);
  return read.input;
}
