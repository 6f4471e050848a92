/**
 * A fresh lab for every cold run (the previous one torn down first, so no tool
 * finds another's work), the web image pushed to its registry, and one SSH
 * connection per machine of the benchmark's own for checking and counting.
 */
import { readFileSync } from "node:fs";
import type { Inventory } from "../src/inventory";
import { sh } from "../src/quote";
import { SshConnection } from "../src/ssh";
import { pushWebImage } from "../integration/fixtures";
import { labDown, labUp, leftovers } from "../integration/lab/lab";
import { countAccepted, countChannelRequests } from "./stats";
import { fileContent, WORKLOAD } from "./workload";

export interface LabOptions {
  readonly prefix: string;
  /** Third octet of the lab's /24. */
  readonly net: number;
  /** DROVE_STATE of the benchmark's labs. */
  readonly stateDir: string;
}

export interface SshCounts {
  /** Accepted logins, summed over the machines. */
  readonly connections: number;
  /** exec/subsystem/shell channel requests, summed over the machines (only with `verbose` logging). */
  readonly requests: number;
}

export class BenchLab {
  private conns: SshConnection[] = [];
  inventory!: Inventory;
  image = "";

  constructor(private readonly opts: LabOptions) {}

  private env(): void {
    process.env.DROVE_STATE = this.opts.stateDir;
    process.env.DROVE_LAB_PREFIX = this.opts.prefix;
    process.env.DROVE_LAB_NET = `10.213.${this.opts.net}`;
    delete process.env.DROVE_LAB_BRIDGE;
    delete process.env.DROVE_INVENTORY;
  }

  /** Tears down whatever lab is there and boots `count` new machines. */
  async fresh(count: number): Promise<void> {
    await this.down();
    this.env();
    this.inventory = await labUp(count, () => undefined);
    this.image = (await pushWebImage(this.inventory.lab!.registry, "bench-web", "v1", "hello from the benchmark\n")).digestRef;
    this.conns = await Promise.all(
      this.inventory.machines.map((m) =>
        SshConnection.open({ host: m.address, port: m.port, user: m.user, privateKey: readFileSync(m.privateKeyPath, "utf8"), hostKey: m.hostKey }),
      ),
    );
  }

  /** Stops the lab; returns what it left behind (nothing, when all went well). */
  async down(): Promise<string[]> {
    for (const c of this.conns) c.close();
    this.conns = [];
    this.env();
    await labDown(() => undefined);
    return leftovers();
  }

  /** Runs a command on every machine, in parallel. */
  private all(command: ReturnType<typeof sh>): Promise<{ code: number; stdout: string; stderr: string }[]> {
    return Promise.all(this.conns.map((c) => c.exec(command)));
  }

  /**
   * Machines where the workload is not in place at file generation
   * `generation` (an empty list when every machine is right), with what is wrong.
   */
  async wrong(generation: number): Promise<string[]> {
    const want = fileContent(generation);
    const out = await this.all(sh`
      cat ${WORKLOAD.filePath} 2>/dev/null | sha256sum | cut -c1-64
      stat -c %a ${WORKLOAD.filePath} 2>/dev/null || echo none
      dpkg-query -W -f='\${Status}\\n' ${WORKLOAD.package} 2>/dev/null || echo absent
      systemctl is-active ${WORKLOAD.unitName} || true
      systemctl is-enabled ${WORKLOAD.unitName} 2>/dev/null || echo disabled
      docker inspect -f '{{.State.Running}}' ${WORKLOAD.containerName} 2>/dev/null || echo none
      curl -fsS -m 5 http://127.0.0.1:${String(WORKLOAD.port)}/ || echo unreachable
    `);
    const { createHash } = await import("node:crypto");
    const expected = [
      createHash("sha256").update(want).digest("hex"),
      WORKLOAD.fileMode.replace(/^0/, ""),
      "install ok installed",
      "active",
      "enabled",
      "true",
      "hello from the benchmark",
    ].join("\n");
    const bad: string[] = [];
    out.forEach((r, i) => {
      const got = r.stdout.trim();
      if (got !== expected) bad.push(`${this.inventory.machines[i].name}: ${got.split("\n").join(" | ")}`);
    });
    return bad;
  }

  /** SSH logins and channel requests the machines' sshd logged so far (this connection's own excluded). */
  async sshCounts(): Promise<SshCounts> {
    const out = await this.all(sh`journalctl _COMM=sshd -o cat --no-pager | grep -E 'Accepted |server_input_channel_req' || true`);
    let connections = 0;
    let requests = 0;
    for (const r of out) {
      connections += countAccepted(r.stdout);
      // This lab connection was opened before sshd logged at DEBUG1 (a session keeps the level it
      // started with), so its own requests, this one included, are not in the log.
      requests += countChannelRequests(r.stdout);
    }
    return { connections, requests };
  }

  /** sshd logs each channel request (LogLevel DEBUG1) or not; live sessions stay up. */
  async verboseSshd(on: boolean): Promise<void> {
    const conf = "/etc/ssh/sshd_config.d/00-drove-bench.conf";
    await this.all(on ? sh`echo 'LogLevel DEBUG1' > ${conf} && systemctl reload ssh.service` : sh`rm -f ${conf} && systemctl reload ssh.service`);
  }
}
