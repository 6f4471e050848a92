import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  allocatePortBlocks,
  allocateVips,
  freeSlot,
  hostPort,
  hostsBlock,
  hostsFileContent,
  hostsUpdateCommand,
  nodeProxyRemovalSteps,
  nodeProxySteps,
  planReplicas,
  planRollout,
  renderHaproxy,
  secretFileSteps,
  secretsDir,
  slotsPerNode,
  vipFor,
  type Replica,
} from "./operations";

describe("virtual IPs", () => {
  it("are deterministic, in 10.254.0.0/16, never the network or broadcast address", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), (c, s) => {
        const ip = vipFor(c, s);
        assert.equal(ip, vipFor(c, s));
        assert.match(ip, /^10\.254\.\d+\.\d+$/);
        assert.notEqual(ip, "10.254.0.0");
        assert.notEqual(ip, "10.254.255.255");
      }),
    );
  });

  it("differ between the services of one cluster, whatever their names", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), { maxLength: 40 }), (names) => {
        const vips = Object.values(allocateVips("c", names));
        assert.equal(new Set(vips).size, names.length);
      }),
    );
  });

  it("move the later name to the next address on a collision", () => {
    // given a service that holds the address another hashes to
    const first = vipFor("c", "web");
    // when the address is taken
    const moved = vipFor("c", "web", new Set([first]));
    // then the next one is used
    assert.notEqual(moved, first);
  });

  it("do not change when another service is added (no collision)", () => {
    const before = allocateVips("prod", ["api", "web"]);
    const after = allocateVips("prod", ["api", "web", "db"]);
    assert.equal(after.api, before.api);
    assert.equal(after.web, before.web);
  });
});

describe("host ports", () => {
  it("never overlap between services, slots or ports", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z]{1,5}$/), { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 4 }), (names, portCount) => {
        const blocks = allocatePortBlocks("c", names);
        const seen = new Set<number>();
        for (const b of Object.values(blocks)) {
          for (let slot = 0; slot < slotsPerNode(portCount); slot++) {
            for (let i = 0; i < portCount; i++) {
              const p = hostPort(b, slot, i, portCount);
              assert.ok(p >= 20000 && p < 65536, `port ${p}`);
              assert.ok(!seen.has(p), `port ${p} twice`);
              seen.add(p);
            }
          }
        }
      }),
    );
  });

  const slots: [number[], number][] = [
    [[], 0],
    [[0], 1],
    [[1], 0],
    [[0, 1, 3], 2],
  ];
  for (const [used, want] of slots) {
    it(`the free slot next to ${JSON.stringify(used)} is ${want}`, () => assert.equal(freeSlot(used, 1), want));
  }

  it("a full node says so", () => {
    assert.throws(() => freeSlot(Array.from({ length: 64 }, (_, i) => i), 1), /every one of the 64 replica slots/);
  });
});

describe("renderHaproxy", () => {
  it("given an HTTP check on the target port, balances over the endpoints with httpchk", () => {
    // given
    const cfg = renderHaproxy({
      cluster: "prod",
      service: "web",
      vip: "10.254.1.2",
      ports: [{ port: 80, targetPort: 8080, protocol: "tcp" }],
      endpoints: [
        { id: "m2-0", address: "10.0.0.12", hostPorts: [20100] },
        { id: "m1-0", address: "10.0.0.11", hostPorts: [20100] },
      ],
      healthCheck: { http: { path: "/healthz", port: 8080 } },
      timing: { interval: 2, timeout: 1, retries: 3 },
    });
    // then
    assert.equal(
      cfg,
      [
        "# managed by drove: service web of cluster prod, web.prod.drove -> 10.254.1.2",
        "defaults",
        "    mode tcp",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    retries 3",
        "    option redispatch",
        "",
        "frontend drove_prod_web_80",
        "    bind 10.254.1.2:80",
        "    default_backend drove_prod_web_80",
        "",
        "backend drove_prod_web_80",
        "    balance roundrobin",
        "    option httpchk GET /healthz",
        "    http-check expect status 200-399",
        "    default-server inter 2s fall 3 rise 1",
        "    server m1-0 10.0.0.11:20100 check",
        "    server m2-0 10.0.0.12:20100 check",
        "",
      ].join("\n"),
    );
  });

  it("given a TCP or command check, or no endpoint, checks TCP and keeps the frontend", () => {
    const cfg = renderHaproxy({
      cluster: "c",
      service: "db",
      vip: "10.254.0.9",
      ports: [{ port: 5432, targetPort: 5432, protocol: "tcp" }],
      endpoints: [],
      healthCheck: { command: ["pg_isready"] },
      timing: { interval: 5, timeout: 2, retries: 2 },
    });
    assert.match(cfg, /bind 10\.254\.0\.9:5432/);
    assert.doesNotMatch(cfg, /httpchk|\n    server /);
  });
});

