/** The RFC 9162 Merkle log: hashing, proofs and the incremental tree. */
export * from "./hash.ts";
export * from "./proofs.ts";
export * from "./tree.ts";
