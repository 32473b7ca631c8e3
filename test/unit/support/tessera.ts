/**
 * The 15-entry Tessera test log (test/vectors/tessera-log): its checkpoints, entries, level-0 leaf hashes
 * and verifier key, loaded for the note, proof and CLI tests.
 */
import { readFileSync } from "node:fs";

const LOG = new URL("../../vectors/tessera-log/log/", import.meta.url);

/** The verifier key of every checkpoint of the test log. */
export const TESSERA_LOG_VKEY =
  "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/** The origin (and log key name) of the test log. */
export const TESSERA_ORIGIN = "example.com/log/testdata";

/** Path of a file of the test log, e.g. "checkpoint.7". */
export function tesseraPath(name: string): URL {
  return new URL(name, LOG);
}

/** The signed checkpoint for tree size `size` (0..15), or the latest one when omitted. */
export function tesseraCheckpoint(size?: number): string {
  return readFileSync(tesseraPath(size === undefined ? "checkpoint" : `checkpoint.${size}`), "utf8");
}

/** The entries of the log in order, decoded from the size-15 entry bundle (uint16 length-prefixed). */
export function tesseraEntries(): Uint8Array[] {
  const bundle = new Uint8Array(readFileSync(tesseraPath("tile/entries/000.p/15")));
  const out: Uint8Array[] = [];
  for (let i = 0; i < bundle.length;) {
    const length = (bundle[i]! << 8) | bundle[i + 1]!;
    out.push(bundle.slice(i + 2, i + 2 + length));
    i += 2 + length;
  }
  return out;
}

/** The level-0 tile of the tree of `size` leaves: the leaf hashes, 32 bytes each. */
export function tesseraLeafHashes(size: number): Uint8Array[] {
  const tile = new Uint8Array(readFileSync(tesseraPath(`tile/0/000.p/${size}`)));
  const out: Uint8Array[] = [];
  for (let i = 0; i < tile.length; i += 32) out.push(tile.slice(i, i + 32));
  return out;
}
