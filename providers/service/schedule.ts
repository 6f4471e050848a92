/**
 * The service provider's side of placement: src/placement.ts (the cluster's pure,
 * deterministic scheduler) applied to every service of the cluster, this one's
 * share returned with the scheduler's explanation.
 */

export interface ScheduleNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly capacity?: Readonly<Record<string, number>>;
  /** False for a node that does not answer now. */
  readonly available: boolean;
}

/** A service in the scheduler's vocabulary (replicas or global, selectors, spread, pinned, colocateWith, resources). */
export interface ScheduleService {
  readonly name: string;
  readonly [constraint: string]: unknown;
}

export interface ServiceSchedule {
  readonly placement: Record<string, number>;
  readonly explanation: string[];
  readonly errors: string[];
}

export function scheduleService(_p: {
  nodes: readonly ScheduleNode[];
  services: readonly ScheduleService[];
  self: string;
  previous: Readonly<Record<string, number>>;
  gone: readonly string[];
}): ServiceSchedule {
  throw new Error("placement is not wired yet");
}
