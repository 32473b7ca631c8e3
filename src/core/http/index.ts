/** Request authentication of the node's HTTP API: RFC 9530 digests, RFC 9421 signatures, the policy. */
export * from "./content-digest.ts";
export * from "./message-signatures.ts";
export * from "./replay-cache.ts";
export * from "./request-auth.ts";