describe("/etc/hosts block", () => {
  const table: { name: string; current: string; block: string; want: string }[] = [
    { name: "added to a file without it", current: "127.0.0.1 localhost\n", block: hostsBlock("c", "web", "10.254.0.5"), want: "127.0.0.1 localhost\n# BEGIN drove service c/web\n10.254.0.5 web.c.drove\n# END drove service c/web\n" },
    {
      name: "replaced in place of the old one, other blocks kept",
      current: "127.0.0.1 localhost\n# BEGIN drove service c/web\n10.254.0.4 web.c.drove\n# END drove service c/web\n# BEGIN drove service c/api\n10.254.0.7 api.c.drove\n# END drove service c/api\n",
      block: hostsBlock("c", "web", "10.254.0.5"),
      want: "127.0.0.1 localhost\n# BEGIN drove service c/api\n10.254.0.7 api.c.drove\n# END drove service c/api\n# BEGIN drove service c/web\n10.254.0.5 web.c.drove\n# END drove service c/web\n",
    },
    { name: "removed with an empty block", current: "127.0.0.1 localhost\n# BEGIN drove service c/web\n10.254.0.4 web.c.drove\n# END drove service c/web\n", block: "", want: "127.0.0.1 localhost\n" },
    { name: "a no-op removal", current: "127.0.0.1 localhost\n", block: "", want: "127.0.0.1 localhost\n" },
  ];
  for (const t of table) it(t.name, () => assert.equal(hostsFileContent(t.current, "c", "web", t.block), t.want));

  it("is written under a lock, the marker quoted", () => {
    assert.match(hostsUpdateCommand("c", "web").text, /^flock \/run\/drove-hosts\.lock sh -c '.*' drove-hosts 'drove service c\/web'$/);
  });
});

describe("node proxy steps", () => {
  it("given a service, adds the VIP, the drop-in, the config (on stdin) and the hosts block, in that order", () => {
    const steps = nodeProxySteps({ cluster: "c", service: "web", vip: "10.254.0.5", config: "CFG" });
    assert.deepEqual(
      steps.map((s) => s.description),
      ["add the virtual IP 10.254.0.5 to lo", "let HAProxy load drove's services", "write /etc/haproxy/drove.d/c-web.cfg and reload HAProxy", "name web.c.drove in /etc/hosts"],
    );
    assert.equal(steps[2].stdin, "CFG");
    assert.match(steps[0].command.text, /ip addr add 10\.254\.0\.5\/32 dev lo/);
    assert.match(steps[2].command.text, /systemctl reload haproxy; else systemctl start haproxy/);
  });

  it("given a removal, takes away the hosts block, the config and the VIP", () => {
    const steps = nodeProxyRemovalSteps({ cluster: "c", service: "web", vip: "10.254.0.5" });
    assert.equal(steps[0].stdin, "");
    assert.match(steps[1].command.text, /rm -f \/etc\/haproxy\/drove\.d\/c-web\.cfg/);
    assert.match(steps[2].command.text, /ip addr del 10\.254\.0\.5\/32 dev lo/);
  });
});

