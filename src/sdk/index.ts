/**
 * The medledger client SDK (docs/sdk.md): identities and key files, trust in a node's log, entry builders,
 * record and grant encryption, history verification, and the client that runs every workflow over the
 * node's HTTP API (docs/api.md). Runs in Node and in the browser: no node: import anywhere below, every
 * primitive through a CryptoSuite, HTTP through fetch.
 */
export * from "./api.ts";
export * from "./client.ts";
export * from "./entries.ts";
export * from "./errors.ts";
export * from "./grants.ts";
export * from "./history.ts";
export * from "./http.ts";
export * from "./identity.ts";
export * from "./records.ts";
export * from "./trust.ts";
export * from "./validation.ts";
