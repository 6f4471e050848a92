/**
 * `node --import tsx bench/trace.ts <file>`: sums up a DROVE_TRACE timeline
 * (src/trace.ts): per process, when it started and ended relative to the
 * first event, and per kind of call how many, their total and longest time,
 * and the span from the first begin to the last end.
 */
import { readFileSync } from "node:fs";

const lines = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => {
  const [t, who, ...rest] = l.split(" ");
  return { t: Number(t), who, what: rest.join(" ") };
});
const t0 = Math.min(...lines.map((l) => l.t));
const rel = (t: number) => `${((t - t0) / 1000).toFixed(2)} s`;
const byWho = new Map<string, typeof lines>();
for (const l of lines) byWho.set(l.who, [...(byWho.get(l.who) ?? []), l]);
for (const [who, ls] of byWho) {
  console.log(`${who}: ${rel(ls[0].t)} .. ${rel(ls[ls.length - 1].t)}`);
  for (const l of ls.filter((x) => !/^(begin|end) /.test(x.what))) console.log(`  ${rel(l.t)} ${l.what}`);
  const groups = new Map<string, { n: number; total: number; max: number; first: number; last: number }>();
  for (const l of ls) {
    const m = /^end (\S+) (\S+).* (\d+)$/.exec(l.what);
    if (!m) continue;
    const key = m[1] === "ssh" || m[1] === "lock" ? `${m[1]} ${m[2]}` : `${m[1]} ${m[2].split("::")[0]}`;
    const ms = Number(m[3]);
    const g = groups.get(key) ?? { n: 0, total: 0, max: 0, first: Infinity, last: 0 };
    g.n++;
    g.total += ms;
    g.max = Math.max(g.max, ms);
    g.first = Math.min(g.first, l.t - ms);
    g.last = Math.max(g.last, l.t);
    groups.set(key, g);
  }
  for (const [k, g] of [...groups].sort((a, b) => a[1].first - b[1].first)) {
    console.log(`  ${k.padEnd(40)} ${String(g.n).padStart(4)} calls, ${rel(g.first)} .. ${rel(g.last)}, mean ${(g.total / g.n).toFixed(0)} ms, max ${g.max} ms`);
  }
}