describe("planRollout", () => {
  const table: { name: string; in: Parameters<typeof planRollout>[0]; want: { add: number; remove: number }[] }[] = [
    { name: "3 old, surge 1, unavailable 1", in: { old: 3, current: 0, desired: 3, maxSurge: 1, maxUnavailable: 1 }, want: [{ add: 1, remove: 2 }, { add: 2, remove: 1 }] },
    { name: "3 old, surge 1, unavailable 0", in: { old: 3, current: 0, desired: 3, maxSurge: 1, maxUnavailable: 0 }, want: [{ add: 1, remove: 1 }, { add: 1, remove: 1 }, { add: 1, remove: 1 }] },
    { name: "3 old, surge 0, unavailable 1", in: { old: 3, current: 0, desired: 3, maxSurge: 0, maxUnavailable: 1 }, want: [{ add: 0, remove: 1 }, { add: 1, remove: 1 }, { add: 1, remove: 1 }, { add: 1, remove: 0 }] },
    { name: "nothing to do", in: { old: 0, current: 3, desired: 3, maxSurge: 1, maxUnavailable: 1 }, want: [] },
    { name: "scale 3 -> 5", in: { old: 0, current: 3, desired: 5, maxSurge: 1, maxUnavailable: 1 }, want: [{ add: 2, remove: 0 }] },
    { name: "scale 5 -> 2", in: { old: 0, current: 5, desired: 2, maxSurge: 1, maxUnavailable: 1 }, want: [{ add: 0, remove: 3 }] },
    { name: "first create", in: { old: 0, current: 0, desired: 3, maxSurge: 1, maxUnavailable: 1 }, want: [{ add: 3, remove: 0 }] },
  ];
  for (const t of table) it(t.name, () => assert.deepEqual(planRollout(t.in), t.want));

  it("refuses maxSurge = maxUnavailable = 0", () => {
    assert.throws(() => planRollout({ old: 1, current: 0, desired: 1, maxSurge: 0, maxUnavailable: 0 }), /cannot both be 0/);
  });

  it("never has fewer than desired - maxUnavailable healthy, never more than desired + maxSurge running, and ends at desired", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 5 }),
        (old, current, desired, maxSurge, maxUnavailable) => {
          fc.pre(maxSurge + maxUnavailable > 0);
          const steps = planRollout({ old, current, desired, maxSurge, maxUnavailable });
          let o = old;
          let c = current;
          const floor = Math.min(old + current, desired - maxUnavailable);
          const ceiling = Math.max(old + current, desired + maxSurge);
          for (const s of steps) {
            c += s.add; // started, and healthy before anything is removed
            assert.ok(o + c <= ceiling, `${o + c} running > ${ceiling}`);
            // removals take old replicas first, then any surplus of the new version
            const fromOld = Math.min(o, s.remove);
            o -= fromOld;
            c -= s.remove - fromOld;
            assert.ok(o + c >= floor, `${o + c} healthy < ${floor}`);
          }
          assert.equal(o, 0);
          assert.equal(c, desired);
        },
      ),
    );
  });
});

describe("planReplicas", () => {
  const r = (node: string, slot: number, version: string, healthy = true): Replica => ({ node, slot, version, healthy });

  it("given nothing running, adds round-robin over the nodes", () => {
    const p = planReplicas({ existing: [], placement: { b: 2, a: 1 }, version: "v1", maxSurge: 1, maxUnavailable: 1 });
    assert.deepEqual(p.add, ["a", "b", "b"]);
    assert.deepEqual(p.steps, [{ add: 3, remove: 0 }]);
  });

  it("given the same version and placement, is a no-op", () => {
    const p = planReplicas({ existing: [r("a", 0, "v1"), r("b", 0, "v1")], placement: { a: 1, b: 1 }, version: "v1", maxSurge: 1, maxUnavailable: 1 });
    assert.deepEqual([p.add, p.discard, p.retire, p.steps], [[], [], [], []]);
  });

  it("given a new version, retires every old replica and adds as many", () => {
    const p = planReplicas({ existing: [r("a", 0, "v1"), r("b", 0, "v1"), r("c", 0, "v1")], placement: { a: 1, b: 1, c: 1 }, version: "v2", maxSurge: 1, maxUnavailable: 0 });
    assert.deepEqual(p.add, ["a", "b", "c"]);
    assert.deepEqual(p.retire.map((x) => x.node), ["a", "b", "c"]);
    assert.equal(p.steps.length, 3);
  });

  it("given a node out of reach, discards its replicas and adds them where the placement says", () => {
    const p = planReplicas({
      existing: [r("a", 0, "v1"), r("b", 0, "v1"), r("c", 0, "v1")],
      placement: { a: 2, b: 1 },
      version: "v1",
      unreachable: new Set(["c"]),
      maxSurge: 1,
      maxUnavailable: 1,
    });
    assert.deepEqual(p.keep.map((x) => x.node), ["a", "b"]);
    assert.deepEqual(p.discard.map((x) => x.node), ["c"]);
    assert.deepEqual(p.add, ["a"]);
  });

  it("given an unhealthy replica of the new version, replaces it", () => {
    const p = planReplicas({ existing: [r("a", 0, "v1", false)], placement: { a: 1 }, version: "v1", maxSurge: 1, maxUnavailable: 1 });
    assert.deepEqual(p.discard.map((x) => x.slot), [0]);
    assert.deepEqual(p.add, ["a"]);
  });

  it("keeps every healthy replica of the new version the placement still wants (minimal movement)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ node: fc.constantFrom("a", "b", "c"), version: fc.constantFrom("v1", "v2"), healthy: fc.boolean() }), { maxLength: 12 }),
        fc.record({ a: fc.nat(4), b: fc.nat(4), c: fc.nat(4) }),
        (rs, placement) => {
          const existing = rs.map((x, i) => ({ ...x, slot: i }));
          const p = planReplicas({ existing, placement, version: "v2", maxSurge: 1, maxUnavailable: 1 });
          for (const node of ["a", "b", "c"] as const) {
            const good = existing.filter((x) => x.node === node && x.version === "v2" && x.healthy).length;
            const kept = p.keep.filter((x) => x.node === node).length;
            assert.equal(kept, Math.min(good, placement[node]));
            assert.equal(kept + p.add.filter((n) => n === node).length, placement[node]);
          }
          assert.equal(p.keep.length + p.discard.length + p.retire.length, existing.length);
        },
      ),
    );
  });
});

