// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by where the code lives
// (our src/ files, each node_modules package, node internals, GC, idle), as text for the bench.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  byFunction: { name: string; where: string; ms: number }[];
  byArea: { area: string; ms: number }[];
  /** Inclusive time (self + callees) of every function, not double-counting recursion. */
  inclusive: { name: string; where: string; ms: number }[];
}

export function analyseProfile(file: string): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
  }
  const fn = new Map<string, { name: string; where: string; ms: number }>();
  const area = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const e = fn.get(key) ?? { name: functionName || '(anonymous)', where, ms: 0 };
    e.ms += ms;
    fn.set(key, e);
    const a = areaOf(functionName, url);
    area.set(a, (area.get(a) ?? 0) + ms);
    totalMs += ms;
  }
  // Inclusive time: walk the call tree, charging each node's subtree to every distinct function on its stack.
  const inc = new Map<string, { name: string; where: string; ms: number }>();
  const parentOf = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  for (const [id, ms] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parentOf.get(cur)) {
      const { functionName, url, lineNumber } = byId.get(cur)!.callFrame;
      const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
      const key = `${functionName}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const e = inc.get(key) ?? { name: functionName || '(anonymous)', where, ms: 0 };
      e.ms += ms;
      inc.set(key, e);
    }
  }
  return {
    totalMs,
    inclusive: [...inc.values()].sort((a, b) => b.ms - a.ms),
    byFunction: [...fn.values()].sort((a, b) => b.ms - a.ms),
    byArea: [...area.entries()].map(([a, ms]) => ({ area: a, ms })).sort((a, b) => b.ms - a.ms),
  };
}

export function summariseProfile(file: string, top = 20): string {
  const s = analyseProfile(file);
  const busy = s.totalMs - (s.byArea.find((a) => a.area === '(idle)')?.ms ?? 0);
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1)}%`;
  const out = [`  ${s.totalMs.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy`, '  by area (self time):'];
  for (const a of s.byArea.slice(0, 16)) out.push(`    ${pct(a.ms).padStart(6)}  ${a.area}`);
  out.push('  top functions (self time):');
  for (const f of s.byFunction.slice(0, top)) out.push(`    ${pct(f.ms).padStart(6)}  ${f.name}  ${f.where}`);
  out.push('  recserve functions (inclusive time):');
  for (const f of s.inclusive.filter((x) => x.where.startsWith('dist/src/')).slice(0, top)) out.push(`    ${pct(f.ms).padStart(6)}  ${f.name}  ${f.where}`);
  return out.join('\n');
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 1);
  return url.replace(/^file:\/\//, '');
}

function areaOf(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 6);
  return url;
}

// `node dist/bench/lib/profile.js FILE.cpuprofile [top]` prints the same summary for any profile.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const f of process.argv.slice(2).filter((a) => a.endsWith('.cpuprofile'))) {
    process.stdout.write(`${f}:\n${summariseProfile(f, Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 30))}\n`);
  }
}
