/**
 * Integration program: hostile values that drove's constructs accepted, all
 * on the lab's first machine in one run, read from stack config:
 *   cases   base64 of a JSON object (base64, so NUL bytes and line breaks
 *           survive the command line that sets it):
 *     files       [{ path, content, mode?, owner?, group? }]
 *     dirs        [{ path, mode?, owner?, group? }]
 *     units       [{ name, content (text or sections), enabled, active }]
 *     image       the image every container runs
 *     containers  [{ name, env, labels, command? }]
 */
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host, type UnitSections } from "../../src";

export interface HostileCases {
  readonly files: readonly { path: string; content: string; mode?: string; owner?: string; group?: string }[];
  readonly dirs: readonly { path: string; mode?: string; owner?: string; group?: string }[];
  readonly units: readonly { name: string; content: string | UnitSections; enabled: boolean; active: boolean }[];
  readonly image: string;
  readonly containers: readonly { name: string; env: Record<string, string>; labels: Record<string, string>; command?: string[] }[];
}

const config = new pulumi.Config();
const cases = JSON.parse(Buffer.from(config.require("cases"), "base64").toString("utf8")) as HostileCases;
const app = new App();
const [host] = Host.fromLab(app);
cases.files.forEach((f, i) => host.addFile(`file${i}`, f));
cases.dirs.forEach((d, i) => host.addDirectory(`dir${i}`, d));
cases.units.forEach((u, i) => host.addUnit(`unit${i}`, u));
if (cases.containers.length) {
  const docker = ContainerRuntime.docker(host);
  cases.containers.forEach((c, i) => docker.addContainer(`container${i}`, { image: cases.image, restart: "no", ...c }));
}
app.synth();
