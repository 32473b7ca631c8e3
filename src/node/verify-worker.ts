/**
 * Worker thread of the signature pre-verifier (src/node/verifier.ts): reads each entry of a batch,
 * verifies every signature it carries, and answers with the digests of the signatures that verified. It never judges an entry: the validator on the main thread does, in order, and looks up these
 * digests instead of verifying again.
 */
import { parentPort } from "node:worker_threads";
import { fromBase64, fromHex, utf8 } from "../core/encoding/bytes.ts";
import { ENTRY_SIGNING_PREFIX } from "../core/ledger/entry.ts";
import { nodeCrypto } from "../platform/node-crypto.ts";
import { signatureDigest } from "./verifier.ts";

/** A request: an id and the entries of a batch. */
interface VerifyRequest {
  readonly id: number;
  readonly entries: readonly Uint8Array[];
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * JSON with object members sorted by key: the RFC 8785 form for the values entries hold (strings, small
 * integers, booleans, null). Faster than the strict encoder; where the two could differ, the message
 * differs, its digest matches nothing on the main thread, and the validator verifies that signature itself.
 */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const object = value as Record<string, unknown>;
    const members = Object.keys(object)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${sortedJson(object[key])}`);
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

interface RawSignature {
  readonly role?: unknown;
  readonly key?: unknown;
  readonly sig?: unknown;
}

async function verified(entries: readonly Uint8Array[]): Promise<Uint8Array[]> {
  const digests: Uint8Array[] = [];
  for (const bytes of entries) {
    let entry: { v?: unknown; kind?: unknown; body?: unknown; sigs?: unknown };
    try {
      entry = JSON.parse(decoder.decode(bytes)) as typeof entry;
    } catch {
      continue;
    }
    if (typeof entry !== "object" || entry === null || !Array.isArray(entry.sigs)) continue;
    const content = sortedJson({ v: entry.v, kind: entry.kind, body: entry.body });
    for (const sig of entry.sigs as RawSignature[]) {
      if (typeof sig?.role !== "string" || typeof sig.key !== "string" || typeof sig.sig !== "string")
        continue;
      let key: Uint8Array;
      let signature: Uint8Array;
      try {
        key = fromHex(sig.key);
        signature = fromBase64(sig.sig);
      } catch {
        continue;
      }
      // The message of src/core/ledger/entry.ts signingMessage: prefix, role, newline, content.
      const message = utf8(`${ENTRY_SIGNING_PREFIX}${sig.role}\n${content}`);
      if (await nodeCrypto.ed25519Verify(key, message, signature)) {
        digests.push(signatureDigest(nodeCrypto, key, message, signature));
      }
    }
  }
  return digests;
}

parentPort?.on("message", (request: VerifyRequest) => {
  verified(request.entries).then(
    (digests) => parentPort?.postMessage({ id: request.id, digests }),
    () => parentPort?.postMessage({ id: request.id, digests: [] }),
  );
});
