/**
 * What the FBP runtime added to the coordinator, the launcher and the library: the IIP gate, isReady(), one
 * SIGTERM per stop, the built-in components.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Coordinator } from '../../src/coordinator/coordinator.js';
import { Launcher, type LauncherEvent } from '../../src/coordinator/launcher.js';
import { BUILTIN_DIR, loadLibrary } from '../../src/coordinator/library.js';
import { parseFbp } from '../../src/graph/fbp.js';
import type { ParticipantDefinition } from '../../src/participant/definition.js';
import { Participant } from '../../src/participant/participant.js';
import { connectTransport } from '../../src/transport/index.js';
import type { Transport } from '../../src/transport/types.js';
import { uniqueName } from '../helpers/brokers.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { Drop, Repeat } from './harness.js';

describe('coordinator hooks for the FBP runtime', function () {
  this.timeout(10_000);
  let url: string;
  let transport: Transport;
  let coordinator: Coordinator;
  const participants: Participant[] = [];

  beforeEach(async () => {
    url = `direct://${uniqueName('hook')}`;
    transport = await connectTransport(url);
    coordinator = new Coordinator({ transport });
    await coordinator.start();
  });
  afterEach(async () => {
    for (const p of participants.splice(0)) await p.stop();
    await coordinator.stop();
    await transport.close();
  });
  const participant = async (def: ParticipantDefinition, role: string) => {
    const p = new Participant(def, await connectTransport(url), { role, env: {} });
    await p.start();
    participants.push(p);
    await waitFor(() => coordinator.registry.get(p.id), `discovery of ${role}`);
    return p;
  };

  it('an IIP waits while the gate says no, goes after reconcile() once it says yes, with its value', async () => {
    let open = false;
    const asked: unknown[] = [];
    coordinator.setIipGate((tgt, data) => {
      asked.push([tgt.node, tgt.port, data]);
      return open;
    });
    await participant(Repeat, 'a');
    await coordinator.setGraph(parseFbp(`'{"n":1}' -> IN a(Repeat)`));
    assert.deepEqual(coordinator.pendingIips(), [{ node: 'a', port: 'in' }]);
    assert.deepEqual(asked.at(-1), ['a', 'in', { n: 1 }]);
    open = true;
    await coordinator.reconcile();
    assert.deepEqual(coordinator.pendingIips(), []);
  });

  it('isReady(role): live, nothing downstream blocked, every binding made', async () => {
    await coordinator.setGraph(parseFbp(`a(Repeat) OUT -> IN b(Drop)`));
    assert.equal(coordinator.isReady('a'), false, 'a not there');
    await participant(Repeat, 'a');
    await coordinator.reconcile();
    assert.equal(coordinator.isReady('a'), false, 'b not there: the edge cannot be bound');
    await participant(Drop, 'b');
    await waitFor(() => coordinator.isReady('a'), 'a ready once a -> b is bound');
    assert.equal(coordinator.bindings().length, 1);
  });
});

describe('launcher: one SIGTERM per stop', function () {
  this.timeout(10_000);

  it('two concurrent stops of one role send one SIGTERM (a second would make a participant exit without draining)', async () => {
    // Exits 0 a moment after the first SIGTERM, 3 on a second one.
    const script = `let n = 0; process.on('SIGTERM', () => { n++; if (n > 1) process.exit(3); setTimeout(() => process.exit(0), 300); }); setInterval(() => {}, 1000); console.log('ready');`;
    const events: LauncherEvent[] = [];
    const out: string[] = [];
    const launcher = new Launcher({ broker: 'direct://x', cwd: REPO_ROOT, restart: false, stdout: { write: (t: string) => out.push(t) } });
    launcher.on('event', (e) => events.push(e));
    launcher.start({ role: 'sleeper', command: [process.execPath, '-e', script] });
    await waitFor(() => out.join('').includes('ready'), 'child ready');
    await Promise.all([launcher.stop('sleeper'), launcher.stop('sleeper')]);
    const exited = events.find((e) => e.type === 'exited');
    assert.deepEqual(exited && { code: exited.code, expected: exited.expected }, { code: 0, expected: true });
  });
});

describe('launcher: kill()', function () {
  this.timeout(10_000);

  it('stops a process at once with SIGKILL (one that has not started serving has nothing to drain)', async () => {
    const events: LauncherEvent[] = [];
    const out: string[] = [];
    const launcher = new Launcher({ broker: 'direct://x', cwd: REPO_ROOT, stdout: { write: (t: string) => out.push(t) } });
    launcher.on('event', (e) => events.push(e));
    launcher.start({ role: 'stubborn', command: [process.execPath, '-e', `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('ready');`] });
    await waitFor(() => out.join('').includes('ready'), 'child ready');
    const t0 = Date.now();
    await launcher.kill('stubborn');
    assert.ok(Date.now() - t0 < 2000, 'killed at once');
    const exited = events.find((e) => e.type === 'exited');
    assert.deepEqual(exited && { signal: exited.signal, expected: exited.expected }, { signal: 'SIGKILL', expected: true });
    assert.deepEqual(launcher.roles(), []);
    assert.ok(!events.some((e) => e.type === 'restarting'), 'not restarted');
  });
});

describe('library: built-in components', () => {
  it('core/Repeat and core/Drop run this package\'s participants, whatever the cwd; off unless asked for', async () => {
    const cwd = path.join(REPO_ROOT, 'spec', 'fixtures');
    const lib = await loadLibrary({ cwd, builtins: true });
    assert.deepEqual(lib.get('core/Repeat'), {
      name: 'core/Repeat',
      template: 'msgflo-participant --name #ROLE #FILENAME',
      origin: 'builtin',
      file: path.relative(cwd, path.join(BUILTIN_DIR, 'Repeat.js')),
      language: 'javascript',
    });
    assert.ok(existsSync(path.resolve(cwd, lib.get('core/Drop')!.file!)));
    assert.deepEqual(lib.commandFor('core/Drop', 'sink'), ['msgflo-participant', '--name', 'sink', path.relative(cwd, path.join(BUILTIN_DIR, 'Drop.js'))]);
    assert.equal((await loadLibrary({ cwd })).has('core/Repeat'), false);
    // The library's own component of that name wins.
    const own = await loadLibrary({ cwd, builtins: true, config: { msgflo: { components: { 'core/Repeat': 'my-repeat #ROLE' } } } });
    assert.equal(own.get('core/Repeat')!.origin, 'config');
  });
});
