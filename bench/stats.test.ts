import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  bytes,
  connectionsTable,
  countAccepted,
  countChannelRequests,
  cpuTable,
  machineCpuTable,
  markdownTable,
  median,
  medians,
  pyinfraFoundChanges,
  ratio,
  rotation,
  stateBytes,
  timesTable,
  type Sample,
} from "./stats";

const sample = (tool: string, phase: Sample["phase"], seconds: number, over: Partial<Sample> = {}): Sample => ({
  tool,
  machines: 10,
  run: 0,
  phase,
  seconds,
  ok: true,
  ...over,
});

describe("median", () => {
  const cases: [number[], number][] = [
    [[5], 5],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[10, 10, 1], 10],
  ];
  for (const [xs, want] of cases) {
    test(`of ${JSON.stringify(xs)} is ${want}`, () => {
      // when / then
      assert.equal(median(xs), want);
    });
  }

  test("of an empty list is refused", () => {
    assert.throws(() => median([]), /empty/);
  });

  test("lies between the smallest and the largest value, whatever the order", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 20 }), (xs) => {
        const m = median(xs);
        return m >= Math.min(...xs) && m <= Math.max(...xs) && m === median([...xs].reverse());
      }),
    );
  });
});

describe("ratio against drove", () => {
  const cases: [number | undefined, number | undefined, string][] = [
    [30, 10, "3.0x"],
    [10, 10, "1.0x"],
    [5, 10, "0.50x"],
    [250, 10, "25x"],
    [undefined, 10, "n/a"],
    [10, undefined, "n/a"],
    [10, 0, "n/a"],
  ];
  for (const [x, base, want] of cases) {
    test(`${x} over ${base} is ${want}`, () => {
      assert.equal(ratio(x, base), want);
    });
  }
});

describe("bytes", () => {
  test("renders B, KB and MB", () => {
    assert.deepEqual([bytes(512), bytes(2048), bytes(3 * 1024 * 1024), bytes(undefined)], ["512 B", "2.0 KB", "3 MB", "n/a"]);
  });
});

describe("the tables", () => {
  test("given two runs per tool, the times table shows each tool's medians and its ratio against drove", () => {
    // given
    const samples = [
      sample("drove", "cold", 10),
      sample("drove", "cold", 20, { run: 1 }),
      sample("drove", "noChange", 2),
      sample("drove", "change", 3),
      sample("Ansible", "cold", 60),
      sample("Ansible", "noChange", 8),
      sample("Ansible", "change", 9),
    ];
    // when
    const table = timesTable(samples);
    // then
    const lines = table.split("\n");
    assert.equal(lines[0], "| tool | cold apply | vs drove | no-change run | vs drove | one-line change | vs drove | phases ok |");
    assert.equal(lines[2], "| drove | 15.0 s | 1.0x | 2.0 s | 1.0x | 3.0 s | 1.0x | 4/4 |");
    assert.equal(lines[3], "| Ansible | 60.0 s | 4.0x | 8.0 s | 4.0x | 9.0 s | 3.0x | 3/3 |");
  });

  test("a failed sample counts in 'phases ok' but not in the median", () => {
    // given
    const samples = [sample("pyinfra", "cold", 1, { ok: false }), sample("pyinfra", "cold", 7, { run: 1 })];
    // when
    const m = medians(samples);
    // then
    assert.equal(m.get("pyinfra")?.cold, 7);
    assert.match(timesTable(samples), /\| pyinfra \| 7\.0 s \| n\/a \|.*\| 1\/2 \|/);
  });

  test("connections are shown per host", () => {
    // given: 10 machines, 10 logins in the no-change run
    const samples = [sample("drove", "noChange", 2, { connections: 10 })];
    // when / then
    assert.match(connectionsTable(samples), /\| drove \| n\/a \| 1 \| n\/a \|/);
  });

  test("CPU seconds of the no-change run are shown per process group, '-' where a group had none", () => {
    // given
    const samples = [
      sample("drove", "noChange", 6, { cpu: { pulumi: 2, provider: 3, program: 1, all: 6 } }),
      sample("drove", "noChange", 8, { run: 1, cpu: { pulumi: 4, provider: 5, program: 1, all: 10 } }),
      sample("pyinfra", "noChange", 2, { cpu: { other: 1.5, all: 1.5 } }),
    ];
    // when
    const lines = cpuTable(samples).split("\n");
    // then
    assert.equal(lines[2], "| drove | 3.0 s | 4.0 s | 1.0 s | 8.0 s |");
    assert.equal(lines[3], "| pyinfra | - | - | - | 1.5 s |");
  });

  test("the machines' CPU is shown per phase as a median, in all and per machine, '-' where a phase failed", () => {
    // given
    const samples = [
      sample("drove", "noChange", 3, { machineCpu: 1.0 }),
      sample("drove", "noChange", 3, { run: 1, machineCpu: 1.2 }),
      sample("drove", "noChange", 3, { run: 2, machineCpu: 3.0 }),
      sample("drove", "cold", 20, { machineCpu: 30 }),
      sample("drove", "change", 3, { machineCpu: 2, ok: false }),
    ];
    // when
    const lines = machineCpuTable(samples).split("\n");
    // then
    assert.equal(lines[2], "| drove | 30.00 s (3000 ms per machine) | 1.20 s (120 ms per machine) | - |");
  });

  test("a pipe in a cell is escaped", () => {
    assert.equal(markdownTable(["a"], [["x|y"]]).split("\n")[2], "| x\\|y |");
  });
});

