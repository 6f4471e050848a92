import { createHash } from "node:crypto";
import { and, sh, type ShellCommand } from "../../src/quote";
import type { Step } from "../file/operations";
import type { CliEngine, ContainerFact, Engine, PortMapping, VolumeMount } from "./facts";

export type RestartPolicy = "no" | "always" | "on-failure" | "unless-stopped";

/** A container as the program wants it. */
export interface ContainerDesired {
  readonly engine: Engine;
  readonly name: string;
  readonly image: string;
  readonly command?: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly ports: readonly PortMapping[];
  readonly volumes: readonly VolumeMount[];
  /** User-defined networks to join (docker, podman); undefined or empty: the engine's default network. */
  readonly networks?: readonly string[];
  readonly restart: RestartPolicy;
  readonly labels: Readonly<Record<string, string>>;
  readonly running: boolean;
  /** Which resource made it: a delete removes only its own container, never a replacement of the same name. */
  readonly instance?: string;
}

export const SPEC_LABEL = "drove.spec";
export const INSTANCE_LABEL = "drove.instance";

/** A digest of everything that needs a new container when it changes. */
export function specDigest(d: ContainerDesired): string {
  // Networks count only when there are some, so containers made before networks existed keep their digest.
  const canon = JSON.stringify([d.image, d.command ?? null, Object.entries(d.env).sort(), d.ports, d.volumes, Object.entries(d.labels).sort(), ...(d.networks?.length ? [d.networks] : [])]);
  return createHash("sha256").update(canon).digest("hex").slice(0, 32);
}

/** `KEY=value` lines for `--env-file /dev/stdin`: values never reach a command line. */
export function envFile(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n") + "\n";
}

function runCommand(d: ContainerDesired & { engine: CliEngine }): ShellCommand {
  const args: string[] = ["--name", d.name, "--restart", d.restart, "--label", `${SPEC_LABEL}=${specDigest(d)}`, "--env-file", "/dev/stdin"];
  if (d.instance) args.push("--label", `${INSTANCE_LABEL}=${d.instance}`);
  for (const [k, v] of Object.entries(d.labels)) args.push("--label", `${k}=${v}`);
  for (const p of d.ports) args.push("--publish", `${p.host}:${p.container}/${p.protocol}`);
  for (const v of d.volumes) args.push("--volume", `${v.source}:${v.target}${v.readOnly ? ":ro" : ""}`);
  // Podman joins several networks at run; Docker (20.10) takes one there, and the others by `network connect`.
  const [first, ...more] = d.networks ?? [];
  for (const n of d.engine === "podman" ? (d.networks ?? []) : first !== undefined ? [first] : []) args.push("--network", n);
  const command = d.command?.length ? sh` ${[...d.command]}` : sh``;
  const run = sh`${d.engine} run --detach ${args} ${d.image}${command}`;
  return d.engine === "docker" && more.length ? and(run, ...more.map((n) => sh`docker network connect ${n} ${d.name}`)) : run;
}

/**
 * Desired + facts -> steps. A container whose spec changed is made anew (the
 * engine cannot change image, env, ports or volumes in place); a stopped one
 * is started; a changed restart policy is updated in place.
 */
export function planContainer(d: ContainerDesired & { engine: CliEngine }, fact: ContainerFact): Step[] {
  const fresh: Step = {
    description: fact.state === "absent" ? `run container ${d.name} from ${d.image}` : `replace container ${d.name} (its spec changed)`,
    command:
      fact.state === "absent"
        ? and(sh`${d.engine} pull ${d.image} >/dev/null`, runCommand(d))
        : and(sh`${d.engine} pull ${d.image} >/dev/null`, sh`${d.engine} rm --force ${d.name} >/dev/null`, runCommand(d)),
    stdin: envFile(d.env),
  };
  if (fact.state === "absent" || fact.labels[SPEC_LABEL] !== specDigest(d)) {
    return d.running ? [fresh] : [fresh, { description: `stop container ${d.name}`, command: sh`${d.engine} stop ${d.name}` }];
  }
  const steps: Step[] = [];
  if (fact.restart !== d.restart) steps.push({ description: `set ${d.name}'s restart policy to ${d.restart}`, command: sh`${d.engine} update --restart ${d.restart} ${d.name}` });
  if (fact.running !== d.running) {
    steps.push(
      d.running
        ? { description: `start container ${d.name}`, command: sh`${d.engine} start ${d.name}` }
        : { description: `stop container ${d.name}`, command: sh`${d.engine} stop ${d.name}` },
    );
  }
  return steps;
}

/** The container on the machine is another resource's (a replacement made under the same name). */
export function belongsToAnother(fact: ContainerFact, instance: string | undefined): boolean {
  if (fact.state !== "present" || !instance) return false;
  const found = fact.labels[INSTANCE_LABEL];
  return found !== undefined && found !== instance;
}

/** Removes the container, and its image when nothing else uses it; leaves a replacement of the same name alone. */
export function planContainerRemoval(engine: CliEngine, name: string, image: string, fact: ContainerFact, instance?: string): Step[] {
  if (fact.state === "absent" || belongsToAnother(fact, instance)) return [];
  return [
    {
      description: `remove container ${name}`,
      command: sh`${engine} rm --force ${name} >/dev/null && { ${engine} image rm ${image} >/dev/null 2>&1 || true; }`,
    },
  ];
}
