import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { ValidationError } from "../src/errors";
import { markResource, type IResourceConstruct, type ResourceSpec } from "../src/resource";
import { unitPath } from "../providers/systemd-unit/facts";
import { renderUnitFile, unitNameProblem, unitSectionsProblems, unitTextProblems, type UnitSections } from "../providers/systemd-unit/unit-file";
import { File } from "./file";
import { Host } from "./host";
import { freeId } from "../src/app";

export type { UnitSection, UnitSections, UnitValue } from "../providers/systemd-unit/unit-file";

export interface SystemdUnitProps {
  /**
   * The unit's name, with its type: `hello.service`, `backup.timer`,
   * `app@blue.service`. Letters, digits, `:`, `-`, `_`, `.` and `\`; one of
   * .service, .socket, .timer, .path, .mount, .automount, .swap, .target,
   * .slice. Changing it replaces the unit.
   */
  readonly name: string;
  /**
   * The unit file: its text, or its sections as data, rendered in the order
   * given, lists as repeated keys, booleans as yes/no:
   * `{ Unit: { Description: "hello" }, Service: { ExecStart: "/usr/bin/hello" }, Install: { WantedBy: "multi-user.target" } }`.
   */
  readonly content: pulumi.Input<string> | UnitSections;
  /**
   * Started at boot (`systemctl enable`); needs an [Install] section with WantedBy=.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * Running now (`systemctl start`); false stops it.
   * @default true
   */
  readonly active?: boolean;
}

/**
 * A systemd unit drove manages: its file at `/etc/systemd/system/<name>`,
 * whether it starts at boot, whether it runs. Each run asks the machine once
 * per unit, then:
 *
 * - writes the file only when its content differs (atomically, mode 0644),
 *   and runs `systemctl daemon-reload` only then: a run with nothing to change
 *   changes nothing;
 * - enables or disables it (`--no-reload`: that changes links, not unit
 *   files), starts or stops it, as asked; restarts it when its file changed
 *   and it is meant to run;
 * - counts a start as done only when the unit is still active a second later;
 *   otherwise the run fails for this unit, naming the host and the unit, with
 *   its last journal lines. (For `Type=simple`, systemd reports a start
 *   before the program has run; `Type=exec` makes `systemctl start` itself
 *   wait until the program is started.)
 *
 * `pulumi preview --refresh --diff` shows drift per property: `active: false
 * => true` after someone stopped it, the changed lines of `content` after
 * someone edited it. Deleting the resource stops and disables the unit,
 * removes its file and reloads systemd. A unit of the same name that a
 * package ships (in /lib/systemd/system) is overridden while drove manages
 * this one, and stopped and disabled when it is deleted.
 *
 * @example
 * host.addUnit("hello", {
 *   name: "hello.service",
 *   content: {
 *     Unit: { Description: "Says hello" },
 *     Service: { ExecStart: "/usr/local/bin/hello", Restart: "on-failure" },
 *     Install: { WantedBy: "multi-user.target" },
 *   },
 * });
 */
export class SystemdUnit extends Construct implements IResourceConstruct {
  /** Renders a unit given as data to unit file text (what `content` becomes). */
  static render(sections: UnitSections): string {
    return renderUnitFile(sections);
  }

  readonly host: Host;
  readonly name: string;
  /** `/etc/systemd/system/<name>` */
  readonly path: string;
  readonly enabled: boolean;
  readonly active: boolean;
  private readonly content: pulumi.Input<string>;

  constructor(scope: Construct, id: string, props: SystemdUnitProps) {
    super(scope, freeId(scope, id));
    markResource(this);
    const where = this.node.path;
    const host = Host.of(scope);
    if (!host) throw new ValidationError([`${where}: a SystemdUnit must be created inside a Host (new SystemdUnit(host, ...) or host.addUnit(...))`]);
    const errors: string[] = [];
    const nameProblem = unitNameProblem(props.name);
    if (nameProblem) errors.push(`${where}: ${nameProblem}`);
    for (const k of ["enabled", "active"] as const) {
      if (props[k] !== undefined && typeof props[k] !== "boolean") errors.push(`${where}: \`${k}\` must be true or false, but ${JSON.stringify(props[k])} was provided`);
    }
    const enabled = props.enabled ?? true;
    const active = props.active ?? true;
    let content: pulumi.Input<string> | undefined;
    const c = props.content;
    if (c === undefined || c === null) {
      errors.push(`${where}: \`content\` is required: the unit file's text, or its sections like { Unit: {...}, Service: {...}, Install: {...} }`);
    } else if (typeof c === "string" || pulumi.Output.isInstance(c) || typeof (c as { then?: unknown }).then === "function") {
      content = c as pulumi.Input<string>;
    } else {
      const problems = unitSectionsProblems(c as UnitSections);
      errors.push(...problems.map((p) => `${where}: ${p}`));
      if (!problems.length) content = renderUnitFile(c as UnitSections);
    }
    // Text known now is checked now, before anything connects; text known later is checked by the provider.
    if (typeof content === "string" && !nameProblem) errors.push(...unitTextProblems(props.name, content, enabled, active).map((p) => `${where}: ${p}`));
    if (errors.length) throw new ValidationError(errors);
    this.host = host;
    this.name = props.name;
    this.path = unitPath(props.name);
    this.enabled = enabled;
    this.active = active;
    this.content = content!;
    // Two units of one name on one host, or a File at the unit's path, would fight each other.
    this.node.addValidation({
      validate: () => {
        const twins = this.host.node
          .findAll()
          .filter((x) => x !== this && Host.of(x) === this.host && ((x instanceof SystemdUnit && x.name === this.name) || (x instanceof File && x.path === this.path)));
        return twins.length ? [`unit ${this.name} is also managed by ${twins.map((t) => t.node.path).join(", ")}; manage each unit once per host`] : [];
      },
    });
  }

  /** @internal */
  _toSpec(): ResourceSpec {
    return {
      type: "drove:index:SystemdUnit",
      parent: this.host,
      props: {
        connection: this.host.connection,
        name: this.name,
        content: this.content,
        enabled: this.enabled,
        active: this.active,
      },
      outputs: ["path", "sha256"],
    };
  }
}
