import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { USERS_MARK } from "../network/facts";
import { InUseError, SPEC_LABEL } from "../network/operations";
import { parseVolumeFact, volumeFactCommand, type VolumeFact } from "./facts";
import { planVolume, planVolumeRemoval, VolumeConflictError, volumeDigest, volumeRecord, type VolumeDesired } from "./operations";
import { volumeKind } from "./provider";

const want: VolumeDesired = { engine: "docker", name: "data", labels: { keep: "yes" } };
const digest = volumeDigest(want);
const present = (over: Partial<Extract<VolumeFact, { state: "present" }>> = {}): VolumeFact => ({
  state: "present",
  driver: "local",
  labels: { keep: "yes", [SPEC_LABEL]: digest },
  users: [],
  ...over,
});

describe("planVolume: desired + facts -> steps", () => {
  const table: { name: string; desired?: Partial<VolumeDesired>; fact: VolumeFact; commands: string[]; stdin?: string }[] = [
    { name: "docker, absent -> create", fact: { state: "absent" }, commands: [`docker volume create --label drove.spec=${digest} --label keep=yes data >/dev/null`] },
    { name: "podman, absent -> create", desired: { engine: "podman" }, fact: { state: "absent" }, commands: [`podman volume create --label drove.spec=${digest} --label keep=yes data >/dev/null`] },
    {
      name: "systemd, absent -> a directory and its record",
      desired: { engine: "systemd" },
      fact: { state: "absent" },
      commands: ["umask 022 && mkdir -p /var/lib/drove/volumes/data/_data && cat > /var/lib/drove/volumes/data/drove.json"],
      stdin: JSON.stringify({ digest, labels: { keep: "yes" } }),
    },
    { name: "made for this spec -> no-op (its data stays)", fact: present(), commands: [] },
    { name: "made for this spec, mounted -> no-op", fact: present({ users: ["web"] }), commands: [] },
  ];
  for (const t of table) {
    it(t.name, () => {
      // given / when
      const steps = planVolume({ ...want, ...t.desired }, t.fact);
      // then
      assert.deepEqual(steps.map((s) => s.command.text), t.commands);
      if (t.stdin) assert.equal(steps[0].stdin, t.stdin);
    });
  }

  it("refuses to take the place of a volume of that name made with other labels: drove never empties one", () => {
    assert.throws(() => planVolume(want, present({ labels: { owner: "someone" } })), (err: unknown) => err instanceof VolumeConflictError && /a volume named data already exists with other labels \({"owner":"someone"}\)/.test((err as Error).message));
  });

  it("only labels change the digest", () => {
    assert.notEqual(volumeDigest({ ...want, labels: {} }), digest);
    assert.equal(volumeDigest({ ...want, engine: "systemd" }), digest);
    assert.deepEqual(volumeRecord(want), { digest, labels: { keep: "yes" } });
  });
});

describe("planVolumeRemoval", () => {
  const table: { name: string; engine: VolumeDesired["engine"]; fact: VolumeFact; commands: string[] }[] = [
    { name: "absent -> nothing to do", engine: "docker", fact: { state: "absent" }, commands: [] },
    { name: "docker -> volume rm", engine: "docker", fact: present(), commands: ["docker volume rm data >/dev/null"] },
    { name: "podman -> volume rm", engine: "podman", fact: present(), commands: ["podman volume rm data >/dev/null"] },
    { name: "systemd -> the directory goes", engine: "systemd", fact: present(), commands: ["rm -rf /var/lib/drove/volumes/data"] },
  ];
  for (const t of table) {
    it(t.name, () => {
      assert.deepEqual(planVolumeRemoval(t.engine, "data", t.fact).map((s) => s.command.text), t.commands);
    });
  }

  it("refuses while containers mount it, naming them", () => {
    assert.throws(() => planVolumeRemoval("systemd", "data", present({ users: ["db", "web"] })), (err: unknown) => err instanceof InUseError && err.message === "containers db, web use it");
  });
});

describe("parseVolumeFact", () => {
  it("reads docker/podman volume inspect and the containers that mount it", () => {
    const out = JSON.stringify([{ Name: "data", Driver: "local", Labels: { keep: "yes" }, Mountpoint: "/var/lib/docker/volumes/data/_data" }]) + `\n${USERS_MARK}\nweb\n`;
    assert.deepEqual(parseVolumeFact("podman", out), { state: "present", driver: "local", labels: { keep: "yes" }, users: ["web"] });
  });

  it("reads the systemd engine's record; its digest is the spec label", () => {
    const out = JSON.stringify({ digest: "abc", labels: { keep: "yes" } }) + `\n${USERS_MARK}\nserver\n`;
    assert.deepEqual(parseVolumeFact("systemd", out), { state: "present", driver: "local", labels: { keep: "yes", [SPEC_LABEL]: "abc" }, users: ["server"] });
  });

  it("reads a missing volume as absent", () => {
    assert.deepEqual(parseVolumeFact("docker", "absent\n"), { state: "absent" });
    assert.deepEqual(parseVolumeFact("systemd", "absent\n"), { state: "absent" });
  });

  it("finds the systemd containers that mount it by their recorded spec, the name quoted", () => {
    const cmd = volumeFactCommand("systemd", "data").text;
    assert.match(cmd, /grep -lF -- '"source":"data"' \/var\/lib\/drove\/containers\/\*\/drove\.spec/);
  });
});

describe("Volume check", () => {
  const connection = { host: "10.0.0.5", privateKey: "k", hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" };
  it("accepts docker, podman and systemd volumes; refuses another engine, a one-letter name and drove's labels", () => {
    for (const engine of ["docker", "podman", "systemd"]) assert.deepEqual(volumeKind.check({ connection, engine, name: "data" }).failures, [], engine);
    const reasons = volumeKind.check({ connection, engine: "containerd", name: "d", labels: { "drove.x": "y" } }).failures.map((f) => f.property);
    assert.deepEqual(reasons, ["engine", "name", "labels"]);
  });

  it("replaces (deleting first) when labels change", () => {
    const olds = { connection, engine: "docker" as const, name: "data", labels: {} };
    assert.deepEqual(volumeKind.diff(olds, { ...olds, labels: { a: "b" } }), { changes: true, replaces: ["labels"], deleteBeforeReplace: true });
    assert.deepEqual(volumeKind.diff(olds, olds), { changes: false, replaces: [], deleteBeforeReplace: false });
  });
});
