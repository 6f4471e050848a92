/**
 * The benchmark workload in drove's own constructs, on every machine of the
 * lab's inventory. Config: `content` (the file), `image` (digest-pinned).
 */
import * as pulumi from "@pulumi/pulumi";
import { App, ContainerRuntime, Host } from "drove";
import { WORKLOAD } from "../workload";

const config = new pulumi.Config();
const app = new App();
for (const host of Host.fromLab(app)) {
  host.addFile("conf", { path: WORKLOAD.filePath, content: config.require("content"), mode: WORKLOAD.fileMode });
  host.addPackage(WORKLOAD.package);
  host.addUnit("unit", { name: WORKLOAD.unitName, content: WORKLOAD.unitText });
  ContainerRuntime.docker(host).addContainer(WORKLOAD.containerName, {
    image: config.require("image"),
    ports: [{ host: WORKLOAD.port, container: 8080 }],
    restart: "unless-stopped",
  });
}
app.synth();
