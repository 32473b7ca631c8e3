/**
 * The node data-folder contract that `medledger verify` audits (docs/verify.md, "The contract"), written
 * down here on its own rather than imported from src/node: an auditor is a second, independent reading of
 * the contract, so a bug in the node's constants cannot hide itself from the audit.
 */

/** The configuration file of a node's data folder. */
export const NODE_CONFIG_FILE = "node.json";
/** The `format` member of node.json. */
export const NODE_CONFIG_FORMAT = "medledger-node";
/** The node.json version this audit reads. */
export const NODE_CONFIG_VERSION = 1;
/** Bound on node.json: a configuration is a few hundred bytes. */
export const MAX_NODE_CONFIG_BYTES = 64 * 1024;

/** Store meta key of the log origin. */
export const META_ORIGIN = "origin";
/** Store meta key of the log's C2SP verifier key. */
export const META_LOG_VKEY = "log_vkey";
/**
 * Store meta key prefix of ledger times: `ledger_time.<seq>` holds the Unix seconds in force from that
 * sequence number on (written when a batch's time differs from the previous batch's).
 */
export const META_LEDGER_TIME_PREFIX = "ledger_time.";

/** The label of the one checkpoint extension line: `patient-index <base64 32-byte root>`. */
export const PATIENT_INDEX_EXTENSION = "patient-index";

/** Entry kinds whose row carries a clinical time (the record's `month`); every other row has none. */
export const KINDS_WITH_CLINICAL_TIME: ReadonlySet<string> = new Set(["record.append", "record.amend"]);
