/**
 * The public conformance suite of the FBP runtime protocol (`fbp-test` from npm fbp-protocol@0.9.8) against a
 * freshly started `msgflo` runtime: all 22 tests must pass (a test skipped by a failed hook counts as failed).
 * Run twice: as published, and with the suite's schema check made real (spec/runtime/fbp-test-strict.cjs, what
 * the FBP_STRICT_SCHEMA column of the reference measures; fbp-protocol 0.9.8 has no such switch itself).
 *
 * fbp-test runs `node_modules/.bin/_mocha` of its cwd, with the config read from $PROJECT_HOME/fbp-config.json,
 * and starts the runtime itself (`command`, through a shell, in that cwd): a temp dir whose node_modules is the
 * fbp-protocol package's own (mocha 5, as the suite was written for). The runtime runs on its embedded broker.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { leftBehind } from './processes.js';

const SUITE_TESTS = 22;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** passing / failing / pending counts from mocha's spec reporter. */
function counts(output: string): { passing: number; failing: number; pending: number } {
  const n = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}`, 'm').exec(output)?.[1] ?? 0);
  return { passing: n('passing'), failing: n('failing'), pending: n('pending') };
}

async function runSuite(extraArgs: string[]): Promise<{ output: string; seconds: number; code: number | null }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-fbp-test-'));
  symlinkSync(path.join(REPO_ROOT, 'node_modules', 'fbp-protocol', 'node_modules'), path.join(dir, 'node_modules'));
  const port = await freePort();
  const secret = randomBytes(12).toString('hex');
  const marker = randomBytes(8).toString('hex');
  const command = `exec "${process.execPath}" "${path.join(REPO_ROOT, 'bin', 'msgflo.js')}" --port ${port} --secret ${secret} --forward ''`;
  writeFileSync(
    path.join(dir, 'fbp-config.json'),
    JSON.stringify({ name: 'msgflo-ts', command, host: '127.0.0.1', port, collection: 'core', version: '0.7' }, null, 2),
  );
  const t0 = Date.now();
  const result = await runCli('node_modules/fbp-protocol/bin/fbp-test', extraArgs, {
    cwd: dir,
    env: { PROJECT_HOME: dir, FBP_PROTOCOL_SECRET: secret, MSGFLO_BROKER: undefined, MSGFLO_RUNTIME_SECRET: undefined, MSGFLO_FBP_TEST_RUN: marker },
    timeoutMs: 120_000,
  });
  const seconds = (Date.now() - t0) / 1000;
  const output = `${result.stdout}${result.stderr}`;
  // The suite kills the runtime when it is done; the runtime stops the participants it started.
  const left = await leftBehind('MSGFLO_FBP_TEST_RUN', marker);
  assert.deepEqual(left, [], `processes left running after fbp-test (killed now)\n${output}`);
  return { output, seconds, code: result.code };
}

describe('fbp-test: the public FBP runtime protocol suite (fbp-protocol@0.9.8)', function () {
  this.timeout(180_000);

  for (const [label, args] of [
    ['as published', []],
    ['with a real schema check (strict)', ['--require', path.join(REPO_ROOT, 'spec', 'runtime', 'fbp-test-strict.cjs')]],
  ] as const) {
    it(`passes all ${SUITE_TESTS} tests ${label}`, async () => {
      const { output, seconds, code } = await runSuite([...args]);
      const c = counts(output);
      console.log(`      fbp-test ${label}: ${c.passing} passed, ${c.failing} failed, ${c.pending} pending in ${seconds.toFixed(1)} s`);
      assert.deepEqual(c, { passing: SUITE_TESTS, failing: 0, pending: 0 }, output);
      assert.equal(code, 0, output);
    });
  }
});
