/**
 * The verifiable patient index (DESIGN.md section 2, "Completeness"): a sparse Merkle tree from each
 * patient's index key to the head and length of the patient's chain, with membership and non-membership
 * proofs. See docs/patient-index.md.
 */
export * from "./hashing.ts";
export * from "./proof.ts";
export * from "./store.ts";
export * from "./tree.ts";
