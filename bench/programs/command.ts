/**
 * The benchmark workload with `@pulumi/command`: one `remote.Command` per
 * step per machine, as its users write it (create, and delete to undo).
 * Config: `content` (the file), `image` (digest-pinned).
 *
 * With `noop` set to N instead, the program declares N `local.Command`s that
 * run nothing: the Pulumi engine's own cost per resource, with no machine
 * behind it (the bound under every Pulumi-based tool's figures).
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { loadInventory } from "../../src/inventory";
import { quote } from "../../src/quote";
import { WORKLOAD } from "../workload";

const config = new pulumi.Config();
const noop = config.getNumber("noop");
if (noop !== undefined) {
  for (let i = 0; i < noop; i++) new command.local.Command(`noop${i}`, { triggers: ["noop"] });
} else {
  const image = config.require("image");
  const content = config.require("content");
  const file = quote(WORKLOAD.filePath);
  const unit = quote(WORKLOAD.unitName);
  const unitPath = quote(`/etc/systemd/system/${WORKLOAD.unitName}`);
  const name = quote(WORKLOAD.containerName);
  for (const m of loadInventory().machines) {
    const connection = {
      host: m.address,
      port: m.port,
      user: m.user,
      privateKey: pulumi.secret(readFileSync(m.privateKeyPath, "utf8")),
    };
    new command.remote.Command(`${m.name}-file`, {
      connection,
      create: `cat > ${file}.tmp && chmod ${WORKLOAD.fileMode} ${file}.tmp && mv ${file}.tmp ${file}`,
      stdin: content,
      delete: `rm -f ${file}`,
    });
    new command.remote.Command(`${m.name}-package`, {
      connection,
      create: `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${quote(WORKLOAD.package)}`,
      delete: `DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq ${quote(WORKLOAD.package)}`,
    });
    new command.remote.Command(`${m.name}-unit`, {
      connection,
      create: `cat > ${unitPath} && systemctl daemon-reload && systemctl enable --now ${unit}`,
      stdin: WORKLOAD.unitText,
      delete: `systemctl disable --now ${unit}; rm -f ${unitPath}; systemctl daemon-reload`,
    });
    new command.remote.Command(`${m.name}-container`, {
      connection,
      create: `systemctl enable --now docker.service && docker run -d --name ${name} --restart unless-stopped -p ${WORKLOAD.port}:8080 ${quote(image)}`,
      delete: `docker rm -f ${name}`,
    });
  }
}
