/**
 * The package where its users install it: `npm pack` of this repository (its `prepare` builds dist/ from the
 * sources), installed into a fresh project outside the repository (in os.tmpdir()), as docs/own-project.md
 * tells a newcomer to do. The project's participants, graph and package.json "msgflo" section are the code
 * blocks of that guide, so the guide is run as written:
 * - the tarball holds dist/ (code and declarations), bin/ and participants/, not spec/, bench/ or src/;
 * - the public API imports from the project, and every bin answers --help (`msgflo` through npx);
 * - the shipped declarations type-check the guide's TypeScript participant and reject a send to a port it
 *   does not have;
 * - `msgflo --graph` runs the guide's network (its own .js and .ts participants, a component of its library and
 *   the built-in core/Repeat from node_modules/msgflo-ts) on the embedded broker, and SIGTERM stops it all.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILTIN_COMPONENTS } from '../../src/coordinator/library.js';
import { REPO_ROOT, processAlive, runCli, startCli, stopAllClis } from '../helpers/cli.js';

const GUIDE = path.join(REPO_ROOT, 'docs', 'own-project.md');
const GRAPH = 'graphs/main.fbp';
/** What the guide's sink (role `log`) prints for each tick, as msgflo forwards it: `log | 3: TICK 3`. */
const LOGGED_TICK = /^log \| (\d+): TICK \1$/m;

interface PackedFile {
  path: string;
}

/** The environment for npm: without the npm_* variables of an `npm test` that runs this spec. */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^npm_/i.test(key) || key === 'INIT_CWD') delete env[key];
  delete env.MSGFLO_BROKER;
  return env;
}

/** Run a command to completion; rejects with its output when it fails or outlives `timeoutMs`. */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env: npmEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n--- stdout:\n${stdout}\n--- stderr:\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The guide's code blocks: whole files (`<!-- file: PATH -->`) and what to merge into package.json. */
function readGuide(): { files: Map<string, string>; packageJson: Record<string, unknown> } {
  const text = readFileSync(GUIDE, 'utf8');
  const files = new Map<string, string>();
  let packageJson: Record<string, unknown> = {};
  for (const [, kind, file, body] of text.matchAll(/<!-- (file|merge into): (\S+) -->\n```\w*\n([\s\S]*?)```/g)) {
    if (kind === 'file') files.set(file!, body!);
    else if (file === 'package.json') packageJson = JSON.parse(body!) as Record<string, unknown>;
    else throw new Error(`${GUIDE}: can only merge into package.json, not ${file}`);
  }
  return { files, packageJson };
}

