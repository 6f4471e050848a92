/**
 * The etcd key layout drove reserves in a cluster's control plane. Everything
 * drove writes lives under `/drove/<cluster>/`; keys outside it belong to the
 * user. Services register their endpoints here, and the local proxies and
 * discovery read them back:
 *
 *   /drove/<cluster>/services/<service>/endpoints/<node>-<slot>   one healthy replica (JSON value)
 *
 * Kept pure (no SSH, no Pulumi) so constructs, providers and user programs can
 * all import it.
 */

/** The root of everything drove keeps in etcd. */
export const ETCD_KEY_PREFIX = "/drove/";

/** `/drove/<cluster>/`: one cluster's keys. */
export function clusterKeyPrefix(cluster: string): string {
  return `${ETCD_KEY_PREFIX}${cluster}/`;
}

/** `/drove/<cluster>/services/`: every service of a cluster. */
export function servicesKeyPrefix(cluster: string): string {
  return `${clusterKeyPrefix(cluster)}services/`;
}

/** `/drove/<cluster>/services/<service>/endpoints/`: one service's endpoints. */
export function serviceEndpointsPrefix(cluster: string, service: string): string {
  return `${servicesKeyPrefix(cluster)}${service}/endpoints/`;
}

/** `/drove/<cluster>/services/<service>/endpoints/<endpoint>`, where `endpoint` is `<node>-<slot>`. */
export function serviceEndpointKey(cluster: string, service: string, endpoint: string): string {
  return `${serviceEndpointsPrefix(cluster, service)}${endpoint}`;
}
