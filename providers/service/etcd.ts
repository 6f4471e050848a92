/**
 * Service endpoints in the cluster's etcd, through `etcdctl` (etcd-client 3.4)
 * on a control-plane host over SSH: the provider needs no route to etcd's client
 * port and no etcd library, and the client certificate reaches the machine on
 * stdin, into a 0700 temporary directory removed when the command ends.
 */
import { sh, type ShellCommand } from "../../src/quote";
import type { SshTarget } from "../../src/ssh";
import { serviceEndpointKey, serviceEndpointsPrefix } from "../etcd/keys";

export interface EtcdAccess {
  /** A control-plane host to run etcdctl on. */
  readonly connection: SshTarget;
  /** Client URLs, `https://10.0.0.11:2379`. */
  readonly endpoints: string[];
  readonly caPem: string;
  readonly certPem: string;
  /** A secret. */
  readonly keyPem: string;
}

/** The key layout is the Cluster's (providers/etcd/keys.ts): `/drove/<cluster>/services/<service>/endpoints/<node>-<slot>`. */
export function endpointPrefix(cluster: string, service: string): string {
  return serviceEndpointsPrefix(cluster, service);
}

export function endpointKey(cluster: string, service: string, endpoint: string): string {
  return serviceEndpointKey(cluster, service, endpoint);
}

/**
 * Splits stdin (CA, certificate, key: three PEM blocks) into files, then runs `body`
 * with `e` as etcdctl. The stdin of the returned command must be those three blocks.
 */
function withEtcdctl(a: EtcdAccess, body: ShellCommand): ShellCommand {
  return sh`d=$(mktemp -d) && trap 'rm -rf "$d"' EXIT && chmod 0700 "$d" && umask 077 && awk -v d="$d" 'BEGIN{n=0} {print > (d "/" n ".pem")} /^-----END/{close(d "/" n ".pem"); n++}' && e() { ETCDCTL_API=3 etcdctl --endpoints=${a.endpoints.join(",")} --cacert="$d/0.pem" --cert="$d/1.pem" --key="$d/2.pem" --dial-timeout=5s --command-timeout=15s "$@"; } && ${body}`;
}

export function etcdPutCommand(a: EtcdAccess, key: string, value: string): ShellCommand {
  return withEtcdctl(a, sh`e put ${key} ${value} >/dev/null`);
}

export function etcdDeleteCommand(a: EtcdAccess, key: string, prefix = false): ShellCommand {
  return withEtcdctl(a, prefix ? sh`e del --prefix ${key} >/dev/null` : sh`e del ${key} >/dev/null`);
}

/** Prints the keys under a prefix, one a line. */
export function etcdListCommand(a: EtcdAccess, prefix: string): ShellCommand {
  return withEtcdctl(a, sh`e get --prefix --keys-only ${prefix} | sed '/^$/d'`);
}
