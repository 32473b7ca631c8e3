/**
 * What Node hands the page and what the page hands back, for test/browser/core-in-chromium.test.ts.
 * Everything crosses the CDP boundary as JSON, so byte strings travel as lowercase hex and tree sizes
 * and indices as decimal strings (the Merkle probes use 2^64 - 1, which a double cannot hold).
 */

/** One RFC 9180 appendix A vector, as stored in test/vectors/hpke (hex byte strings). */
export interface HpkeVector {
  readonly name: string;
  readonly aead_id: number;
  readonly info: string;
  readonly ikmE: string;
  readonly pkEm: string;
  readonly skEm: string;
  readonly ikmR: string;
  readonly pkRm: string;
  readonly skRm: string;
  readonly enc: string;
  readonly shared_secret: string;
  readonly key: string;
  readonly base_nonce: string;
  readonly exporter_secret: string;
  readonly encryptions: readonly {
    readonly seq: number;
    readonly pt: string;
    readonly aad: string;
    readonly nonce: string;
    readonly ct: string;
  }[];
}

/** An RFC 8032 section 7.1 test (hex). */
export interface Ed25519Vector {
  readonly name: string;
  readonly secret: string;
  readonly public: string;
  readonly message: string;
  readonly signature: string;
}

/** A transparency-dev/merkle probe: uint64 fields as decimal strings, hashes as base64 (null when absent). */
export type MerkleProbe =
  | {
      readonly kind: "inclusion";
      readonly name: string;
      readonly wantErr: boolean;
      readonly leafIdx: string;
      readonly treeSize: string;
      readonly leafHash: string | null;
      readonly proof: readonly string[] | null;
      readonly root: string | null;
    }
  | {
      readonly kind: "consistency";
      readonly name: string;
      readonly wantErr: boolean;
      readonly size1: string;
      readonly size2: string;
      readonly root1: string | null;
      readonly root2: string | null;
      readonly proof: readonly string[] | null;
    };

/** An HTTP request as it crosses the CDP boundary: the body as hex, null when there is none. */
export interface WireRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
}

/** An RFC 9530 Content-Digest vector (test/vectors/rfc9530): the content as text, the field value. */
export interface ContentDigestVector {
  readonly what: string;
  readonly content: string;
  readonly field: string;
}

/** The RFC 9421 B.1.4 key, B.2 request and B.2.6 signature, as stored in test/vectors/rfc9421. */
export interface Rfc9421Vector {
  readonly key: {
    readonly pkcs8_private_key_base64: string;
    readonly spki_public_key_base64: string;
    readonly jwk: { readonly d: string; readonly x: string };
  };
  readonly request: {
    readonly method: string;
    readonly url: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly body: string;
  };
  readonly b26: {
    readonly label: string;
    readonly components: readonly string[];
    readonly created: number;
    readonly keyid: string;
    readonly signature_base: string;
    readonly signature_input: string;
    readonly signature: string;
  };
}