describe('package: npm pack, installed into a project of its own', function () {
  // Packing (a fresh build) and installing take 20-60 s on a busy machine; the cases then take a few seconds.
  this.timeout(60_000);

  let tmp: string;
  let project: string;
  let packed: PackedFile[];
  const guide = readGuide();

  before(async function () {
    this.timeout(240_000);
    tmp = mkdtempSync(path.join(tmpdir(), 'msgflo-ts-install-'));
    const fromRepo = path.relative(REPO_ROOT, tmp);
    assert.ok(fromRepo.startsWith('..') || path.isAbsolute(fromRepo), `${tmp} is inside the repository`);
    const [pack] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', tmp], REPO_ROOT, 120_000)) as Array<{
      filename: string;
      files: PackedFile[];
    }>;
    packed = pack!.files;
    project = path.join(tmp, 'my-flows');
    mkdirSync(project);
    await run('npm', ['init', '-y'], project, 30_000);
    await run('npm', ['install', path.join(tmp, pack!.filename), '--prefer-offline', '--no-audit', '--no-fund'], project, 180_000);
    const manifest = JSON.parse(readFileSync(path.join(project, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ ...manifest, ...guide.packageJson }, null, 2)}\n`);
    for (const [file, body] of guide.files) {
      mkdirSync(path.dirname(path.join(project, file)), { recursive: true });
      writeFileSync(path.join(project, file), body);
    }
  });

  afterEach(() => stopAllClis('SIGTERM'));
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the guide gives participants in .js and .ts, the graph and a package.json "msgflo" section', () => {
    const files = [...guide.files.keys()];
    assert.ok(files.some((f) => f.startsWith('participants/') && f.endsWith('.js')), files.join(', '));
    assert.ok(files.some((f) => f.startsWith('participants/') && f.endsWith('.ts')), files.join(', '));
    assert.ok(files.includes(GRAPH), files.join(', '));
    assert.equal(guide.packageJson.type, 'module');
    assert.ok(guide.packageJson.msgflo, 'a "msgflo" section');
  });

  it('the tarball holds the built code, its declarations, the bins and the built-in participants', () => {
    const paths = new Set(packed.map((f) => f.path));
    const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const wanted = [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/index.js',
      'dist/index.d.ts',
      ...Object.values(manifest.bin).map((b) => path.posix.normalize(b)),
      ...Object.values(BUILTIN_COMPONENTS).map((f) => `participants/${f}`),
    ];
    for (const p of wanted) assert.ok(paths.has(p), `${p} is missing from the tarball`);
    for (const p of paths) {
      if (p.startsWith('dist/') && p.endsWith('.js')) assert.ok(paths.has(p.replace(/\.js$/, '.d.ts')), `${p} has no declarations`);
    }
  });

  it('and no specs, benchmarks, sources, CI scripts or source maps (that would point at sources it lacks)', () => {
    const unwanted = packed.map((f) => f.path).filter((p) => /^(spec|bench|src|\.ci|graphs)\//.test(p) || p.endsWith('.map'));
    assert.deepEqual(unwanted, []);
    const installed = readFileSync(path.join(project, 'node_modules', 'msgflo-ts', 'dist', 'index.js'), 'utf8');
    assert.doesNotMatch(installed, /sourceMappingURL/);
  });

  it('the public API imports from the project, out of its node_modules', async () => {
    const script = `const m = await import('msgflo-ts');
      console.log(JSON.stringify({ url: import.meta.resolve('msgflo-ts'), types: Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v])) }));`;
    const out = JSON.parse(await run(process.execPath, ['--input-type=module', '-e', script], project, 20_000)) as {
      url: string;
      types: Record<string, string>;
    };
    assert.equal(out.url, pathToFileURL(path.join(project, 'node_modules', 'msgflo-ts', 'dist', 'index.js')).href);
    for (const name of ['defineParticipant', 'defineStatechartParticipant', 'Participant', 'connectTransport', 'MsgfloError']) {
      assert.equal(out.types[name], 'function', `export ${name}`);
    }
    assert.equal(out.types.ErrorCodes, 'object');
  });

  it('npx msgflo --help exits 0, and so does every other bin from node_modules/.bin', async () => {
    // --no: never fetch a package called msgflo from the registry when the local bin is missing.
    const help = await run('npx', ['--no', '--', 'msgflo', '--help'], project, 30_000);
    assert.match(help, /^Usage: msgflo \[options\]/);
    const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const others = Object.keys(manifest.bin).filter((b) => b !== 'msgflo');
    const results = await Promise.all(
      others.map((b) => runCli(path.join(project, 'node_modules', '.bin', b), ['--help'], { cwd: project, timeoutMs: 30_000 })),
    );
    others.forEach((b, i) => {
      assert.equal(results[i]!.code, 0, `${b} --help: ${results[i]!.stderr}`);
      assert.match(results[i]!.stdout, new RegExp(`^Usage: ${b} `), b);
    });
  });

  it("the shipped declarations type-check the guide's TypeScript participant, and reject a send to an unknown port", async () => {
    const typescriptFiles = [...guide.files.keys()].filter((f) => f.endsWith('.ts'));
    const source = guide.files.get(typescriptFiles[0]!)!;
    assert.match(source, /send\('out'/);
    // A copy with a typo in the port name, outside participants/ so that it is no component of the project.
    const typo = path.posix.join('typo', path.posix.basename(typescriptFiles[0]!));
    mkdirSync(path.join(project, 'typo'), { recursive: true });
    writeFileSync(path.join(project, typo), source.replace("send('out'", "send('outt'"));
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          // The project has no @types/node of its own: take the repository's, and only those.
          typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: [...typescriptFiles, typo],
      }),
    );
    const tsc = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
    const failure = await run(tsc, ['-p', 'tsconfig.json', '--pretty', 'false'], project, 60_000).then(
      (out) => assert.fail(`tsc accepted send('outt'):\n${out}`),
      (err: Error) => err.message,
    );
    // tsc prints one line per error: the typo's, and none in the guide's files or in the package's declarations.
    const errors = failure.split('\n').filter((l) => /error TS\d+/.test(l));
    assert.equal(errors.length, 1, failure);
    assert.match(errors[0]!, /^typo\/\w+\.ts\(\d+,\d+\): error TS2345: Argument of type '"outt"' is not assignable to parameter of type '"out"'/);
    rmSync(path.join(project, 'typo'), { recursive: true });
  });

  it("msgflo --graph runs the project's own participants and core/Repeat on the embedded broker; SIGTERM stops every process", async () => {
    // node_modules/.bin/msgflo is the link npm made; it runs the installed bin/msgflo.js.
    const msgflo = startCli(path.join(project, 'node_modules', '.bin', 'msgflo'), ['--graph', GRAPH, '--port', '0'], {
      cwd: project,
      env: { MSGFLO_BROKER: undefined },
    });
    await msgflo.waitForOutput(/started the embedded MQTT broker on mqtt:\/\/127\.0\.0\.1:\d+/);
    await msgflo.waitForOutput(LOGGED_TICK, { stream: 'stdout', timeoutMs: 45_000 });
    const started = [...msgflo.stdout.matchAll(/^started (\S+) \(pid (\d+)\): (.*)$/gm)];
    const commands = Object.fromEntries(started.map((m) => [m[1], m[3]]));
    assert.deepEqual(Object.keys(commands).sort(), ['counter', 'log', 'repeat', 'shout']);
    assert.match(commands.repeat!, /node_modules\/msgflo-ts\/participants\/Repeat\.js$/);
    assert.match(commands.shout!, /participants\/Shout\.ts$/);
    assert.match(commands.log!, /lib\/log\.js$/);

    const result = await msgflo.stop('SIGTERM', 15_000);
    assert.equal(result.signal, null, 'msgflo stopped within 15 s of SIGTERM');
    assert.equal(result.code, 0, result.stderr);
    for (const [, role, pid] of started) assert.ok(!processAlive(Number(pid)), `${role} (pid ${pid}) left running`);
  });
});
