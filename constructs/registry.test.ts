import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import bcrypt from "bcryptjs";
import * as yaml from "js-yaml";
import { App } from "../src/app";
import { CertificateAuthority } from "./certificate";
import { ContainerRuntime } from "./container-runtime";
import { File } from "./file";
import { containerdHostsToml, dockerConfigJson, htpasswdLine, Registry, registryConfigYaml } from "./registry";
import { hostIn, messagesOf } from "./testing";

const PASSWORD = "pa55-word-never-shown";

function world() {
  const app = new App({ synthOut: "-" });
  const m1 = hostIn(app, "m1");
  const m2 = new (m1.constructor as typeof import("./host").Host)(app, "m2", { address: "10.0.0.6", privateKey: pulumi.secret("k"), hostKey: "SHA256:m5IHXuYajWiaBPu90qEletjQt9bxszIkcxckGUmSKB8" });
  return { app, m1, m2 };
}

type Doc = { hosts: Record<string, { path: string; type: string; props: Record<string, unknown> }[]> };
const filesOn = (doc: Doc, host: string) => Object.fromEntries((doc.hosts[host] ?? []).filter((r) => r.type === "drove:index:File").map((r) => [r.props.path as string, r.props]));

describe("Registry", () => {
  it("renders the registry on its host: package, config, htpasswd, TLS files, storage, unit; secrets stay secret", async () => {
    // given
    const { app, m1 } = world();
    // when
    const registry = new Registry(m1, "registry", { users: { ci: PASSWORD } });
    const text = await app.toYaml();
    // then
    assert.equal(registry.endpoint, "10.0.0.5:5000");
    assert.doesNotMatch(text, new RegExp(PASSWORD));
    const doc = yaml.load(text) as Doc;
    const files = filesOn(doc, "m1");
    assert.deepEqual(
      Object.keys(files).filter((p) => p.startsWith("/etc/docker/registry")).sort(),
      ["/etc/docker/registry/drove/config.yml", "/etc/docker/registry/drove/htpasswd", "/etc/docker/registry/drove/registry.crt", "/etc/docker/registry/drove/registry.key"],
    );
    assert.equal(files["/etc/docker/registry/drove/htpasswd"].content, "[secret]");
    assert.equal(files["/etc/docker/registry/drove/htpasswd"].mode, "0600");
    assert.equal(files["/etc/docker/registry/drove/htpasswd"].owner, "docker-registry");
    assert.equal(files["/etc/docker/registry/drove/registry.key"].content, "[secret]");
    assert.equal(files["/etc/docker/registry/drove/registry.key"].mode, "0600");
    const config = yaml.load(files["/etc/docker/registry/drove/config.yml"].content as string) as Record<string, any>;
    assert.equal(config.http.addr, ":5000");
    assert.equal(config.auth.htpasswd.path, "/etc/docker/registry/drove/htpasswd");
    assert.equal(config.storage.filesystem.rootdirectory, "/var/lib/drove-registry");
    const types = doc.hosts.m1.map((r) => `${r.type} ${r.props.name ?? r.props.path ?? ""}`);
    assert.ok(types.includes("drove:index:Package docker-registry"));
    assert.ok(types.includes("drove:index:SystemdUnit docker-registry.service"));
    assert.ok(types.includes("drove:index:Directory /var/lib/drove-registry"));
    // the default CA and the server certificate, for the host's address
    const cert = doc.hosts["m1/registry/ca/m1-registry-tls"][0];
    assert.deepEqual(cert.props.ipAddresses, ["10.0.0.5"]);
    assert.deepEqual(cert.props.usages, ["server"]);
  });

  it("makes every host of the App trust it, hosts added later too, for Docker, Podman/skopeo and containerd", async () => {
    // given
    const { app, m1, m2 } = world();
    new Registry(m1, "registry", { users: { ci: PASSWORD } });
    const late = hostIn(app, "m3");
    // when
    const doc = yaml.load(await app.toYaml()) as Doc;
    // then
    for (const h of ["m1", "m2", "m3"]) {
      const files = filesOn(doc, h);
      for (const p of ["/etc/docker/certs.d/10.0.0.5:5000/ca.crt", "/etc/containers/certs.d/10.0.0.5:5000/ca.crt", "/etc/containerd/certs.d/10.0.0.5:5000/ca.crt"]) {
        assert.equal(files[p]?.content, "(known after create)", `${h} ${p}`);
      }
      assert.match(files["/etc/containerd/certs.d/10.0.0.5:5000/hosts.toml"].content as string, /^server = "https:\/\/10\.0\.0\.5:5000"/);
      assert.equal(files["/root/.docker/config.json"], undefined, "no credentials without a grant");
    }
    void m2;
    void late;
  });

  it("trustAllHosts: false trusts only the hosts it is told", async () => {
    const { app, m1, m2 } = world();
    const r = new Registry(m1, "registry", { trustAllHosts: false });
    const [t] = r.trustOn(m2);
    assert.equal(r.trustOn(m2)[0], t, "asking twice returns the same trust");
    const doc = yaml.load(await app.toYaml()) as Doc;
    assert.equal(filesOn(doc, "m1")["/etc/docker/certs.d/10.0.0.5:5000/ca.crt"], undefined);
    assert.ok(filesOn(doc, "m2")["/etc/docker/certs.d/10.0.0.5:5000/ca.crt"]);
  });

  it("grantPull gives one credentials file per host listing every registry granted to it, and containerd's header; containers wait for them", async () => {
    // given
    const { app, m1, m2 } = world();
    const ca = new CertificateAuthority(app, "ca");
    const a = new Registry(m1, "registry", { users: { ci: PASSWORD }, ca });
    const b = new Registry(m2, "registry", { users: { ops: PASSWORD }, ca, port: 5443 });
    const docker = ContainerRuntime.docker(m2);
    const web = docker.addContainer("web", { image: `${a.endpoint}/web@sha256:${"0".repeat(64)}` });
    const other = docker.addContainer("other", { image: "10.9.9.9:5000/x:1" });
    // when
    const credsA = a.grantPull(m2);
    const credsB = b.grantPull(m2, "ops");
    const doc = yaml.load(await app.toYaml()) as Doc;
    // then
    assert.equal(credsA, credsB, "one credentials construct per host");
    assert.ok(credsA.file instanceof File);
    assert.deepEqual(credsA.registries(), [a, b]);
    const files = filesOn(doc, "m2");
    assert.equal(files["/root/.docker/config.json"].content, "[secret]");
    assert.equal(files["/root/.docker/config.json"].mode, "0600");
    assert.equal(files["/etc/containerd/certs.d/10.0.0.5:5000/hosts.toml"].content, "[secret]");
    assert.equal(filesOn(doc, "m1")["/etc/containerd/certs.d/10.0.0.5:5000/hosts.toml"].content !== "[secret]", true, "m1 was granted nothing");
    assert.ok(web.node.dependencies.includes(a.unit));
    assert.ok(web.node.dependencies.includes(credsA.file));
    assert.ok(!other.node.dependencies.includes(a.unit), "a container of another registry does not wait");
  });

  it("an Image pushed to it from a granted host waits for the registry, its trust and its credentials; one pushed elsewhere does not", async () => {
    // given
    const { app, m1, m2 } = world();
    const registry = new Registry(m1, "registry", { users: { ci: PASSWORD } });
    const docker = ContainerRuntime.docker(m2);
    const mine = docker.buildImage("mine", { repository: `${registry.endpoint}/team/web`, context: __dirname });
    const elsewhere = docker.buildImage("elsewhere", { repository: "10.9.9.9:5000/team/web", context: __dirname });
    // when
    const creds = registry.grantPush(m2);
    await app.toYaml();
    // then
    assert.ok(mine.node.dependencies.includes(registry.unit));
    assert.ok(mine.node.dependencies.includes(creds.file));
    assert.ok(!elsewhere.node.dependencies.includes(registry.unit));
    assert.ok(mine._toSpec().dependsOn!.includes(creds.file), "the dependency reaches the Pulumi resource");
  });

  it("refuses bad props at construction, naming the construct and the fix", () => {
    const { app, m1 } = world();
    assert.deepEqual(messagesOf(() => new Registry(m1, "r1", { port: 70000, users: { "bad:name": "x" }, storage: "data" })), [
      "m1/r1: `port` must be between 1 and 65535, but 70000 was provided",
      "m1/r1: user name \"bad:name\" must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (no ':')",
      'm1/r1: `storage` must be an absolute, normalised directory path like /srv/registry, but "data" was provided',
    ]);
    assert.match(messagesOf(() => new Registry(app, "r2"))[0], /^r2: a Registry is deployed on a Host: new Registry\(host, "registry", \{\.\.\.\}\), but its scope \(app\) is not a Host$/);
    const r = new Registry(m1, "r3");
    assert.deepEqual(messagesOf(() => r.grantPull(m1)), ["m1/r3: the registry has no users, so anyone may pull already; give `users` to require credentials"]);
  });

  it("refuses two registries on one host before anything deploys", () => {
    const { app, m1 } = world();
    new Registry(m1, "a");
    new Registry(m1, "b", { port: 5001 });
    assert.match(app.validate().join("\n"), /m1\/a: the host m1 already runs the registry m1\/b; a host runs one registry/);
  });
});

