/**
 * Integration program: a registry on the first lab machine (HTTPS from a
 * drove CA, Basic auth from a Pulumi secret), trusted by every machine and
 * granted to all three; once an image is pushed to it, one web container per
 * machine pulls it: Podman on m1, Docker on m2, systemd + runc (skopeo) on m3.
 *   password   the registry user's password (set it with --secret)
 *   caName     the CA's common name (a new one makes a new CA)
 *   image      optional: `name@sha256:...` in the registry; runs the containers
 */
import * as pulumi from "@pulumi/pulumi";
import { App, CertificateAuthority, ContainerRuntime, Host, Registry } from "../../src";

const config = new pulumi.Config();
const app = new App();
const [m1, m2, m3] = Host.fromLab(app);
const ca = new CertificateAuthority(app, "registry-ca", { commonName: config.get("caName") ?? "drove integration registry CA" });
const registry = new Registry(m1, "registry", { users: { puller: config.requireSecret("password") }, ca });
for (const h of [m1, m2, m3]) registry.grantPull(h);

const image = config.get("image");
if (image) {
  const runtimes = [ContainerRuntime.podman(m1), ContainerRuntime.docker(m2), ContainerRuntime.systemd(m3)];
  for (const rt of runtimes) rt.addContainer("web", { image: `${registry.endpoint}/${image}`, ports: [{ host: 8080, container: 8080 }] });
}

export const endpoint = registry.endpoint;
app.synth();
