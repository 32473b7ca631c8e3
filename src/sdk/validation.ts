/**
 * What a validator checks in a record before it attests (DESIGN.md section 5; docs/records.md section 6):
 * the FHIR resource names a resourceType that fits the record type, its patient references agree with the
 * entry's patient, the clinical date is plausible (not in the future, in the entry's month), and the
 * sensitivity label agrees with the entry's `withheldFromPatient` flag. Each failure is a finding with one
 * of the queue's rejection reasons (docs/api.md, "The validation queue"). Pure; the caller passes the day.
 */
import type { RecordPayload, RecordType } from "./records.ts";
import { monthOf } from "./records.ts";

/** The reasons a validator may give when it rejects a queue item (docs/api.md). */
export const QUEUE_REJECT_REASONS = [
  "FHIR_INVALID",
  "PATIENT_MISMATCH",
  "DATE_IMPLAUSIBLE",
  "AUTHOR_UNKNOWN",
  "OTHER",
] as const;
/** A queue rejection reason. */
export type QueueRejectReason = (typeof QUEUE_REJECT_REASONS)[number];

/** One problem the validator's checks found. */
export interface PayloadFinding {
  readonly reason: QueueRejectReason;
  readonly detail: string;
}

/** The FHIR R4 resource types each record type may carry (docs/records.md section 6). */
export const RESOURCE_TYPES: Readonly<Record<RecordType, readonly string[]>> = {
  consultation: ["Encounter"],
  "laboratory-result": ["DiagnosticReport", "Observation"],
  image: ["ImagingStudy"],
  prescription: ["MedicationRequest"],
  operation: ["Procedure"],
  "clinical-note": [
    "AllergyIntolerance",
    "CarePlan",
    "ClinicalImpression",
    "Composition",
    "Condition",
    "DocumentReference",
    "FamilyMemberHistory",
    "Immunization",
    "Observation",
  ],
};

/** FHIR R4 resource type names: a capital letter then letters (bounded, anchored, linear). */
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{0,63}$/;
/** The members of a resource that reference its patient. */
const PATIENT_REFERENCE_MEMBERS = ["subject", "patient"] as const;

/** What the payload is checked against: the entry's clear fields and today's date (UTC, YYYY-MM-DD). */
export interface PayloadContext {
  readonly patient: string;
  readonly month: string;
  readonly withheldFromPatient: boolean;
  readonly today: string;
}

/** Every finding against a payload; empty when it passes. */
export function checkRecordPayload(payload: RecordPayload, context: PayloadContext): PayloadFinding[] {
  const findings: PayloadFinding[] = [];
  const { resource } = payload;
  const resourceType = resource.resourceType;
  if (typeof resourceType !== "string" || !RESOURCE_TYPE.test(resourceType)) {
    findings.push({ reason: "FHIR_INVALID", detail: "the resource has no valid resourceType" });
  } else if (!RESOURCE_TYPES[payload.type].includes(resourceType)) {
    findings.push({
      reason: "FHIR_INVALID",
      detail: `a ${payload.type} record cannot carry a ${resourceType} (expected ${RESOURCE_TYPES[payload.type].join(" or ")})`,
    });
  }
  const references: string[] = [];
  for (const member of PATIENT_REFERENCE_MEMBERS) {
    const value = resource[member];
    if (value === undefined) continue;
    const reference =
      typeof value === "object" && value !== null ? (value as { reference?: unknown }).reference : undefined;
    if (
      typeof value !== "object" ||
      value === null ||
      (reference !== undefined && typeof reference !== "string")
    ) {
      findings.push({ reason: "FHIR_INVALID", detail: `${member} must be a FHIR Reference` });
      continue;
    }
    if (typeof reference === "string") references.push(reference);
  }
  for (const reference of references) {
    if (reference.startsWith("Patient/") && reference !== `Patient/${context.patient}`) {
      findings.push({ reason: "PATIENT_MISMATCH", detail: `${reference} is not the entry's patient` });
    }
  }
  if (new Set(references).size > 1) {
    findings.push({ reason: "PATIENT_MISMATCH", detail: "the resource references more than one patient" });
  }
  if (payload.date > context.today) {
    findings.push({
      reason: "DATE_IMPLAUSIBLE",
      detail: `the clinical date ${payload.date} is in the future`,
    });
  }
  if (monthOf(payload.date) !== context.month) {
    findings.push({
      reason: "DATE_IMPLAUSIBLE",
      detail: `the clinical date ${payload.date} is not in the entry's month ${context.month}`,
    });
  }
  if ((payload.sensitivity === "psychotherapy-note") !== context.withheldFromPatient) {
    findings.push({
      reason: "OTHER",
      detail: "a psychotherapy note, and only one, must be withheld from the patient",
    });
  }
  return findings;
}
