import type * as provider from "@pulumi/pulumi/provider";
import type { SshTarget } from "../src/ssh";

/**
 * What every resource kind implements. The plugin (`providers/main.ts`)
 * dispatches by type token; inputs and outputs arrive with secrets unwrapped
 * and leave with the kind's secret paths wrapped again.
 */
export interface ResourceKind<Inputs, Outputs> {
  /** `drove:index:<Name>` */
  readonly token: string;
  /** Property paths (top level or `a.b`) that are secrets in inputs and outputs. */
  readonly secretPaths: readonly string[];
  /** Properties only the provider sets (never compared as desired state). */
  readonly outputOnly: readonly string[];
  check(news: Record<string, unknown>): { inputs: Inputs; failures: provider.CheckFailure[] };
  /**
   * Optional: a check that may look at the machines (plan time) and at the previous
   * inputs (`olds`, undefined on create). Used instead of `check` when present.
   */
  plan?(news: Record<string, unknown>, olds?: Record<string, unknown>): Promise<{ inputs: Inputs; failures: provider.CheckFailure[] }>;
  /** `olds` are the old outputs (as the engine sends them), `news` the checked inputs. */
  diff(olds: Outputs, news: Inputs): provider.DiffResult;
  create(inputs: Inputs): Promise<{ id: string; outs: Outputs }>;
  /** Returns undefined when the thing is gone from the machine. */
  read(id: string, props: Outputs): Promise<{ outs: Outputs; inputs: Inputs } | undefined>;
  update(id: string, olds: Outputs, news: Inputs): Promise<Outputs>;
  delete(id: string, props: Outputs): Promise<void>;
}

/** The SSH connection each machine-side resource carries in its inputs. */
export interface ConnectionInputs extends SshTarget {}

export type AnyKind = ResourceKind<any, any>;
