import { readFileSync } from "node:fs";
import * as yaml from "js-yaml";
import { DroveError } from "./errors";
import { inventoryPath } from "./paths";

/** One machine as an inventory lists it. */
export interface InventoryMachine {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** Path of the private key that logs in (on the machine running drove). */
  readonly privateKeyPath: string;
  /** The machine's SSH host key fingerprint, `SHA256:...`. */
  readonly hostKey: string;
  readonly machineId?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface Inventory {
  readonly lab?: {
    readonly bridge: string;
    readonly subnet: string;
    readonly gateway: string;
    readonly registry: string;
    /** An apt proxy the machines use for Debian packages. */
    readonly aptProxy?: string;
  };
  readonly machines: readonly InventoryMachine[];
}

/**
 * Reads an inventory file (YAML), such as the one `drove lab up` writes.
 * @param path defaults to `DROVE_INVENTORY`, else `.drove/lab/inventory.yaml`
 */
export function loadInventory(path: string = inventoryPath()): Inventory {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new DroveError(`There is no inventory at ${path}`, {
      fixes: ["boot the lab with `npx drove lab up`, which writes it", "point DROVE_INVENTORY at an inventory of your own machines"],
    });
  }
  const doc = yaml.load(text) as Partial<Inventory> | undefined;
  if (!doc || !Array.isArray(doc.machines)) {
    throw new DroveError(`The inventory at ${path} has no \`machines:\` list`, {
      fixes: ["regenerate it with `npx drove lab up`", "add a `machines:` list with name, address, user, privateKeyPath and hostKey for each"],
    });
  }
  doc.machines.forEach((m, i) => {
    for (const field of ["name", "address", "privateKeyPath", "hostKey"] as const) {
      if (typeof m[field] !== "string" || !m[field]) {
        throw new DroveError(`Machine #${i + 1} in the inventory at ${path} has no \`${field}\``, {
          fixes: [`add \`${field}:\` to that machine`],
        });
      }
    }
  });
  return {
    ...doc,
    machines: doc.machines.map((m) => ({ port: 22, user: "root", ...m })),
  } as Inventory;
}

export function dumpInventory(inv: Inventory): string {
  return "# Written by `drove lab up`. Examples and tests read it.\n" + yaml.dump(inv, { lineWidth: 120, noRefs: true });
}