describe("secretFileSteps", () => {
  const DIR = secretsDir("lab", "web", 2);
  const table: { name: string; secrets: Record<string, string>; steps: { description: string; command: string; stdin?: string }[] }[] = [
    { name: "no secrets -> nothing to do", secrets: {}, steps: [] },
    {
      name: "one secret -> a fresh 0700 directory, then the file under umask 0377 (0400 before its first byte), from stdin",
      secrets: { greeting: "s3cr3t" },
      steps: [
        { description: "prepare the secrets", command: "rm -rf /run/drove/services/lab-web-2/secrets && mkdir -p -m 0700 /run/drove/services/lab-web-2/secrets" },
        {
          description: "write secret greeting",
          command: "umask 0377 && cat > /run/drove/services/lab-web-2/secrets/greeting && chmod 0400 /run/drove/services/lab-web-2/secrets/greeting",
          stdin: "s3cr3t",
        },
      ],
    },
    {
      name: "two secrets -> one write each, the values only on stdin",
      secrets: { "db-password": "p4ss", "api.token": "t0ken" },
      steps: [
        { description: "prepare the secrets", command: "rm -rf /run/drove/services/lab-web-2/secrets && mkdir -p -m 0700 /run/drove/services/lab-web-2/secrets" },
        {
          description: "write secret db-password",
          command: "umask 0377 && cat > /run/drove/services/lab-web-2/secrets/db-password && chmod 0400 /run/drove/services/lab-web-2/secrets/db-password",
          stdin: "p4ss",
        },
        {
          description: "write secret api.token",
          command: "umask 0377 && cat > /run/drove/services/lab-web-2/secrets/api.token && chmod 0400 /run/drove/services/lab-web-2/secrets/api.token",
          stdin: "t0ken",
        },
      ],
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      // when
      const steps = secretFileSteps(DIR, t.secrets);
      // then
      assert.deepEqual(
        steps.map((s) => ({ description: s.description, command: s.command.text, ...(s.stdin !== undefined ? { stdin: s.stdin } : {}) })),
        t.steps,
      );
    });
  }

  it("run by a local shell, the file is 0400 and empty while its content is still on its way, and the directory 0700", async () => {
    // given a shell whose stdin stays open
    const base = mkdtempSync(join(tmpdir(), "drove-service-secrets-"));
    try {
      const dir = join(base, "secrets");
      const [prepare, write] = secretFileSteps(dir, { greeting: "s3cr3t\n" });
      await runShell(prepare.command.text, "");
      const child = spawn("sh", ["-c", write.command.text], { stdio: ["pipe", "ignore", "pipe"] });
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      // when the file exists but no byte has been sent
      const early = await firstFileIn(dir);
      // then
      assert.equal(early.name, "greeting");
      assert.equal(early.size, 0);
      assert.equal((early.mode & 0o777).toString(8), "400");
      assert.equal((statSync(dir).mode & 0o777).toString(8), "700");
      // and once it arrives
      child.stdin.end(write.stdin);
      assert.equal(await exited, 0);
      assert.equal(readFileSync(join(dir, "greeting"), "utf8"), "s3cr3t\n");
      assert.equal((statSync(join(dir, "greeting")).mode & 0o777).toString(8), "400");
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

function runShell(command: string, stdin: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${command}: ${code} ${err}`))));
    child.stdin.end(stdin);
  });
}

/** Waits until a file appears in `dir` (made by a command still running), and stats it. */
async function firstFileIn(dir: string): Promise<{ name: string; mode: number; size: number }> {
  for (let i = 0; i < 200; i++) {
    const names = existsSync(dir) ? readdirSync(dir) : [];
    if (names.length) {
      const st = statSync(join(dir, names[0]));
      return { name: names[0], mode: st.mode, size: st.size };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no file appeared in ${dir}`);
}