describe("registry renderings", () => {
  it("htpasswd lines are bcrypt, verify, and are the same for the same password and place", () => {
    const line = htpasswdLine("ci", PASSWORD, "m1/registry");
    assert.match(line, /^ci:\$2y\$10\$[./A-Za-z0-9]{53}$/);
    assert.ok(bcrypt.compareSync(PASSWORD, line.slice(3)));
    assert.equal(htpasswdLine("ci", PASSWORD, "m1/registry"), line);
    assert.notEqual(htpasswdLine("ci", PASSWORD, "m2/registry"), line);
    assert.notEqual(htpasswdLine("ci", "other", "m1/registry"), line);
  });

  it("the Docker config lists each endpoint with base64(user:password)", () => {
    const text = dockerConfigJson({ "b:5000": { user: "u", password: "p:w" }, "a:5000": { user: "v", password: "q" } });
    assert.deepEqual(JSON.parse(text), { auths: { "a:5000": { auth: Buffer.from("v:q").toString("base64") }, "b:5000": { auth: Buffer.from("u:p:w").toString("base64") } } });
  });

  it("containerd's hosts.toml names the CA, and the Basic header only with credentials", () => {
    assert.equal(
      containerdHostsToml("10.0.0.5:5000", "/etc/containerd/certs.d/10.0.0.5:5000/ca.crt"),
      'server = "https://10.0.0.5:5000"\n\n[host."https://10.0.0.5:5000"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/containerd/certs.d/10.0.0.5:5000/ca.crt"\n',
    );
    assert.match(containerdHostsToml("e:1", "/c", { user: "u", password: "p" }), /\[host\."https:\/\/e:1"\.header\]\n    Authorization = "Basic dTpw"\n$/);
  });

  it("the config has no auth section without users", () => {
    assert.doesNotMatch(registryConfigYaml({ port: 5000, storage: "/s", auth: false, realm: "r" }), /auth:/);
  });
});
