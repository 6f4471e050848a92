/**
 * Networks and volumes through the real `pulumi` CLI on lab machines: on
 * Docker (m1) and Podman (m2) two containers on a user network reach each
 * other by name, and data in a named volume outlives a new image and a new
 * network; on systemd + runc (m3) a volume is a directory bind-mounted into
 * the container. Hand-made drift is shown and repaired; a network or volume
 * still used by a container drove does not manage refuses to go, naming it;
 * destroy leaves nothing.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootTestLab, eventually, expectMatch, expectOk, httpText, sh, type TestLab, TestProject } from "./harness";
import { pushWebImage, type TestImage } from "./fixtures";

let lab: TestLab;
let project: TestProject;
let v1: TestImage;
const engine: Record<string, "docker" | "podman"> = { m1: "docker", m2: "podman" };

/** What `client` gets from `server` by name over the network "app". */
async function fromClient(m: "m1" | "m2", path: string): Promise<string> {
  const r = await lab.ssh(m, sh`${engine[m]} exec client /bin/busybox wget -qO- ${`http://server:8080${path}`} 2>&1`);
  return r.stdout.trim();
}

/** What m3's systemd-run server answers over the lab network. */
function fromM3(path: string): Promise<string> {
  return httpText(`http://${lab.machine("m3").address}:8080${path}`, { trim: true });
}


async function writeNotes(tag: string): Promise<void> {
  for (const m of ["m1", "m2"] as const) {
    const r = await lab.ssh(m, sh`${engine[m]} exec server /bin/sh -c ${`echo ${tag}-${m} > /www/data/note.txt`}`);
    assert.equal(r.code, 0, r.stderr);
  }
  const r = await lab.ssh("m3", sh`runc exec drove-server /bin/sh -c ${`echo ${tag}-m3 > /www/data/note.txt`}`);
  assert.equal(r.code, 0, r.stderr);
}

async function assertNotes(tag: string, page: string): Promise<void> {
  for (const m of ["m1", "m2"] as const) {
    assert.equal(await eventually(() => fromClient(m, "/"), page), page, `${m}: client reaches server by name`);
    assert.equal(await fromClient(m, "/data/note.txt"), `${tag}-${m}`, `${m}: the volume's data`);
  }
  assert.equal(await eventually(() => fromM3("/"), page), page, "m3 serves");
  assert.equal(await fromM3("/data/note.txt"), `${tag}-m3`, "m3: the volume's data");
}

describe("Network and Volume on Docker, Podman and systemd + runc, through the real pulumi CLI", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    lab = await bootTestLab("drovenv", 38, 3);
    v1 = await pushWebImage(lab.inventory.lab!.registry, "web", "v1", "hello v1\n");
    project = await TestProject.create("networks.ts");
    expectOk(await project.config({ image: v1.digestRef, dockerSubnet: "10.250.1.0/24", podmanSubnet: "10.251.1.0/24" }), "config");
  });

  after(async () => {
    if (project) await project.pulumi(["destroy", "--yes"]);
    if (lab) assert.deepEqual(await lab.down(), [], "the lab left something behind");
  });

  test("up makes the networks and volumes; containers reach each other by name; no changes after", async () => {
    // when
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(up, "up");
    const net = await lab.ssh("m1", sh`docker network inspect app --format '{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels.tier}} {{.Driver}}'; docker volume inspect data --format '{{.Labels.keep}}'`);
    assert.equal(net.stdout.trim(), "10.250.1.0/24 web bridge\nyes");
    const pnet = await lab.ssh("m2", sh`podman network inspect app --format '{{range .Subnets}}{{.Subnet}}{{end}} {{.Labels.tier}} {{.DNSEnabled}}'; podman volume inspect data --format '{{.Labels.keep}}'`);
    assert.equal(pnet.stdout.trim(), "10.251.1.0/24 web true\nyes");
    const dir = await lab.ssh("m3", sh`test -d /var/lib/drove/volumes/data/_data && echo present`);
    assert.equal(dir.stdout.trim(), "present");
    for (const m of ["m1", "m2"] as const) assert.equal(await eventually(() => fromClient(m, "/"), "hello v1"), "hello v1", `${m}: client reaches server by name`);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the second preview");
  });

  test("data in a named volume survives a new image: the containers are replaced, the volumes are not", async () => {
    // given
    await writeNotes("kept");
    const v2 = await pushWebImage(lab.inventory.lab!.registry, "web", "v2", "hello v2\n");
    expectOk(await project.config({ image: v2.digestRef }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:Container: \(replace\)/);
    assert.doesNotMatch(preview.stdout, /drove:index:(Volume|Network): \(replace\)/);
    expectOk(up, "up");
    await assertNotes("kept", "hello v2");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the new image");
  });

  test("a new subnet replaces the network and the containers on it; the volume keeps its data", async () => {
    // given
    expectOk(await project.config({ dockerSubnet: "10.250.2.0/24" }), "config");
    // when
    const preview = await project.pulumi(["preview", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+-\s*drove:index:Network: \(replace\)/);
    assert.match(preview.stdout, /subnet\s*: "10\.250\.1\.0\/24" => "10\.250\.2\.0\/24"/);
    expectOk(up, "up");
    const net = await lab.ssh("m1", sh`docker network inspect app --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}'; docker inspect server --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{end}}'`);
    assert.match(net.stdout, /^10\.250\.2\.0\/24\napp 10\.250\.2\.\d+$/m);
    await assertNotes("kept", "hello v2");
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the new subnet");
  });

  test("a network and volumes removed by hand show as drift, and up makes them again", async () => {
    // given
    await lab.ssh("m1", sh`docker rm --force server client >/dev/null && docker network rm app`);
    await lab.ssh("m2", sh`podman volume rm --force data`);
    await lab.ssh("m3", sh`rm -rf /var/lib/drove/volumes/data`);
    // when
    const preview = await project.pulumi(["preview", "--refresh", "--diff"]);
    const up = await project.pulumi(["up", "--yes"]);
    // then
    expectOk(preview, "preview");
    assert.match(preview.stdout, /\+ drove:index:Network: \(create\)/);
    assert.equal(preview.stdout.match(/\+ drove:index:Volume: \(create\)/g)?.length, 2, preview.stdout);
    expectOk(up, "up");
    const net = await lab.ssh("m1", sh`docker network inspect app --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}'`);
    assert.equal(net.stdout.trim(), "10.250.2.0/24");
    assert.equal((await lab.ssh("m2", sh`podman volume inspect data --format '{{.Labels.keep}}'`)).stdout.trim(), "yes");
    assert.equal((await lab.ssh("m3", sh`test -d /var/lib/drove/volumes/data/_data && echo present`)).stdout.trim(), "present");
    for (const m of ["m1", "m2"] as const) assert.equal(await eventually(() => fromClient(m, "/"), "hello v2"), "hello v2", m);
    expectOk(await project.pulumi(["preview", "--expect-no-changes"]), "the preview after the repair");
  });

  test("a network and a volume still used by a container drove does not manage are not removed; the error names it", async () => {
    // given: a container made by hand on m1's network, mounting its volume
    const image = (await lab.ssh("m1", sh`docker inspect server --format '{{.Config.Image}}'`)).stdout.trim();
    expectOk(await lab.ssh("m1", sh`docker run --detach --name intruder --network app --volume data:/x ${image} >/dev/null`).then((r) => ({ code: r.code, output: r.stderr })), "docker run");
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    assert.notEqual(down.code, 0, down.output);
    expectMatch(down.output, /Unable to remove network app on root@10\.213\.38\.11: container intruder uses it\. Either remove that container first, or take it off the network/);
    expectMatch(down.output, /Unable to remove volume data on root@10\.213\.38\.11: container intruder uses it/);
    const still = await lab.ssh("m1", sh`docker network inspect app --format '{{.Name}}'; docker volume inspect data --format '{{.Name}}'`);
    assert.equal(still.stdout.trim(), "app\ndata");
    await lab.ssh("m1", sh`docker rm --force intruder`);
  });

  test("destroy leaves no network, volume, container or volume directory behind", async () => {
    // when
    const down = await project.pulumi(["destroy", "--yes"]);
    // then
    expectOk(down, "destroy");
    // Docker is stopped now (drove started it): start it to ask, then stop it again.
    const docker = await lab.ssh(
      "m1",
      sh`systemctl start docker.socket docker.service && docker network ls --format '{{.Name}}' | sort | tr '\n' ' '; echo; docker volume ls -q | wc -l; docker ps -aq | wc -l; systemctl stop docker.service docker.socket`,
    );
    assert.equal(docker.stdout.trim(), "bridge host none \n0\n0", docker.stderr);
    const podman = await lab.ssh("m2", sh`podman network ls --format '{{.Name}}' | tr '\n' ' '; echo; podman volume ls -q | wc -l; podman ps -aq | wc -l; dpkg -s golang-github-containernetworking-plugin-dnsname >/dev/null 2>&1 && echo installed || echo purged`);
    assert.equal(podman.stdout.trim(), "podman \n0\n0\npurged");
    const systemd = await lab.ssh("m3", sh`ls -A /var/lib/drove/volumes | wc -l; ls -A /var/lib/drove/containers | wc -l`);
    assert.equal(systemd.stdout.trim(), "0\n0");
  });
});
