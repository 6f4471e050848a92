/**
 * What the Service suites (on etcd, on Docker Swarm, with attestation, under
 * faults) check on the lab's machines: the service through its VIP or name,
 * replicas per machine, a poller during a roll, a machine's link cut and back.
 */
import { execFileSync } from "node:child_process";
import { connect } from "node:net";
import { sh, type TestLab } from "./harness";

export interface ServiceChecks {
  /** What the service answers through its VIP (or name) on a machine; `failed: ...` when it does not. */
  viaVip(machine: string, path?: string, host?: string): Promise<string>;
  /** Replicas per machine (running containers carrying the service's label), in `machines` order. */
  replicasPerMachine(machines?: readonly string[]): Promise<number[]>;
  /** Polls the VIP from a machine in the background until `stop()`: how many requests passed and failed. */
  startPoller(from?: string): Promise<{ stop(): Promise<{ ok: number; failed: number; bodies: string }> }>;
}

/** `lab` is read at each call: suites boot their lab in `before`. */
export function serviceChecks(lab: () => TestLab, o: { machines: readonly string[]; vip: string; service: string }): ServiceChecks {
  return {
    async viaVip(machine, path = "/", host = o.vip) {
      const r = await lab().ssh(machine, sh`curl -sS -m 5 ${`http://${host}${path}`} 2>&1`);
      return r.code === 0 ? r.stdout : `failed: ${r.stdout.trim()}`;
    },
    async replicasPerMachine(machines = o.machines) {
      const out: number[] = [];
      for (const m of machines) {
        const r = await lab().ssh(m, sh`docker ps -q --filter ${`label=drove.service=${o.service}`} 2>/dev/null | wc -l`);
        out.push(Number(r.stdout.trim()));
      }
      return out;
    },
    async startPoller(from = "m1") {
      const l = lab();
      await l.ssh(from, sh`rm -f /tmp/poll.* && nohup sh -c ${`while [ ! -e /tmp/poll.stop ]; do if b=$(curl -sSf -m 3 http://${o.vip}/ 2>>/tmp/poll.err); then echo "$b" >> /tmp/poll.ok; else echo x >> /tmp/poll.failed; fi; sleep 0.1; done`} >/dev/null 2>&1 &`);
      return {
        async stop() {
          await l.ssh(from, sh`touch /tmp/poll.stop && sleep 1`);
          const r = await l.ssh(from, sh`wc -l < /tmp/poll.ok 2>/dev/null || echo 0; wc -l < /tmp/poll.failed 2>/dev/null || echo 0; sort /tmp/poll.ok | uniq -c | tr '\n' ';'; cat /tmp/poll.err 2>/dev/null | tail -3`);
          const [ok, failed, bodies] = r.stdout.split("\n");
          return { ok: Number(ok), failed: Number(failed), bodies: `${bodies} ${r.stdout.split("\n").slice(3).join(" ")}` };
        },
      };
    },
  };
}

export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** Takes a machine's link on the lab's bridge down (it drops off the network) or up again. */
export function cutLink(labPrefix: string, machine: string, off: boolean): void {
  execFileSync("ip", ["link", "set", `${labPrefix}-${machine}`, off ? "down" : "up"]);
}

/** Waits until a machine accepts TCP connections on port 22 again (its neighbour entry may be stale for a moment). */
export async function answersSsh(address: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: address, port: 22, timeout: 1000 }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
      s.on("timeout", () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${address}:22 did not answer again within two minutes`);
}
