/**
 * @module domain
 * The service's enumerated domain values, as `openapi.yaml` defines them (through `generated/`), so that a change
 * of the spec fails the type-check wherever the code no longer agrees with it.
 */
import type { components } from '../generated/openapi.d.ts';

type Schemas = components['schemas'];

export type JobStatus = Schemas['JobStatus'];
export type JobTask = Schemas['Task'];
export type TimestampGranularity = Schemas['TimestampGranularity'];
export type DeliveryStatus = Schemas['DeliveryStatus'];
export type WebhookEvent = Schemas['WebhookEventType'];
export type ResultFormat = Schemas['ResultFormat'];

/**
 * A run-time list of every member of the union `T`: `listOf<T>()([...])` type-checks only when the list names
 * them all, so a value added to the spec cannot be missing from the list.
 */
export function listOf<T extends string>() {
  return <const L extends readonly T[]>(list: L & ([Exclude<T, L[number]>] extends [never] ? unknown : { missing: Exclude<T, L[number]> })): L => list;
}
