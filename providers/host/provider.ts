import type { ResourceKind } from "../kind";
import { checkConnection, diffInputs, runChecked, withHost, type Failures } from "../common";
import type { SshTarget } from "../../src/ssh";
import { hostFactsCommand, parseHostFacts, type HostFacts } from "./facts";

export interface HostInputs {
  readonly connection: SshTarget;
  /** The hostname the program expects; checked against the machine. */
  readonly hostname?: string;
}

export interface HostOutputs extends HostInputs {
  readonly facts: HostFacts;
}

/** Facts are gathered once per host per run and shared. */
const factsCache = new Map<string, Promise<HostFacts>>();

export function hostFacts(connection: SshTarget): Promise<HostFacts> {
  const key = `${connection.user ?? "root"}@${connection.host}:${connection.port ?? 22}`;
  let p = factsCache.get(key);
  if (!p) {
    p = withHost(connection, async (conn) => parseHostFacts(await runChecked(conn, "gather facts", { command: hostFactsCommand() })));
    factsCache.set(key, p);
    p.catch(() => factsCache.delete(key));
  }
  return p;
}

function checkExpected(inputs: HostInputs, facts: HostFacts): void {
  if (inputs.hostname !== undefined && facts.hostname !== inputs.hostname) {
    throw new Error(
      `Unable to admit ${inputs.connection.host}: it says its hostname is ${JSON.stringify(facts.hostname)}, but the program expects ${JSON.stringify(inputs.hostname)}. Either fix the address in the program, or change the hostname prop.`,
    );
  }
}

/** A machine drove manages: its connection, and the facts it reports. */
export const hostKind: ResourceKind<HostInputs, HostOutputs> = {
  token: "drove:index:Host",
  secretPaths: ["connection.privateKey", "connection.privateKeyPassphrase", "connection.password"],

  check(news) {
    const failures: Failures = [];
    const connection = checkConnection(news.connection, failures);
    if (news.hostname !== undefined && (typeof news.hostname !== "string" || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(news.hostname))) {
      failures.push({ property: "hostname", reason: `\`hostname\` must be a valid hostname, but ${JSON.stringify(news.hostname)} was provided` });
    }
    return { inputs: { connection, ...(news.hostname !== undefined ? { hostname: news.hostname as string } : {}) }, failures };
  },

  diff(olds, news) {
    return diffInputs(olds as never, news as never, [], ["facts"]);
  },

  async create(inputs) {
    const facts = await hostFacts(inputs.connection);
    checkExpected(inputs, facts);
    return { id: facts.machineId, outs: { ...inputs, facts } };
  },

  async read(_id, props) {
    const facts = await hostFacts(props.connection);
    const { facts: _f, ...inputs } = props;
    return { outs: { ...props, facts }, inputs: inputs as HostInputs };
  },

  async update(_id, _olds, news) {
    const facts = await hostFacts(news.connection);
    checkExpected(news, facts);
    return { ...news, facts };
  },

  async delete() {
    // A host is registered, not installed: forgetting it changes nothing on the machine.
  },
};
