import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { installSection, parseUnitFile, renderUnitFile, unitNameProblem, unitSectionsProblems, unitTextProblems, type UnitSections } from "./unit-file";

describe("renderUnitFile", () => {
  it("renders sections and keys in the order given, a blank line between sections", () => {
    // given
    const sections: UnitSections = {
      Unit: { Description: "Says hello", After: "network-online.target" },
      Service: { Type: "exec", ExecStart: "/bin/sh -c 'while true; do date > /run/hello.out; sleep 1; done'" },
      Install: { WantedBy: "multi-user.target" },
    };

    // when
    const text = renderUnitFile(sections);

    // then
    assert.equal(
      text,
      [
        "[Unit]",
        "Description=Says hello",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        "ExecStart=/bin/sh -c 'while true; do date > /run/hello.out; sleep 1; done'",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n"),
    );
  });

  it("keeps the caller's order, even when it is not the usual one", () => {
    // given
    const sections: UnitSections = { Install: { WantedBy: "timers.target" }, Timer: { OnCalendar: "daily", Persistent: true } };

    // when
    const text = renderUnitFile(sections);

    // then
    assert.equal(text, "[Install]\nWantedBy=timers.target\n\n[Timer]\nOnCalendar=daily\nPersistent=yes\n");
  });

  it("renders a list as the key repeated, an empty string as a reset, booleans as yes/no, numbers as written", () => {
    // given
    const sections: UnitSections = {
      Service: {
        ExecStart: ["", "/usr/bin/app --port 8080"],
        Environment: ["A=1", "B=two words"],
        RemainAfterExit: false,
        NoNewPrivileges: true,
        LimitNOFILE: 65536,
        RestartSec: 0.5,
      },
    };

    // when
    const text = renderUnitFile(sections);

    // then
    assert.equal(
      text,
      "[Service]\nExecStart=\nExecStart=/usr/bin/app --port 8080\nEnvironment=A=1\nEnvironment=B=two words\nRemainAfterExit=no\nNoNewPrivileges=yes\nLimitNOFILE=65536\nRestartSec=0.5\n",
    );
  });

  it("leaves out undefined keys and renders an empty list as nothing", () => {
    // given
    const user: string | undefined = undefined;
    const sections: UnitSections = { Service: { User: user, ExecStartPre: [], ExecStart: "/usr/bin/app" } };

    // when
    const text = renderUnitFile(sections);

    // then
    assert.equal(text, "[Service]\nExecStart=/usr/bin/app\n");
  });

  it("renders what it parses back to the same keys", () => {
    // given
    const sections: UnitSections = { Unit: { Description: "x" }, Service: { ExecStart: ["/a", "/b"], Restart: "always" } };

    // when
    const parsed = parseUnitFile(renderUnitFile(sections));

    // then
    assert.deepEqual([...parsed.entries()], [
      ["Unit", [["Description", "x"]]],
      [
        "Service",
        [
          ["ExecStart", "/a"],
          ["ExecStart", "/b"],
          ["Restart", "always"],
        ],
      ],
    ]);
  });

  const bad: [string, UnitSections, RegExp][] = [
    ["a value with a line break (it would start a new key)", { Service: { ExecStart: "/bin/true\nUser=root" } }, /\[Service\] ExecStart must be one line/],
    ["a value ending in a backslash (it would continue the line)", { Service: { ExecStart: "/bin/true \\" } }, /must not end with a backslash/],
    ["a section name with a bracket", { "Service]\n[Unit": { A: "b" } }, /section name .* must be letters, digits and '-'/],
    ["a key with '='", { Service: { "Exec=Start": "x" } }, /key "Exec=Start" must be letters, digits, '-' and '_'/],
    ["an object as a value", { Service: { ExecStart: { cmd: "x" } as never } }, /\[Service\] ExecStart must be a string, a number or a boolean/],
    ["an infinite number", { Service: { RestartSec: Infinity } }, /must be a finite number/],
    ["no section at all", {}, /has no section/],
  ];
  for (const [name, sections, message] of bad) {
    it(`refuses ${name}, saying where`, () => {
      // when / then
      assert.throws(() => renderUnitFile(sections), message);
      assert.ok(unitSectionsProblems(sections).some((p) => message.test(p)));
    });
  }

  it("names every problem at once", () => {
    // given
    const sections: UnitSections = { Service: { "a b": "x", ExecStart: "1\n2" } };

    // when
    const problems = unitSectionsProblems(sections);

    // then
    assert.equal(problems.length, 2);
  });
});

describe("parseUnitFile", () => {
  it("drops comments and blank lines, joins continued lines, keeps repeated keys in order", () => {
    // given
    const text = "# a comment\n[Unit]\n; another\nDescription = spaced  \n\n[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\nExecStart=/bin/true\n";

    // when
    const parsed = parseUnitFile(text);

    // then
    assert.deepEqual(parsed.get("Unit"), [["Description", "spaced"]]);
    assert.deepEqual(parsed.get("Service"), [
      ["ExecStart", "/bin/sh -c  'echo hi'"],
      ["ExecStart", "/bin/true"],
    ]);
  });

  it("gives the [Install] lines for comparison, and none when there is no such section", () => {
    // when / then
    assert.deepEqual(installSection("[Install]\nWantedBy = multi-user.target\nAlias=hi.service\n"), ["WantedBy=multi-user.target", "Alias=hi.service"]);
    assert.deepEqual(installSection("[Service]\nExecStart=/bin/true\n"), []);
  });
});

describe("unitNameProblem", () => {
  for (const name of ["hello.service", "backup.timer", "app@blue.service", "docker.socket", "srv-data.mount", "my\\x2dapp.service", "a:b_c-d.e.target", "user.slice"]) {
    it(`accepts ${name}`, () => {
      // when / then
      assert.equal(unitNameProblem(name), undefined);
    });
  }

  for (const name of ["hello", "hello.conf", "hello.device", "hello.scope", "-.mount", ".service", "hello world.service", "a/b.service", "hello.service;reboot", "", "x".repeat(250) + ".service"]) {
    it(`refuses ${JSON.stringify(name.length > 30 ? name.slice(0, 10) + "..." : name)}, listing the suffixes`, () => {
      // when
      const problem = unitNameProblem(name);

      // then
      assert.match(problem ?? "", /^`name` must be a unit name like hello\.service: .*\.service, \.socket, \.timer, \.path, \.mount, \.automount, \.swap, \.target, \.slice/);
    });
  }

  it("refuses a template, naming an instance to use instead", () => {
    // when
    const problem = unitNameProblem("getty@.service");

    // then
    assert.equal(problem, '`name` "getty@.service" is a template, which systemd can neither enable nor start by itself; name an instance instead, like getty@1.service');
  });

  it("refuses what is not a string", () => {
    // when / then
    assert.match(unitNameProblem(42) ?? "", /but 42 was provided/);
  });
});

describe("unitTextProblems", () => {
  const SERVICE = "[Service]\nExecStart=/usr/bin/app\n";
  const INSTALL = "[Install]\nWantedBy=multi-user.target\n";

  it("accepts an enabled, active service with an [Install] section", () => {
    // when / then
    assert.deepEqual(unitTextProblems("app.service", SERVICE + INSTALL, true, true), []);
  });

  it("refuses enabled without an [Install] target, saying what to add or change", () => {
    // when
    const problems = unitTextProblems("app.service", SERVICE, true, true);

    // then
    assert.deepEqual(problems, [
      '`enabled` is true, but the unit has no [Install] section with WantedBy= (or RequiredBy=, Alias=), so systemd has nothing to enable; either add Install: { WantedBy: "multi-user.target" }, or set `enabled: false`',
    ]);
  });

  it("accepts a unit without [Install] when it is not to be enabled", () => {
    // when / then
    assert.deepEqual(unitTextProblems("app.service", SERVICE, false, true), []);
  });

  it("refuses an active oneshot service that would not stay active", () => {
    // when
    const problems = unitTextProblems("job.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n" + INSTALL, true, true);

    // then
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^`active` is true, but a Type=oneshot service without RemainAfterExit=yes .* either add RemainAfterExit=yes, or set `active: false`/);
  });

  it("accepts an active oneshot service with RemainAfterExit, and an inactive one without", () => {
    // when / then
    assert.deepEqual(unitTextProblems("job.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n" + INSTALL, true, true), []);
    assert.deepEqual(unitTextProblems("job.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n", false, false), []);
  });

  it("refuses text with no section at all", () => {
    // when / then
    assert.match(unitTextProblems("app.service", "ExecStart=/bin/true\n", false, false)[0], /has no \[Section\]/);
  });
});
