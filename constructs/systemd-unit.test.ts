import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Construct } from "constructs";
import { App } from "../src/app";
import { ValidationError } from "../src/errors";
import { Host } from "./host";
import { SystemdUnit, type SystemdUnitProps } from "./systemd-unit";
import { hostIn, messagesOf } from "./testing";

const HELLO = "[Service]\nExecStart=/usr/local/bin/hello\n\n[Install]\nWantedBy=multi-user.target\n";


const unitProps = (over: Partial<SystemdUnitProps> = {}): SystemdUnitProps => ({ name: "hello.service", content: HELLO, ...over });


describe("SystemdUnit props", () => {
  it("resolves defaults: enabled, active, the file in /etc/systemd/system", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const unit = host.addUnit("hello", unitProps());

    // then
    assert.ok(unit instanceof SystemdUnit);
    assert.equal(unit.node.path, "web1/hello");
    assert.equal(unit.host, host);
    assert.equal(unit.name, "hello.service");
    assert.equal(unit.path, "/etc/systemd/system/hello.service");
    assert.equal(unit.enabled, true);
    assert.equal(unit.active, true);
  });

  it("renders structured content to the unit text it sends", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const unit = host.addUnit("hello", {
      name: "hello.service",
      content: {
        Unit: { Description: "Says hello" },
        Service: { ExecStart: "/bin/sh -c 'date > /run/hello.out'", Environment: ["A=1", "B=2"], Restart: "always" },
        Install: { WantedBy: "multi-user.target" },
      },
    });

    // then
    assert.equal(
      unit._toSpec().props.content,
      "[Unit]\nDescription=Says hello\n\n[Service]\nExecStart=/bin/sh -c 'date > /run/hello.out'\nEnvironment=A=1\nEnvironment=B=2\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n",
    );
  });

  it("offers the rendering on its own", () => {
    // when
    const text = SystemdUnit.render({ Timer: { OnCalendar: ["Mon", "Fri"], Persistent: true } });

    // then
    assert.equal(text, "[Timer]\nOnCalendar=Mon\nOnCalendar=Fri\nPersistent=yes\n");
  });

  it("refuses a bad name, naming the construct and the suffixes", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addUnit("hello", unitProps({ name: "hello.conf" })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1\/hello: `name` must be a unit name like hello\.service: .* but "hello\.conf" was provided$/);
  });

  it("refuses structured content with a line break in a value, saying where", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addUnit("hello", unitProps({ content: { Service: { ExecStart: "/bin/true\nUser=root" }, Install: { WantedBy: "x.target" } } })));

    // then
    assert.deepEqual(messages, [
      'web1/hello: [Service] ExecStart must be one line: a line break would start a new key, so "/bin/true\\nUser=root" is refused',
    ]);
  });

  it("refuses enabled without an [Install] section at construction, before anything connects", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addUnit("hello", unitProps({ content: { Service: { ExecStart: "/bin/true" } } })));

    // then
    assert.equal(messages.length, 1);
    assert.match(messages[0], /^web1\/hello: `enabled` is true, but the unit has no \[Install\] section/);
  });

  it("accepts a unit without [Install] that is not to be enabled", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const unit = host.addUnit("hello", unitProps({ content: "[Service]\nExecStart=/bin/true\n", enabled: false }));

    // then
    assert.equal(unit.enabled, false);
  });

  it("refuses missing content, saying both forms", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));

    // when
    const messages = messagesOf(() => host.addUnit("hello", { name: "hello.service" } as SystemdUnitProps));

    // then
    assert.deepEqual(messages, ["web1/hello: `content` is required: the unit file's text, or its sections like { Unit: {...}, Service: {...}, Install: {...} }"]);
  });

  it("takes content that is known only later (an Output) as it is, leaving its checks to the provider", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    const content = pulumi.output("[Service]\nExecStart=/bin/true\n");

    // when
    const unit = host.addUnit("hello", unitProps({ content }));

    // then
    assert.equal(unit._toSpec().props.content, content);
  });

  it("throws when created outside a Host, saying how to create it", () => {
    // given
    const app = new App({ synthOut: "-" });

    // when
    const messages = messagesOf(() => new SystemdUnit(app, "hello", unitProps()));

    // then
    assert.deepEqual(messages, ["hello: a SystemdUnit must be created inside a Host (new SystemdUnit(host, ...) or host.addUnit(...))"]);
  });
});

describe("SystemdUnit validation across constructs", () => {
  it("reports one unit managed twice on a host, and a File at a unit's path", () => {
    // given
    const app = new App({ synthOut: "-" });
    const host = hostIn(app);
    host.addUnit("a", unitProps());
    new SystemdUnit(new Construct(host, "app"), "b", unitProps());
    host.addUnit("c", unitProps({ name: "other.service" }));
    host.addFile("f", { path: "/etc/systemd/system/other.service", content: HELLO });

    // when
    const errors = app.validate();

    // then
    assert.deepEqual(errors, [
      "web1/a: unit hello.service is also managed by web1/app/b; manage each unit once per host",
      "web1/app/b: unit hello.service is also managed by web1/a; manage each unit once per host",
      "web1/c: unit other.service is also managed by web1/f; manage each unit once per host",
    ]);
  });

  it("allows one unit on two hosts", () => {
    // given
    const app = new App({ synthOut: "-" });
    hostIn(app, "web1").addUnit("hello", unitProps());
    hostIn(app, "web2").addUnit("hello", unitProps());

    // when / then
    assert.deepEqual(app.validate(), []);
  });
});

describe("SystemdUnit spec", () => {
  it("renders what the provider needs", () => {
    // given
    const host = hostIn(new App({ synthOut: "-" }));
    const unit = host.addUnit("hello", unitProps({ enabled: false, active: false, content: "[Service]\nExecStart=/bin/true\n" }));

    // when
    const spec = unit._toSpec();

    // then
    assert.equal(spec.type, "drove:index:SystemdUnit");
    assert.equal(spec.parent, host);
    assert.deepEqual(spec.outputs, ["path", "sha256"]);
    const { connection, ...props } = spec.props;
    assert.ok(connection !== undefined, "the unit says how to reach its host");
    assert.deepEqual(props, { name: "hello.service", content: "[Service]\nExecStart=/bin/true\n", enabled: false, active: false });
  });
});
