import assert from 'node:assert/strict';
import { Launcher, type LauncherEvent } from '../../src/coordinator/launcher.js';
import { processAlive } from '../helpers/cli.js';
import { sleep, waitFor } from '../helpers/wait.js';


describe('launcher', () => {
  let launcher: Launcher;
  let events: LauncherEvent[];
  let out: string;

  beforeEach(() => {
    events = [];
    out = '';
    launcher = new Launcher({
      broker: 'mqtt://127.0.0.1:1',
      cwd: process.cwd(),
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (out += t) },
      backoff: { initialMs: 50, maxMs: 400 },
      maxRestarts: 3,
      killTimeoutMs: 1000,
    });
    launcher.on('event', (e) => events.push(e));
  });
  afterEach(async () => {
    await launcher.stopAll();
  });

  it('prefixes every output line with the role and hands over the broker URL', async () => {
    launcher.start({ role: 'echo', command: [process.execPath, '-e', 'console.log("one\\ntwo " + process.env.MSGFLO_BROKER); setInterval(() => {}, 1000)'] });
    await waitFor(() => out.includes('echo | two'), 'output');
    assert.match(out, /^echo \| one\necho \| two mqtt:\/\/127\.0\.0\.1:1\n/);
  });

  it('restarts a crashing process with growing backoff, then gives up with a coded error', async () => {
    launcher.start({ role: 'crash', command: [process.execPath, '-e', 'process.exit(3)'] });
    await waitFor(() => events.some((e) => e.type === 'gave-up'), 'gave-up', 10_000);
    const restarts = events.filter((e) => e.type === 'restarting') as Array<{ inMs: number }>;
    assert.equal(restarts.length, 3);
    assert.ok(restarts[2]!.inMs > restarts[0]!.inMs, `backoff grows: ${restarts.map((r) => r.inMs).join(', ')}`);
    const gaveUp = events.find((e) => e.type === 'gave-up') as { error: { code: string; message: string } };
    assert.equal(gaveUp.error.code, 'MSGFLO_ERR_PROCESS_FAILED');
    assert.match(gaveUp.error.message, /crashed 4 times/);
    assert.deepEqual(launcher.roles(), []);
  });

  it('reports a command that does not exist once, without a restart loop', async () => {
    launcher.start({ role: 'ghost', command: ['no-such-command-msgflo-test'] });
    await waitFor(() => events.some((e) => e.type === 'gave-up'), 'gave-up');
    await sleep(200);
    assert.equal(events.filter((e) => e.type === 'restarting').length, 0);
  });

  it('stops the whole process group, leaving no orphan grandchild', async () => {
    // The child starts a grandchild and prints its pid.
    const script = `const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], {stdio: 'ignore'}); console.log('grandchild ' + c.pid); setInterval(() => {}, 1000);`;
    launcher.start({ role: 'tree', command: [process.execPath, '-e', script] });
    const line = await waitFor(() => /grandchild (\d+)/.exec(out), 'grandchild pid');
    const grandchild = Number(line[1]);
    const child = launcher.pid('tree')!;
    assert.ok(processAlive(grandchild) && processAlive(child));
    await launcher.stop('tree');
    await waitFor(() => !processAlive(grandchild) && !processAlive(child), 'both gone', 3000);
    assert.ok(events.some((e) => e.type === 'exited' && e.expected));
  });

  it('SIGKILLs a child that ignores SIGTERM after the kill timeout', async () => {
    launcher.start({ role: 'stubborn', command: [process.execPath, '-e', 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)'] });
    await waitFor(() => out.includes('stubborn | ready'), 'ready');
    const pid = launcher.pid('stubborn')!;
    const t0 = Date.now();
    await launcher.stop('stubborn');
    assert.ok(!processAlive(pid));
    assert.ok(Date.now() - t0 >= 900, 'waited for the kill timeout');
  });
});
