/**
 * The ledger's entries and rules (DESIGN.md section 2; docs/entries.md): schemas, building and signing,
 * strict decoding, the deterministic validator and its state, and the clinical-time history order.
 */
export * from "./entry.ts";
export * from "./history.ts";
export * from "./precheck.ts";
export * from "./rejections.ts";
export * from "./schema.ts";
export * from "./state.ts";
export * from "./validator.ts";
