/**
 * The service provider's side of placement: src/placement.ts (the cluster's pure,
 * deterministic scheduler) run over every service of the cluster, this one's
 * share returned with the scheduler's explanation.
 */
import { place, renderPlacement, type Placement, type PlacementNode, type PlacementService } from "../../src/placement";

export type ScheduleNode = PlacementNode;
export type ScheduleService = PlacementService;

export interface ServiceSchedule {
  /** This service's replicas per node. */
  readonly placement: Record<string, number>;
  /** Every service's, as this run sees it (the previous placement of the next run's peers). */
  readonly cluster: Placement;
  /** The scheduler's explanation for this service, one line per node, then the nodes that are gone. */
  readonly explanation: string[];
  /** Why the service cannot be placed as asked: nothing may change then. */
  readonly errors: string[];
}

export function scheduleService(p: {
  readonly nodes: readonly ScheduleNode[];
  readonly services: readonly ScheduleService[];
  readonly self: string;
  /** What runs now: this service's from its last run, the others' as that run saw them. */
  readonly previous: Readonly<Placement>;
  /** Nodes that do not answer, with their address: `m3 (10.0.0.13)`. */
  readonly gone: readonly string[];
}): ServiceSchedule {
  const services = p.services.some((s) => s.name === p.self) ? p.services : [...p.services, { name: p.self }];
  const result = place({ nodes: p.nodes, services, previous: p.previous });
  const mine = result.services[p.self];
  return {
    placement: { ...(result.placement[p.self] ?? {}) },
    cluster: result.placement,
    explanation: [...renderPlacement(result, { services: [p.self] }), ...p.gone.map((g) => `  ${g} does not answer SSH: counted as unavailable for this plan`)],
    errors: [...(mine?.errors ?? []), ...result.errors.filter((e) => !(mine?.errors ?? []).includes(e) && e.includes(p.self))],
  };
}
