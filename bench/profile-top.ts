/**
 * Summarises a V8 CPU profile (from `node --cpu-prof`): the functions with the most self time, and
 * the total (self + callees) of those whose name or file matches a filter.
 *
 *   npx tsx bench/profile-top.ts artifacts/x.cpuprofile [count] [filter]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const count = Number(process.argv[3] ?? 30);
const filter = process.argv[4] ? new RegExp(process.argv[4]) : undefined;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const name = (n: Node) => {
  const file = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(packages|bench)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
};
const selfByName = new Map<string, number>();
for (const [id, t] of self) selfByName.set(name(byId.get(id)!), (selfByName.get(name(byId.get(id)!)) ?? 0) + t);
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1000).toFixed(0)} ms sampled\n\nself time:`);
for (const [n, t] of [...selfByName].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`${pct(t)}  ${n}`);

if (filter) {
  // Inclusive time of matching frames, counted once per sample even when recursive.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = name(byId.get(at)!);
      if (filter.test(key) && !seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
      }
    }
  });
  console.log(`\ntotal time (self + callees) of frames matching ${filter}:`);
  for (const [n, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`${pct(t)}  ${n}`);
}
