/**
 * The ledger store: the interface, its adapters, and openStore(url), which picks the adapter from a URL
 * ("memory:", "sqlite:PATH"; "postgres://" comes with consortium mode). See docs/store.md.
 */
import { LedgerError } from "../core/errors.ts";
import { MemoryStore } from "./memory.ts";
import { openSqliteStore } from "./sqlite.ts";
import type { LedgerStore } from "./types.ts";

export * from "./types.ts";
export { MemoryStore } from "./memory.ts";
export { SqliteStore, openSqliteStore, SQLITE_APPLICATION_ID } from "./sqlite.ts";

/** The longest store URL accepted (a path or a connection string). */
const MAX_URL_LENGTH = 4096;

/**
 * Open the store a URL names: "memory:" (empty, gone at exit) or "sqlite:PATH" (a file, created with its
 * folders when absent, e.g. "sqlite:./data/ledger.db"). Async so that a networked adapter can connect.
 */
export async function openStore(url: string): Promise<LedgerStore> {
  if (typeof url !== "string" || url.length === 0 || url.length > MAX_URL_LENGTH) {
    throw new LedgerError("INVALID_ARGUMENT", `a store URL is a string of 1..${MAX_URL_LENGTH} characters`);
  }
  if (url === "memory:") return new MemoryStore();
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path.length === 0) {
      throw new LedgerError("INVALID_ARGUMENT", 'a SQLite store URL names a file: "sqlite:./data/ledger.db"');
    }
    return openSqliteStore(path);
  }
  // Only the scheme is echoed: the rest of a URL may hold a password.
  const scheme = /^([a-z][a-z0-9+.-]{0,31}):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "postgres" || scheme === "postgresql") {
    throw new LedgerError(
      "INVALID_ARGUMENT",
      "PostgreSQL stores are not yet supported (they come with consortium mode); use sqlite:PATH",
    );
  }
  throw new LedgerError(
    "INVALID_ARGUMENT",
    `unknown store URL scheme ${scheme === undefined ? "(none)" : `"${scheme}:"`}; ` +
      'use "sqlite:PATH" or "memory:"',
  );
}
