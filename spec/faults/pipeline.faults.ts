/**
 * Fault suite (issue 5), run by `npm run test:faults` (not part of `npm test`): a 3-hop pipeline with 2 instances
 * per role and 20,000 numbered messages, on RabbitMQ and on MQTT, while participants are killed, connections cut,
 * brokers restarted and the coordinator killed. Each scenario asserts 0 lost and records its figures in
 * spec/faults/results/ (see harness.ts for the knobs). One scenario: `npm run test:faults -- --grep 'kill -9'`.
 */
import assert from 'node:assert/strict';
import { AMQP_URL, REQUIRE_BROKERS, requireBroker } from '../helpers/brokers.js';
import { stopAllClis } from '../helpers/cli.js';
import {
  CONFIG,
  HOPS,
  PrivateMosquitto,
  closeRabbitConnections,
  commandExists,
  describeFailure,
  restartRabbit,
  resultTable,
  runScenario,
  type Fault,
  type Scenario,
  type ScenarioResult,
} from './harness.js';

const results: ScenarioResult[] = [];

/** Time bound of one scenario: setup, the stream, the faults, the drain, and a margin. */
function budgetMs(faults: number): number {
  return 90_000 + (CONFIG.count / CONFIG.rate) * 1000 * 1.5 + faults * 15_000 + CONFIG.settleMs * 2;
}

/** kill -9 of one instance of a role (the harness restarts it after 500 ms, as the launcher would). */
function kill(at: number, key: 'src' | 'a' | 'b' | 'c' | 'sink', index: number): Fault {
  return {
    at,
    what: `kill -9 ${key}#${index}`,
    async inject({ pipeline, timeline }) {
      const inst = pipeline.instancesOf(pipeline.roles[key])[index % pipeline.perRole]!;
      const pid = inst.kill9();
      timeline.note(`killed ${inst.name} (pid ${pid ?? 'none: not running'})`);
    },
  };
}

const killSeveral: Fault[] = [kill(0.15, 'a', 0), kill(0.3, 'src', 1), kill(0.45, 'b', 1), kill(0.6, 'sink', 0), kill(0.75, 'c', 0)];

const killCoordinator: Fault = {
  at: 0.3,
  what: 'kill -9 the coordinator',
  async inject({ pipeline, timeline }) {
    const pid = pipeline.coordinator?.pid;
    pipeline.coordinator?.kill();
    timeline.note(`killed msgflo (pid ${pid}); not restarted`);
  },
};

const baseline = (broker: 'amqp' | 'mqtt'): Scenario => ({ id: 'baseline', broker, title: 'no fault (baseline)', faults: [] });

function scenarioTitle(s: Scenario): string {
  return `${s.id}: ${s.title}`;
}

async function check(s: Scenario, url: string, logs?: () => string): Promise<void> {
  const r = await runScenario(s, url, logs);
  results.push(r);
  process.stdout.write(
    `      ${r.broker} ${r.scenario}: sent ${r.sent}, received ${r.received}, lost ${r.lost}, duplicated ${r.duplicated}, recover ${r.recoverMs ?? 'never'} ms, drain ${r.drainMs} ms\n`,
  );
  assert.ok(r.passed, describeFailure(r));
}

describe(`faults on RabbitMQ: 3-hop pipeline, ${CONFIG.instances} instances per role, ${CONFIG.count} messages @broker`, function () {
  before(async function () {
    await requireBroker(this, AMQP_URL);
  });
  afterEach(() => stopAllClis('SIGKILL'));

  const scenarios: Scenario[] = [
    baseline('amqp'),
    { id: 'kill9', broker: 'amqp', title: `kill -9 of participant instances mid-stream, ${killSeveral.length} times (${HOPS.join(', ')}, src, sink)`, faults: killSeveral },
    {
      id: 'connection-cut',
      broker: 'amqp',
      title: "broker connections of every participant closed mid-stream (rabbitmqctl close_connection, this run's connections only)",
      faults: [
        {
          at: 0.4,
          what: 'close the participants’ connections',
          async inject({ pipeline, timeline }) {
            const n = await closeRabbitConnections(pipeline.participantConnectionNames, 'msgflo fault suite: connection cut');
            timeline.note(`closed ${n} connection(s)`);
          },
        },
      ],
    },
    {
      id: 'broker-restart',
      broker: 'amqp',
      title: 'RabbitMQ restarted mid-stream (rabbitmqctl stop_app / start_app; only with MSGFLO_FAULTS_BROKER_RESTART=1)',
      faults: [
        {
          at: 0.4,
          what: 'rabbitmqctl stop_app; start_app',
          async inject({ timeline }) {
            const port = Number(new URL(AMQP_URL).port || 5672);
            await restartRabbit(2000, port);
            timeline.note('RabbitMQ is back');
          },
        },
      ],
    },
    { id: 'coordinator-kill', broker: 'amqp', title: 'coordinator (msgflo) killed -9 mid-stream: the edges keep working', faults: [killCoordinator] },
  ];

  for (const s of scenarios) {
    it(scenarioTitle(s), async function () {
      if (s.id === 'broker-restart' && !CONFIG.brokerRestart) this.skip();
      if (s.faults.some((f) => f.what.startsWith('close') || f.what.startsWith('rabbitmqctl')) && !(await commandExists('rabbitmqctl'))) {
        if (REQUIRE_BROKERS) throw new Error('rabbitmqctl is needed for this scenario');
        this.skip();
      }
      this.timeout(budgetMs(s.faults.length));
      await check(s, AMQP_URL);
    });
  }
});

