import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/procfile.js';
import type { CliIO } from '../../src/cli/io.js';

const cwd = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'library');
const P = (file: string) => path.join('participants', file);

async function run(argv: string[], dir = cwd): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: {},
    cwd: dir,
    signal: new AbortController().signal,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** The argv /bin/sh gives a command line (as Heroku/foreman run Procfile commands). */
function shellArgv(line: string): string[] {
  const out = execFileSync('sh', ['-c', `set -f; exec "$0" -e 'process.stdout.write(JSON.stringify(process.argv.slice(1)))' -- ${line}`, process.execPath]);
  return JSON.parse(out.toString()) as string[];
}

describe('msgflo-procfile', () => {
  it('prints "role: command" for every participant node, not for routing nodes', async () => {
    const { code, stdout, stderr } = await run(['graphs/app.fbp']);
    assert.equal(stderr, '');
    assert.equal(code, 0);
    assert.equal(
      stdout,
      [
        `repeater: msgflo-participant --name repeater ${P('Repeat.js')}`,
        `worker: python3 -u ${P('Worker.py')} worker`,
        `printer: msgflo-participant --name printer ${P('Print.ts')}`,
        `sub: noflo-runtime-msgflo --name sub --graph Sub --iips '{"config":{"greeting":"hello world","who":"it'\\''s me"}}'`,
        '',
      ].join('\n'),
    );
  });

  it('quotes commands so that a shell gets the exact argv, #IIPS JSON as one argument', async () => {
    const { stdout } = await run(['graphs/app.fbp']);
    const sub = stdout.split('\n').find((l) => l.startsWith('sub: '))!;
    const argv = shellArgv(sub.slice('sub: '.length));
    assert.equal(argv.length, 7);
    assert.deepEqual(JSON.parse(argv[6]!), { config: { greeting: 'hello world', who: "it's me" } });
    const repeater = stdout.split('\n')[0]!;
    assert.deepEqual(shellArgv(repeater.slice('repeater: '.length)), ['msgflo-participant', '--name', 'repeater', P('Repeat.js')]);
  });

  it('leaves out --ignore roles (repeatable or comma-separated) and appends --include lines', async () => {
    const { code, stdout, stderr } = await run([
      'graphs/app.fbp',
      '--ignore',
      'worker,printer',
      '--ignore=sub',
      '--include',
      'web: npm start',
      '--include',
      'release: ./migrate',
    ]);
    assert.equal(code, 0);
    assert.equal(stderr, '');
    assert.equal(stdout, `repeater: msgflo-participant --name repeater ${P('Repeat.js')}\nweb: npm start\nrelease: ./migrate\n`);
  });

  it('warns about an --ignore role the graph does not have', async () => {
    const { code, stderr } = await run(['graphs/app.fbp', '--ignore', 'nobody']);
    assert.equal(code, 0);
    assert.match(stderr, /warning: --ignore nobody: the graph has no node 'nobody'/);
  });

  it('uses --library and --componentdir (or --components, as in msgflo)', async () => {
    const top = await run(['graphs/app.fbp', '--library', 'toplevel.json', '--ignore', 'sub']);
    assert.equal(top.code, 0, top.stderr);
    assert.equal(
      top.stdout,
      [`repeater: my-repeat repeater`, `worker: msgflo-python ${P('Worker.py')} worker`, `printer: msgflo-participant --name printer ${P('Print.ts')}`, ''].join('\n'),
    );
    const noDir = await run(['graphs/app.fbp', '--library', 'toplevel.json', '--components', 'nowhere']);
    assert.equal(noDir.code, 1);
    assert.match(noDir.stderr, /Unknown component 'Worker' \(used by node 'worker'\)\. Known components: Repeat/);
    const same = await run(['graphs/app.fbp', '--componentdir', 'a', '--components', 'b']);
    assert.equal(same.code, 2);
  });

  it('fails with the error code, message and hint for an unknown component', async () => {
    const { code, stdout, stderr } = await run(['graphs/unknown.fbp']);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /^msgflo-procfile: MSGFLO_ERR_UNKNOWN_COMPONENT: Unknown component 'Mystery' \(used by node 'mystery'\)\. Known components: Bulb, Custom, /);
    assert.match(stderr, /→ Add it to "msgflo.components"/);
  });

  it('fails for a missing, malformed or invalid graph', async () => {
    const missing = await run(['graphs/nope.fbp']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /MSGFLO_ERR_GRAPH_NOT_FOUND: Cannot read graph file '.*nope\.fbp'/);

    const malformed = await run([path.join('..', 'graphs', 'malformed.fbp')]);
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /MSGFLO_ERR_GRAPH_PARSE: .*malformed\.fbp:3:13: Expected/);

    const invalid = await run([path.join('..', 'graphs', 'invalid.fbp')]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /MSGFLO_ERR_GRAPH_INVALID: .*invalid graph:\n {2}- node 'b' has no component/);
  });

  it('fails for an invalid library', async () => {
    const { code, stderr } = await run(['graphs/app.fbp', '--library', 'broken.json']);
    assert.equal(code, 1);
    assert.match(stderr, /MSGFLO_ERR_LIBRARY_INVALID: .*invalid JSON at line 5, column 7/);
  });

  it('prints usage for --help and returns 0', async () => {
    const { code, stdout } = await run(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: msgflo-procfile GRAPH/);
  });

  it('returns 2 with a message for bad usage', async () => {
    for (const argv of [[], ['a.fbp', 'b.fbp'], ['a.fbp', '--bogus'], ['a.fbp', '--library']]) {
      const { code, stdout, stderr } = await run(argv);
      assert.equal(code, 2, argv.join(' '));
      assert.equal(stdout, '');
      assert.match(stderr, /^msgflo-procfile: .*\n\nUsage: msgflo-procfile/s);
    }
  });
});
