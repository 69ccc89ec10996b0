/**
 * Summarise V8 CPU profiles (`node --cpu-prof`, as `npm run bench -- --profile` writes them): where the time of a
 * process went, by function (self time) and by package / source folder.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--focus REGEX] [--skip-ms MS]
 *
 * --skip-ms: leave out the first MS of the process's life (start-up, module loading).
 * --focus: also list the inclusive time (self + callees) of the functions whose name/location match REGEX.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** node_modules/<pkg>, dist/<folder>, node:internal, or the file. */
function area(url: string): string {
  if (!url) return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return url.replace(/^node:internal\/([^/]+).*$/, 'node:$1');
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `msgflo-ts/${path.dirname(dist[1]!)}`;
  return path.basename(url);
}

function main(): void {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string' }, focus: { type: 'string' }, 'skip-ms': { type: 'string' } },
    allowPositionals: true,
  });
  const skipUs = Number(values['skip-ms'] ?? 0) * 1000;
  const top = Number(values.top ?? 25);
  for (const file of positionals) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    let at = 0;
    p.samples.forEach((id, i) => {
      at += p.timeDeltas[i] ?? 0;
      if (at >= skipUs) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const idle = [...self.entries()].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
    const busy = total - idle;
    const fns = new Map<string, number>();
    const areas = new Map<string, number>();
    for (const [id, t] of self) {
      const f = byId.get(id)!.callFrame;
      if (f.functionName === '(idle)') continue;
      const key = `${f.functionName || '(anonymous)'}  ${f.url ? `${area(f.url)}:${path.basename(f.url)}:${f.lineNumber + 1}` : ''}`;
      fns.set(key, (fns.get(key) ?? 0) + t);
      areas.set(area(f.url), (areas.get(area(f.url)) ?? 0) + t);
    }
    // Inclusive time: a function's self time plus everything it called (counted once per stack, even if recursive).
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const keyOf = (id: number) => {
      const f = byId.get(id)!.callFrame;
      return `${f.functionName || '(anonymous)'}  ${f.url ? `${area(f.url)}:${path.basename(f.url)}:${f.lineNumber + 1}` : ''}`;
    };
    const inclusive = new Map<string, number>();
    for (const [id, t] of self) {
      if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        if (!f.url) continue;
        const k = keyOf(cur);
        if (seen.has(k)) continue;
        seen.add(k);
        inclusive.set(k, (inclusive.get(k) ?? 0) + t);
      }
    }
    const pct = (t: number) => `${((t / busy) * 100).toFixed(1).padStart(5)}%`;
    console.log(`${file}\n  busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled`);
    console.log('  by area (self time):');
    for (const [k, t] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${pct(t)}  ${k}`);
    console.log('  by function (self time):');
    for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(t)}  ${k}`);
    if (values.focus) {
      const re = new RegExp(values.focus);
      console.log(`  inclusive time of functions matching ${re}:`);
      for (const [k, t] of [...inclusive].filter(([k]) => re.test(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${pct(t)}  ${k}`);
    }
  }
}

main();
