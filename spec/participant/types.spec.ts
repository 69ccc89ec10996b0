import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/cli.js';

const run = promisify(execFile);

/** Compile one file with the project's strict settings; resolves to tsc's diagnostics (empty when it compiles). */
async function compile(file: string): Promise<string[]> {
  const tsc = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
  const args = ['--ignoreConfig', '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', file];
  try {
    await run(tsc, args, { cwd: REPO_ROOT });
    return [];
  } catch (err) {
    const out = String((err as { stdout?: string }).stdout ?? '');
    return out.split('\n').filter((l) => l.includes('error TS'));
  }
}

describe('typed ports (compile-time)', function () {
  this.timeout(60_000);

  it('refuses a send to an undeclared outport, in the statechart form as in the function form', async () => {
    const source = await readFile(path.join(REPO_ROOT, 'spec/participant/types/ports.typecheck.ts'), 'utf8');
    assert.deepEqual(await compile(path.join(REPO_ROOT, 'spec/participant/types/ports.typecheck.ts')), [], 'the file compiles with its @ts-expect-error lines');
    // Without the @ts-expect-error comments, each marked line is an error naming the bad port.
    await mkdir(path.join(REPO_ROOT, '.tmp'), { recursive: true });
    const dir = await mkdtemp(path.join(REPO_ROOT, '.tmp', 'types-'));
    try {
      const bare = path.join(dir, 'bare.ts');
      await writeFile(bare, source.replace(/^\s*\/\/ @ts-expect-error.*$/gm, '').replaceAll("'../../../src/", "'../../src/"));
      const errors = await compile(bare);
      assert.equal(errors.length, 3, errors.join('\n'));
      assert.ok(errors.some((e) => /'"outt"' is not assignable to parameter of type '"log" \| "out"'/.test(e)));
      assert.ok(errors.some((e) => /'"nope"' is not assignable/.test(e)));
      assert.ok(errors.some((e) => /'"outt"' is not assignable to parameter of type '"out"'/.test(e)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
