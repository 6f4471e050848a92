/** Containers on user networks and with named volumes (the parts of the container kind that Network and Volume need). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseContainerFact, type CliEngine } from "./facts";
import { planContainer, specDigest, type ContainerDesired } from "./operations";
import { containerKind } from "./provider";
import { runtimeSpec } from "./systemd";
import { UNKNOWN } from "../common";

const want: ContainerDesired & { engine: CliEngine } = {
  engine: "docker",
  name: "web",
  image: "reg/web@sha256:abc",
  env: {},
  ports: [],
  volumes: [{ source: "data", target: "/data", readOnly: false }],
  restart: "always",
  labels: {},
  running: true,
};

describe("a container on user networks, with a named volume", () => {
  const table: { name: string; desired: Partial<ContainerDesired & { engine: CliEngine }>; run: string }[] = [
    {
      name: "docker, one network -> --network at run",
      desired: { networks: ["app"] },
      run: `docker run --detach --name web --restart always --label drove.spec=${specDigest({ ...want, networks: ["app"] })} --env-file /dev/stdin --volume data:/data --network app reg/web@sha256:abc`,
    },
    {
      name: "docker, two networks -> the first at run, the second connected (Docker 20.10 takes one at run)",
      desired: { networks: ["app", "db"] },
      run: `docker run --detach --name web --restart always --label drove.spec=${specDigest({ ...want, networks: ["app", "db"] })} --env-file /dev/stdin --volume data:/data --network app reg/web@sha256:abc && docker network connect db web`,
    },
    {
      name: "podman, two networks -> both at run",
      desired: { engine: "podman", networks: ["app", "db"] },
      run: `podman run --detach --name web --restart always --label drove.spec=${specDigest({ ...want, networks: ["app", "db"] })} --env-file /dev/stdin --volume data:/data --network app --network db reg/web@sha256:abc`,
    },
    {
      name: "no networks -> the engine's default, as before",
      desired: {},
      run: `docker run --detach --name web --restart always --label drove.spec=${specDigest(want)} --env-file /dev/stdin --volume data:/data reg/web@sha256:abc`,
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      // given / when
      const [step] = planContainer({ ...want, ...t.desired }, { state: "absent" });
      // then
      assert.equal(step.command.text, `${t.desired.engine ?? "docker"} pull reg/web@sha256:abc >/dev/null && ${t.run}`);
    });
  }

  it("keeps the spec digest of a container without networks (no replacement on upgrade), and changes it with them", () => {
    assert.equal(specDigest({ ...want, networks: [] }), specDigest(want));
    assert.notEqual(specDigest({ ...want, networks: ["app"] }), specDigest(want));
  });

  it("reads the user networks a container is on, leaving the engines' defaults out", () => {
    const doc = [{ Config: { Image: "x" }, State: { Running: true }, NetworkSettings: { Networks: { db: {}, app: {}, bridge: {} } }, HostConfig: { Binds: ["data:/data:rw,rprivate,nosuid,nodev,rbind"] } }];
    const f = parseContainerFact(JSON.stringify(doc));
    assert.equal(f.state, "present");
    if (f.state !== "present") return;
    assert.deepEqual(f.networks, ["app", "db"]);
    assert.deepEqual(f.volumes, [{ source: "data", target: "/data", readOnly: false }]);
  });

  it("mounts a named volume's directory into a systemd container", () => {
    const spec = runtimeSpec({ process: {} }, { ...want, engine: "systemd", volumes: [{ source: "data", target: "/data", readOnly: true }, { source: "/srv", target: "/srv", readOnly: false }] });
    assert.deepEqual(spec.mounts, [
      { destination: "/data", type: "bind", source: "/var/lib/drove/volumes/data/_data", options: ["rbind", "ro"] },
      { destination: "/srv", type: "bind", source: "/srv", options: ["rbind", "rw"] },
    ]);
  });
});

describe("Container check: networks and named volumes", () => {
  const connection = { host: "10.0.0.5", privateKey: "k", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
  const base = { connection, engine: "docker", name: "web", image: "reg/web@sha256:abc" };

  it("accepts a named volume, a not-yet-known one (its volume is being replaced), and networks", () => {
    const { inputs, failures } = containerKind.check({ ...base, volumes: [{ source: "data", target: "/data" }, { source: UNKNOWN, target: "/x" }], networks: ["app", UNKNOWN] });
    assert.deepEqual(failures, []);
    assert.deepEqual(inputs.networks, ["app", UNKNOWN]);
  });

  it("leaves `networks` out when there are none", () => {
    assert.equal("networks" in containerKind.check(base).inputs, false);
  });

  it("refuses networks on the systemd engine, and a relative path that is no volume name", () => {
    const failures = containerKind.check({ ...base, engine: "systemd", volumes: [{ source: "./x", target: "/data" }], networks: ["app"] }).failures;
    assert.deepEqual(failures.map((f) => f.property), ["volumes", "networks"]);
    assert.match(failures[1].reason, /the systemd engine runs containers on the host's network, so a container cannot join networks there/);
  });

  it("replaces the container when its networks change", () => {
    const { inputs } = containerKind.check({ ...base, networks: ["app"] });
    const d = containerKind.diff({ ...inputs, instance: "i" }, { ...inputs, networks: ["other"] });
    assert.deepEqual(d.replaces, ["networks"]);
  });
});
