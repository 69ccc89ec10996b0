/**
 * The fbp-spec suites of spec/fbp-spec/ (YAML: the example participants and graphs) run by npm fbp-spec@0.8.0
 * against a `msgflo` runtime, on RabbitMQ and on Mosquitto (roles prefixed: other test runs share those brokers).
 * fbp-spec drives the runtime purely over the FBP protocol: component:list, graph:clear/addnode/…, exported
 * ports, network:start, runtime:packet in and out, network:stop.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { cleanupRoles } from '../helpers/cleanup.js';
import { REPO_ROOT, runCli, startCli, stopAllClis } from '../helpers/cli.js';
import { leftBehind } from './processes.js';

const SUITES = path.join(REPO_ROOT, 'spec', 'fbp-spec');

/** Every case of the suites, and the node ids their fixtures use (fbp-spec calls a topic's own fixture node 'testee'). */
function suites(): { cases: number; nodes: string[] } {
  let cases = 0;
  const nodes = new Set(['testee']);
  for (const file of readdirSync(SUITES).filter((f) => f.endsWith('.yaml'))) {
    const docs = [parse(readFileSync(path.join(SUITES, file), 'utf8'))].flat() as Array<{ cases: unknown[]; fixture?: { data: string } }>;
    for (const suite of docs) {
      cases += suite.cases.length;
      for (const m of suite.fixture?.data.matchAll(/([A-Za-z_][\w-]*)\(/g) ?? []) nodes.add(m[1]!);
    }
  }
  return { cases, nodes: [...nodes] };
}

for (const [name, broker] of [
  ['RabbitMQ', AMQP_URL],
  ['Mosquitto', MQTT_URL],
] as const) {
  describe(`fbp-spec suites (spec/fbp-spec) against msgflo on ${name} @broker`, function () {
    this.timeout(240_000);
    const prefix = `${uniqueName('fs')}-`;
    const { cases, nodes } = suites();

    before(async function () {
      await requireBroker(this, broker);
    });
    after(async () => {
      await stopAllClis('SIGTERM');
      await cleanupRoles(broker, nodes.map((n) => `${prefix}${n}`));
    });

    it(`passes all ${cases} cases`, async () => {
      const secret = randomBytes(12).toString('hex');
      const marker = randomBytes(8).toString('hex');
      const runtime = startCli('msgflo', ['--port', '0', '--secret', secret, '--broker', broker, '--role-prefix', prefix, '--forward', ''], {
        // The coordinator's and the runtime's decisions (bindings, IIPs, packets), for the failure message.
        env: { MSGFLO_FBP_SPEC_RUN: marker, DEBUG: 'msgflo:coordinator,msgflo:runtime,msgflo:launcher' },
      });
      const [, address] = await runtime.waitForOutput(/FBP runtime on (ws:\/\/\S+)/);
      await runtime.waitForOutput(/msgflo running/, { timeoutMs: 20_000 });
      const t0 = Date.now();
      const r = await runCli('node_modules/fbp-spec/bin/fbp-spec', ['--address', address!, '--secret', secret, '--command-timeout', '15', 'spec/fbp-spec'], {
        timeoutMs: 180_000,
      });
      const seconds = (Date.now() - t0) / 1000;
      // fbp-spec waits for an expected packet without a timeout: the runtime's side says where one stopped.
      const output = `${r.stdout}${r.stderr}\n--- runtime (last 8000 characters):\n${`${runtime.stdout}${runtime.stderr}`.slice(-8000)}`;
      const passed = (r.stdout.match(/: ✓$/gm) ?? []).length;
      const failed = (r.stdout.match(/: ✗ /gm) ?? []).length;
      console.log(`      fbp-spec on ${name}: ${passed} passed, ${failed} failed (of ${cases}) in ${seconds.toFixed(1)} s`);
      assert.equal(r.code, 0, output);
      assert.deepEqual({ passed, failed }, { passed: cases, failed: 0 }, output);
      const stopped = await runtime.stop('SIGTERM', 15_000);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.deepEqual(await leftBehind('MSGFLO_FBP_SPEC_RUN', marker), [], 'participants left running');
    });
  });
}