describe(`faults on MQTT: 3-hop pipeline, ${CONFIG.instances} instances per role, ${CONFIG.count} messages @broker`, function () {
  // Every MQTT scenario runs on a Mosquitto of its own, configured as the guarantee needs (RELIABLE_MOSQUITTO_SETTINGS:
  // unbounded queues per client, persistence, TCP_NODELAY). The shared one (MSGFLO_TEST_MQTT) keeps Mosquitto's
  // stock limit of 1000 queued messages per client and drops beyond it; it is left alone.
  before(async function () {
    if (!(await commandExists('mosquitto'))) {
      if (REQUIRE_BROKERS) throw new Error('the mosquitto binary is needed for the MQTT fault scenarios');
      this.skip();
    }
  });
  afterEach(() => stopAllClis('SIGKILL'));

  const restartBroker = (broker: PrivateMosquitto): Fault => ({
    at: 0.4,
    what: 'restart the private Mosquitto (1 s down)',
    async inject({ timeline }) {
      await broker.restart(1000);
      timeline.note(`Mosquitto is back on port ${broker.port}`);
    },
  });

  const scenarios: Array<{ id: string; title: string; faults: (broker: PrivateMosquitto) => Fault[] }> = [
    { id: 'baseline', title: 'no fault (baseline)', faults: () => [] },
    { id: 'kill9', title: `kill -9 of participant instances mid-stream, ${killSeveral.length} times (${HOPS.join(', ')}, src, sink)`, faults: () => killSeveral },
    { id: 'connection-cut', title: 'broker restarted mid-stream (every connection cut, state persisted)', faults: (b) => [restartBroker(b)] },
    { id: 'coordinator-kill', title: 'coordinator (msgflo) killed -9 mid-stream: the edges keep working', faults: () => [killCoordinator] },
  ];
  for (const s of scenarios) {
    it(`${s.id}: ${s.title}`, async function () {
      this.timeout(budgetMs(s.id === 'kill9' ? killSeveral.length : 1));
      const broker = new PrivateMosquitto();
      await broker.start();
      try {
        await check({ id: s.id, broker: 'mqtt', title: s.title, privateBroker: true, faults: s.faults(broker) }, broker.url, () => broker.logs());
      } finally {
        await broker.stop();
      }
    });
  }

  it('kill9-stock-broker: kill -9 as above, on a Mosquitto with stock settings (figures only; MSGFLO_FAULTS_STOCK_MOSQUITTO=1)', async function () {
    if (!CONFIG.stockMosquitto) this.skip();
    this.timeout(budgetMs(killSeveral.length));
    const broker = new PrivateMosquitto({ stock: true });
    await broker.start();
    try {
      const r = await runScenario(
        { id: 'kill9-stock-broker', broker: 'mqtt', title: 'kill -9 on a stock Mosquitto (max_queued_messages 1000)', privateBroker: true, faults: killSeveral },
        broker.url,
        () => broker.logs(),
      );
      results.push(r);
      process.stdout.write(`      mqtt ${r.scenario}: sent ${r.sent}, received ${r.received}, lost ${r.lost} (not asserted), broker drops ${r.brokerDrops}\n`);
    } finally {
      await broker.stop();
    }
  });
});

after(function () {
  if (results.length === 0) return;
  process.stdout.write(`\nFault suite results (count ${CONFIG.count}, rate ${CONFIG.rate}/s, ${CONFIG.instances} instances per role):\n${resultTable(results)}\n`);
});
