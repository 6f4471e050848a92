/**
 * A slow step the test controls, shared by the integration programs that
 * need a run held at a known point: a oneshot unit `<prefix>-gate-<gate>`
 * whose start waits until the file /run/<prefix>-gate-<gate> exists (the test
 * makes it; a new gate id makes a new slow step).
 */
import type { Host, SystemdUnit } from "../../src";

export function addGate(host: Host, prefix: string, gate: string): SystemdUnit {
  return host.addUnit("gate", {
    name: `${prefix}-gate-${gate}.service`,
    content: {
      Unit: { Description: "drove integration test: a slow step, done when the test opens its gate" },
      Service: {
        Type: "oneshot",
        RemainAfterExit: "yes",
        ExecStart: `/bin/sh -c 'until [ -e /run/${prefix}-gate-${gate} ]; do sleep 0.2; done'`,
      },
      Install: { WantedBy: "multi-user.target" },
    },
  });
}
