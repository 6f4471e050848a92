/**
 * The systemd unit file format, as drove needs it: unit names, rendering the
 * structured form to text, and the few checks that catch a unit systemd could
 * never enable or keep running. Pure: shared by the construct and the provider.
 */

/** Unit types that live in unit files drove can write. */
export const UNIT_SUFFIXES = ["service", "socket", "timer", "path", "mount", "automount", "swap", "target", "slice"] as const;

const UNIT_NAME = new RegExp(`^[A-Za-z0-9_:\\\\][A-Za-z0-9_:.\\\\-]*(@[A-Za-z0-9_:.\\\\-]*)?[.](${UNIT_SUFFIXES.join("|")})$`);

/** Why a unit name cannot be used, or undefined when it can. */
export function unitNameProblem(name: unknown): string | undefined {
  const shown = JSON.stringify(name);
  if (typeof name !== "string" || name.length > 255 || !UNIT_NAME.test(name)) {
    return `\`name\` must be a unit name like hello.service: letters, digits, ':', '-', '_', '.' or '\\', an optional @instance, and one of the suffixes ${UNIT_SUFFIXES.map((s) => "." + s).join(", ")}, at most 255 characters, but ${shown} was provided`;
  }
  if (/@[.][a-z]+$/.test(name)) {
    return `\`name\` ${shown} is a template, which systemd can neither enable nor start by itself; name an instance instead, like ${name.replace("@.", "@1.")}`;
  }
  return undefined;
}

/** One value of a key; booleans render as yes/no. */
export type UnitValue = string | number | boolean;

/** The keys of one section, in order; a list renders as the key repeated, once per item; undefined keys are left out. */
export type UnitSection = Readonly<Record<string, UnitValue | readonly UnitValue[] | undefined>>;

/** A unit file as data: `{ Unit: {...}, Service: {...}, Install: {...} }`, sections and keys in order. */
export type UnitSections = Readonly<Record<string, UnitSection>>;

const SECTION = /^[A-Za-z][A-Za-z0-9-]*$/;
const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;

function valueProblem(where: string, v: unknown): string | undefined {
  if (typeof v === "boolean") return undefined;
  if (typeof v === "number") return Number.isFinite(v) ? undefined : `${where} must be a finite number, but ${String(v)} was provided`;
  if (typeof v !== "string") return `${where} must be a string, a number or a boolean, but ${JSON.stringify(v) ?? typeof v} was provided`;
  if (/[\r\n\0]/.test(v)) return `${where} must be one line: a line break would start a new key, so ${JSON.stringify(v)} is refused`;
  if (v.endsWith("\\")) return `${where} must not end with a backslash, which would continue it onto the next line`;
  return undefined;
}

/** Every problem with a structured unit, each naming the section and key. */
export function unitSectionsProblems(sections: UnitSections): string[] {
  const problems: string[] = [];
  if (typeof sections !== "object" || sections === null || Array.isArray(sections)) return ["`content` must be the unit text or an object of sections like { Unit: {...}, Service: {...} }"];
  if (Object.keys(sections).length === 0) problems.push("`content` has no section; give at least { Unit: {...} } or { Service: {...} }");
  for (const [section, keys] of Object.entries(sections)) {
    if (!SECTION.test(section)) problems.push(`section name ${JSON.stringify(section)} must be letters, digits and '-', like Service or X-Custom`);
    if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
      problems.push(`[${section}] must be an object of keys, like { ExecStart: "/usr/bin/app" }`);
      continue;
    }
    for (const [key, value] of Object.entries(keys)) {
      if (!KEY.test(key)) problems.push(`[${section}] key ${JSON.stringify(key)} must be letters, digits, '-' and '_', like ExecStart`);
      const items = Array.isArray(value) ? value : value === undefined ? [] : [value];
      for (const item of items) {
        const p = valueProblem(`[${section}] ${key}`, item);
        if (p) problems.push(p);
      }
    }
  }
  return problems;
}

function renderValue(v: UnitValue): string {
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

/**
 * Renders a structured unit to unit file text: sections and keys in the order
 * given, a blank line between sections, a list as the key repeated (an empty
 * string renders `Key=`, which resets a list in systemd).
 * @throws Error naming every problem, when the sections cannot be rendered faithfully
 */
export function renderUnitFile(sections: UnitSections): string {
  const problems = unitSectionsProblems(sections);
  if (problems.length) throw new Error(`Unable to render the unit: ${problems.join("; ")}`);
  const blocks: string[] = [];
  for (const [section, keys] of Object.entries(sections)) {
    const lines = [`[${section}]`];
    for (const [key, value] of Object.entries(keys)) {
      const items = Array.isArray(value) ? (value as readonly UnitValue[]) : value === undefined ? [] : [value as UnitValue];
      for (const item of items) lines.push(`${key}=${renderValue(item)}`);
    }
    blocks.push(lines.join("\n") + "\n");
  }
  return blocks.join("\n");
}

/** A unit file's keys per section, in order, as systemd reads them (comments dropped, continued lines joined). */
export function parseUnitFile(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + " " + lines[++i].trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]) ?? [];
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0 && current) current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** The keys that give `systemctl enable` something to do. */
const INSTALL_KEYS = ["WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also"];

/** The [Install] section's lines, normalised, so two texts can be compared for what `enable` does. */
export function installSection(text: string): string[] {
  return (parseUnitFile(text).get("Install") ?? []).map(([k, v]) => `${k}=${v}`);
}

/**
 * Why systemd could never do what the program asks of this unit text, each
 * with what to do instead; [] when it can.
 */
export function unitTextProblems(name: string, text: string, enabled: boolean, active: boolean): string[] {
  const unit = parseUnitFile(text);
  if (unit.size === 0) return ["`content` has no [Section]: a unit file needs at least [Unit] or, for a service, [Service] with ExecStart="];
  const problems: string[] = [];
  const install = unit.get("Install") ?? [];
  if (enabled && !install.some(([k, v]) => INSTALL_KEYS.includes(k) && v !== "")) {
    problems.push(
      "`enabled` is true, but the unit has no [Install] section with WantedBy= (or RequiredBy=, Alias=), so systemd has nothing to enable; either add Install: { WantedBy: \"multi-user.target\" }, or set `enabled: false`",
    );
  }
  if (active && name.endsWith(".service")) {
    const service = unit.get("Service") ?? [];
    const last = (key: string) => service.filter(([k]) => k === key).pop()?.[1];
    if (last("Type") === "oneshot" && !/^(1|yes|y|true|t|on)$/i.test(last("RemainAfterExit") ?? "")) {
      problems.push(
        "`active` is true, but a Type=oneshot service without RemainAfterExit=yes is inactive again as soon as its command ends, so it never stays active; either add RemainAfterExit=yes, or set `active: false` (and start it from a .timer)",
      );
    }
  }
  return problems;
}