describe("stateBytes", () => {
  test("given a stack of three resources, reports the bytes per resource and the largest one", () => {
    // given
    const text = JSON.stringify({
      checkpoint: {
        latest: {
          resources: [
            { type: "pulumi:pulumi:Stack", urn: "a" },
            { type: "pulumi:providers:drove", urn: "b" },
            { type: "drove:index:File", urn: "c", outputs: { content: "x".repeat(1000) } },
          ],
        },
      },
    });
    // when
    const s = stateBytes(text);
    // then
    assert.equal(s.resources, 3);
    assert.equal(s.total, Buffer.byteLength(text));
    assert.equal(s.perResource, s.total / 3);
    assert.equal(s.largestType, "drove:index:File");
    assert.ok(s.largest > 1000);
  });
});

describe("sshd log counting", () => {
  const log = [
    "Accepted publickey for root from 10.213.44.1 port 4000 ssh2: ED25519 SHA256:x",
    "debug1: server_input_channel_req: channel 0 request exec reply 1",
    "debug1: server_input_channel_req: channel 1 request env reply 0",
    "debug1: server_input_channel_req: channel 1 request exec reply 1",
    "debug1: server_input_channel_req: channel 2 request subsystem reply 1",
    "Accepted publickey for root from 10.213.44.1 port 4002 ssh2: ED25519 SHA256:x",
    "Failed publickey for root from 10.213.44.1",
  ].join("\n");

  test("counts logins, not failed attempts", () => {
    assert.equal(countAccepted(log), 2);
  });

  test("counts exec and subsystem requests, not env", () => {
    assert.equal(countChannelRequests(log), 3);
  });
});

describe("rotation", () => {
  test("each run starts with the next tool", () => {
    const tools = ["drove", "Ansible", "pyinfra", "command"];
    assert.deepEqual(rotation(tools, 0), tools);
    assert.deepEqual(rotation(tools, 1), ["Ansible", "pyinfra", "command", "drove"]);
    assert.deepEqual(rotation(tools, 4), tools);
  });

  test("keeps every tool exactly once", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string(), { maxLength: 8 }), fc.nat(100), (tools, run) => {
        const r = rotation(tools, run);
        return r.length === tools.length && [...r].sort().join("\0") === [...tools].sort().join("\0");
      }),
    );
  });
});

describe("pyinfraFoundChanges", () => {
  const table = (rows: string[]) =>
    ["--> Detected changes:", "    Operation                                   Change             Conditional Change   ", ...rows, "", "    Detected changes may not include every change"].join("\n");

  test("given only conditional changes, finds none", () => {
    const out = table([
      "    the file                                    -                  -                    ",
      "    restart the unit when its file changed      -                  1 (10.213.44.11)     ",
    ]);
    assert.equal(pyinfraFoundChanges(out), false);
  });

  test("given an operation with a change, finds it", () => {
    const out = table(["    the container                               1 (10.213.44.11)   -                    "]);
    assert.equal(pyinfraFoundChanges(out), true);
  });

  test("given no change table at all (pyinfra failed early), does not claim a clean run", () => {
    assert.equal(pyinfraFoundChanges("--> pyinfra error: No hosts remaining!"), true);
  });
});
