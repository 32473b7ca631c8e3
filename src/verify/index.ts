/**
 * `medledger verify`: the from-scratch audit of a node's store (docs/verify.md). The audit itself is pure
 * over a LedgerStore; the data-folder driver and the worker pool are the Node side.
 */
export * from "./audit.ts";
export * from "./contract.ts";
export * from "./failure.ts";
export * from "./node-folder.ts";
export * from "./pool.ts";
export * from "./precheck.ts";
