"""The benchmark workload for pyinfra 3, with its own operations (files, apt,
systemd, docker). Variables come from bench/tools.ts as JSON in the file named
by $DROVE_BENCH_VARS: file_path, file_mode, content, package, unit_name,
unit_text, container_name, image, port."""
import json
import os
from io import StringIO

from pyinfra.operations import apt, docker, files, systemd

v = json.load(open(os.environ["DROVE_BENCH_VARS"]))

files.put(
    name="the file",
    src=StringIO(v["content"]),
    dest=v["file_path"],
    mode=v["file_mode"],
)

apt.packages(
    name="the package",
    packages=[v["package"]],
    update=True,
    cache_time=3600,
)

unit = files.put(
    name="the unit file",
    src=StringIO(v["unit_text"]),
    dest="/etc/systemd/system/" + v["unit_name"],
    mode="0644",
)

systemd.daemon_reload(name="reload systemd when the unit file changed", _if=unit.did_change)

systemd.service(
    name="the unit, enabled and running",
    service=v["unit_name"],
    running=True,
    enabled=True,
)

systemd.service(
    name="restart the unit when its file changed",
    service=v["unit_name"],
    restarted=True,
    _if=unit.did_change,
)

systemd.service(
    name="Docker, enabled and running",
    service="docker.service",
    running=True,
    enabled=True,
)

docker.container(
    name="the container",
    container=v["container_name"],
    image=v["image"],
    ports=["%d:8080" % v["port"]],
    restart_policy="unless-stopped",
    present=True,
    start=True,
)
