/** The installed version of a dependency, and whether it is in a `~x.y.z` range (what the internals specs check). */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The version of the package `name` as installed (found from its entry point, whatever its `exports` allow). */
export function installedVersion(name: string): string {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) return pkg.version;
    } catch {
      /* no package.json here: look further up */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the package.json of ${name}`);
    dir = up;
  }
}

/** Whether `version` is in the tilde range `~major.minor.patch` (same major and minor, patch at least that). */
export function inTildeRange(version: string, range: string): boolean {
  const r = /^~(\d+)\.(\d+)\.(\d+)$/.exec(range);
  const v = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!r) throw new Error(`not a ~x.y.z range: ${range}`);
  if (!v) return false; // pre-releases and build tags are not proven
  return v[1] === r[1] && v[2] === r[2] && Number(v[3]) >= Number(r[3]);
}