/** Everything the page runs, read from the vector files or produced by the Node side of the core. */
export interface BrowserInput {
  readonly hpke: readonly HpkeVector[];
  readonly ed25519: readonly Ed25519Vector[];
  /** test/vectors/signed-note/notes.json "valid". */
  readonly notes: readonly { readonly what: string; readonly verifier_key: string; readonly note: string }[];
  readonly tessera: {
    readonly origin: string;
    readonly verifierKey: string;
    /** The log's entries in order (hex), from the size-15 entry bundle. */
    readonly entries: readonly string[];
    /** Every checkpoint file: its name ("checkpoint.7", or "checkpoint" for the latest) and text. */
    readonly checkpoints: readonly { readonly name: string; readonly size: number; readonly text: string }[];
  };
  readonly merkle: readonly MerkleProbe[];
  /** JSON texts and the RFC 8785 canonical form the Node side computed for each. */
  readonly jcs: readonly { readonly text: string; readonly canonical: string; readonly bytes: string }[];
  /** Artefacts the node suite produced, for the page to open or verify. */
  readonly fromNode: {
    /** A note signed with the node suite, and its verifier key. */
    readonly note: string;
    readonly noteVerifierKey: string;
    /** The text the page must sign for Node to verify. */
    readonly textToSign: string;
    /** An envelope sealed by the node suite: the recipient's secret key, the binary envelope, the data key. */
    readonly envelope: {
      readonly recipientSecret: string;
      readonly binary: string;
      readonly json: string;
      readonly info: string;
      readonly aad: string;
      readonly dataKey: string;
    };
    /** The X25519 public key (hex) of a Node-held recipient, for the page to seal to. */
    readonly recipientPublic: string;
    readonly envelopeInfo: string;
    readonly envelopeAad: string;
    /** A key file made by the node suite (cheap KDF), its passphrase, and its public keys. */
    readonly keyFile: string;
    readonly passphrase: string;
    readonly keyFileSigningPublic: string;
    readonly keyFileEncryptionPublic: string;
  };
  /** Request authentication: RFC 9421 and RFC 9530 vectors, and a request the node suite signed. */
  readonly httpAuth: {
    readonly rfc9421: Rfc9421Vector;
    readonly contentDigests: readonly ContentDigestVector[];
    /** RFC 9530 digests of deprecated algorithms only: each must be refused. */
    readonly deprecatedDigests: readonly ContentDigestVector[];
    /** Signed by the node suite with signRequest at nowMs; keyid and public key (hex) to verify it. */
    readonly signedRequest: WireRequest;
    readonly keyid: string;
    readonly publicKey: string;
    readonly nowMs: number;
  };
  /** Patients "id" with head and chain length, and the index root Node computed for them. */
  readonly patientIndex: {
    readonly patients: readonly { readonly id: string; readonly head: string; readonly length: number }[];
    readonly absent: readonly string[];
    readonly root: string;
  };
}

/** The groups of cases the page runs. */
export const GROUPS = [
  "hpke",
  "ed25519",
  "signed-note",
  "checkpoint",
  "tlog-proof",
  "merkle-inclusion",
  "merkle-consistency",
  "jcs",
  "envelope",
  "keyfile",
  "patient-index",
  "http-auth",
] as const;

/** A group of cases. */
export type Group = (typeof GROUPS)[number];

/** A case that did not pass, and why. */
export interface CaseFailure {
  readonly group: Group;
  readonly name: string;
  readonly reason: string;
}

/** Artefacts made in the page with the web suite, for Node to check with the node suite. */
export interface BrowserOutputs {
  readonly note: string;
  readonly noteVerifierKey: string;
  /** An envelope sealed in the page to fromNode.recipientPublic (binary, hex), and its data key. */
  readonly envelope: string;
  readonly envelopeDataKey: string;
  /** A key file made in the page (JSON text), with its passphrase and public keys (base64). */
  readonly keyFile: string;
  readonly keyFilePassphrase: string;
  readonly keyFileSigningPublic: string;
  readonly keyFileEncryptionPublic: string;
  /** The patient-index root the page computed, and its proofs (binary, hex) for every patient and absentee. */
  readonly indexRoot: string;
  readonly indexProofs: readonly { readonly id: string; readonly proof: string }[];
  /** A request signed in the page with signRequest at httpAuth.nowMs, its keyid and public key (hex). */
  readonly httpRequest: WireRequest;
  readonly httpKeyid: string;
  readonly httpPublicKey: string;
}

/** What the page reports. */
export interface BrowserReport {
  readonly userAgent: string;
  readonly isSecureContext: boolean;
  /** CryptoSuite.name of the suite the page ran on. */
  readonly suite: string;
  /** Calls the page made to crypto.subtle, by method. */
  readonly subtleCalls: Readonly<Record<string, number>>;
  readonly passed: Readonly<Record<Group, number>>;
  readonly failures: readonly CaseFailure[];
  readonly outputs: BrowserOutputs;
}

/** The page's entry point, which entry.ts installs on globalThis. */
export type RunCore = (input: BrowserInput) => Promise<BrowserReport>;

declare global {
  // The page-side entry point (a var, so that it is a property of globalThis).
  var medledgerRunCore: RunCore | undefined;
}
