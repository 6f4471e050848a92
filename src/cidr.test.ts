import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isCidr, overlaps, parseCidr, type Cidr } from "./cidr";

const block = (t: string): Cidr => {
  const c = parseCidr(t);
  assert.ok(isCidr(c), t);
  return c;
};

describe("parseCidr", () => {
  for (const [text, error] of [
    ["10.1.0.0/16", undefined],
    ["fd00:10::/64", undefined],
    ["0.0.0.0/0", undefined],
    ["10.1.2.3/16", "10.1.2.3/16 has host bits set: write it as 10.1.0.0/16"],
    ["fd00:10::1/64", "fd00:10::1/64 has host bits set: write it as fd00:10::/64"],
    ["10.1.0.0", 'must be a CIDR block like 10.10.0.0/24, but "10.1.0.0" was provided'],
    ["10.1.0.0/33", 'must be a CIDR block like 10.10.0.0/24, but "10.1.0.0/33" was provided'],
    ["256.1.0.0/16", 'must be a CIDR block like 10.10.0.0/24, but "256.1.0.0/16" was provided'],
    ["web/24", 'must be a CIDR block like 10.10.0.0/24, but "web/24" was provided'],
  ] as const) {
    it(`${text} -> ${error ?? "a block"}`, () => {
      const c = parseCidr(text);
      if (error === undefined) assert.ok(isCidr(c));
      else assert.deepEqual(c, { error });
    });
  }
});

describe("overlaps", () => {
  it("nested and equal blocks overlap; neighbours and other families do not", () => {
    assert.equal(overlaps(block("10.1.0.0/16"), block("10.1.5.0/24")), true);
    assert.equal(overlaps(block("10.1.0.0/24"), block("10.1.0.0/24")), true);
    assert.equal(overlaps(block("10.1.0.0/24"), block("10.1.1.0/24")), false);
    assert.equal(overlaps(block("0.0.0.0/0"), block("fd00::/8")), false);
  });

  it("is symmetric, and a block overlaps every block inside it (property)", () => {
    const v4 = fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 })).map(([n, p]) => {
      const masked = p === 0 ? 0 : (n >>> (32 - p)) << (32 - p) >>> 0;
      return block(`${[24, 16, 8, 0].map((s) => (masked >>> s) & 255).join(".")}/${p}`);
    });
    fc.assert(fc.property(v4, v4, (a, b) => overlaps(a, b) === overlaps(b, a) && overlaps(a, a)));
    fc.assert(fc.property(v4, fc.integer({ min: 0, max: 32 }), (a, extra) => {
      const prefix = Number(a.text.split("/")[1]);
      const inner = block(`${a.text.split("/")[0]}/${Math.min(32, prefix + extra)}`);
      return overlaps(a, inner);
    }));
  });
});
