import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { main as dumpMain } from '../src/cli/dump.js';
import type { CliIO } from '../src/cli/io.js';
import { main as msgfloMain } from '../src/cli/msgflo.js';
import { main as participantMain } from '../src/cli/participant.js';
import { main as procfileMain } from '../src/cli/procfile.js';
import { main as registerMain } from '../src/cli/register.js';
import { main as sendMain } from '../src/cli/send.js';
import { main as setupMain } from '../src/cli/setup.js';
import { main as traceMain } from '../src/cli/trace.js';
import { ErrorCodes, SettingError, UsageError } from '../src/errors.js';
import { defineParticipant } from '../src/participant/definition.js';
import { Participant, heartbeatOf } from '../src/participant/participant.js';
import { snoopFromEnv } from '../src/participant/snoop.js';
import { SETTINGS, type SettingKey, type Settings, loadSettings, readSetting, settingsEnv } from '../src/settings.js';
import { connectTransport } from '../src/transport/index.js';
import { uniqueName } from './helpers/brokers.js';
import { REPO_ROOT, fakeIO, runCli } from './helpers/cli.js';

const KEYS = Object.keys(SETTINGS) as SettingKey[];
const variable = (key: SettingKey): string => SETTINGS[key].variable;
const flagOf = (key: SettingKey): string | undefined => ('flag' in SETTINGS[key] ? (SETTINGS[key] as { flag: string }).flag : undefined);

/** The row docs/configuration.md must have for a setting. */
function docRow(key: SettingKey): string {
  const s = SETTINGS[key];
  const flag = flagOf(key);
  return `| \`${s.variable}\` | ${flag ? `\`${flag}\`` : '—'} | ${s.accepts} | ${s.defaultText} | ${s.description} | ${s.readBy.join(', ')} |`;
}

/** Values each setting refuses (an empty list: it accepts any non-empty text). */
const REFUSED: { readonly [K in SettingKey]: readonly string[] } = {
  broker: ['not a url', '//host:5672'],
  heartbeat: ['abc', '0', '-1', '1e3', '5s', 'Infinity'],
  discoveryPeriod: ['abc', '0', '-22'],
  spy: ['maybe', '2', 'enabled'],
  trace: ['maybe', 'y'],
  key: ['a,,b', 'a,'],
  keyFile: [],
  mqttSessionExpiry: ['abc', '-1', '1.5', '4294967296'],
  startWait: ['abc', '-1', '5s', 'Infinity'],
  instance: ['a b/c', 'x'.repeat(65), 'ü'],
  parentPid: ['0', 'abc', '-5', '1.5'],
  runtimeId: ['not-a-uuid', '0d3e6f5a3d0a4f8e9a538e5f3f1b2c44'],
  runtimeSecret: [],
};

/** An accepted value of each setting, and what it parses to. */
const ACCEPTED: { readonly [K in SettingKey]: readonly [string, Settings[K]] } = {
  broker: ['amqp://guest:guest@127.0.0.1:5672', 'amqp://guest:guest@127.0.0.1:5672'],
  heartbeat: [' 2.5 ', 2.5],
  discoveryPeriod: ['22', 22],
  spy: ['YES', true],
  trace: ['off', false],
  key: [' a , b ', ['a', 'b']],
  keyFile: ['/etc/msgflo.key', '/etc/msgflo.key'],
  mqttSessionExpiry: ['0', 0],
  startWait: ['0.5', 0.5],
  instance: ['worker-1.a_b', 'worker-1.a_b'],
  parentPid: ['4242', 4242],
  runtimeId: ['0D3E6F5A-3D0A-4F8E-9A53-8E5F3F1B2C44', '0D3E6F5A-3D0A-4F8E-9A53-8E5F3F1B2C44'],
  runtimeSecret: ['s3cret', 's3cret'],
};

function isSettingError(key: SettingKey, source: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof SettingError, String(err));
    assert.ok(err instanceof UsageError);
    assert.equal(err.code, ErrorCodes.USAGE);
    assert.equal(err.variable, variable(key));
    assert.equal(err.source, source);
    assert.ok(err.message.startsWith(`${source} must be ${SETTINGS[key].accepts}, got '`), err.message);
    assert.match(err.message, /docs\/configuration\.md/);
    return true;
  };
}

describe('settings', () => {
  describe('the table', () => {
    const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    const rows = doc.split('\n').filter((line) => line.startsWith('| `MSGFLO_'));

    it('is the one in docs/configuration.md: every setting documented as declared, nothing else', () => {
      const documented = rows.map((row) => /^\| `(MSGFLO_[A-Z_]+)`/.exec(row)![1]!);
      assert.deepEqual(documented, KEYS.map(variable), 'the variables of docs/configuration.md, in order');
      for (const key of KEYS) {
        assert.ok(rows.includes(docRow(key)), `docs/configuration.md: the row of ${variable(key)} should read\n${docRow(key)}`);
      }
    });

    it('declares every MSGFLO_* variable that src/, bin/ and participants/ mention', () => {
      const declared = new Set(KEYS.map(variable));
      const files = ['src', 'bin', 'participants'].flatMap((dir) => walk(path.join(REPO_ROOT, dir)));
      const undeclared = new Set<string>();
      for (const file of files) {
        for (const [name] of readFileSync(file, 'utf8').matchAll(/\bMSGFLO_[A-Z][A-Z0-9_]*/g)) {
          if (!name.startsWith('MSGFLO_ERR_') && !declared.has(name)) undeclared.add(`${name} (${path.relative(REPO_ROOT, file)})`);
        }
      }
      assert.deepEqual([...undeclared], []);
    });

    it('has one variable per setting, and flags only where a command has them', () => {
      assert.equal(new Set(KEYS.map(variable)).size, KEYS.length);
      const flags = KEYS.map(flagOf).filter((f): f is string => f !== undefined);
      assert.deepEqual(flags, ['--broker', '--heartbeat', '--spy', '--trace', '--instance', '--runtime-id', '--secret']);
    });
  });

  describe('parsing', () => {
    it('refuses what a setting does not accept, with a SettingError (MSGFLO_ERR_USAGE) naming the variable and what it accepts', () => {
      for (const key of KEYS) {
        for (const value of REFUSED[key]) {
          assert.throws(() => loadSettings({ [variable(key)]: value }), isSettingError(key, variable(key)), `${variable(key)}=${value}`);
          assert.throws(() => readSetting({ [variable(key)]: value }, key), isSettingError(key, variable(key)), `${variable(key)}=${value}`);
        }
      }
    });

    it('names the flag when the value came from the flag', () => {
      for (const key of KEYS) {
        const flag = flagOf(key);
        if (flag === undefined || REFUSED[key].length === 0) continue;
        const value = REFUSED[key][0]!;
        assert.throws(() => loadSettings({}, { [key]: value }), isSettingError(key, flag), `${flag} ${value}`);
      }
      assert.throws(() => loadSettings({}, { heartbeat: 'abc' }), /sets what MSGFLO_HEARTBEAT sets/);
      assert.throws(() => loadSettings({ MSGFLO_HEARTBEAT: 'abc' }), /unset it \(--heartbeat overrides it\)/);
    });

    it('parses what it accepts', () => {
      for (const key of KEYS) {
        const [text, value] = ACCEPTED[key];
        assert.deepEqual(readSetting({ [variable(key)]: text }, key), value, `${variable(key)}=${text}`);
      }
    });

    it('does not show keys and secrets it refuses, and masks broker passwords', () => {
      assert.throws(
        () => loadSettings({ MSGFLO_KEY: 'topsecret,,' }),
        (err: Error) => !err.message.includes('topsecret') && /MSGFLO_KEY must be .*, got '\(not shown\)'/.test(err.message),
      );
      assert.throws(() => loadSettings({ MSGFLO_BROKER: 'amqp//user:hunter2@host' }), (err: Error) => !err.message.includes('hunter2'));
    });

    it('gives the defaults when nothing is set, empty values counting as unset', () => {
      const expected: Settings = {
        broker: undefined,
        heartbeat: undefined,
        discoveryPeriod: undefined,
        spy: false,
        trace: false,
        key: undefined,
        keyFile: undefined,
        mqttSessionExpiry: 3600,
        startWait: 5,
        instance: undefined,
        parentPid: undefined,
        runtimeId: undefined,
        runtimeSecret: undefined,
      };
      assert.deepEqual({ ...loadSettings({}) }, expected);
      const empty = Object.fromEntries(KEYS.map((k, i) => [variable(k), i % 2 ? '' : '  ']));
      const emptyFlags = { broker: '', heartbeat: ' ', instance: '', runtimeId: '', runtimeSecret: '' };
      assert.deepEqual({ ...loadSettings(empty, emptyFlags) }, expected);
      assert.equal(heartbeatOf(loadSettings({})), 5);
    });

    it('returns a frozen object', () => {
      const settings = loadSettings({ MSGFLO_KEY: 'a,b' });
      assert.ok(Object.isFrozen(settings));
      assert.ok(Object.isFrozen(settings.key));
    });

    it('takes a flag over its variable, and the variable over the default', () => {
      const env = { MSGFLO_HEARTBEAT: '10', MSGFLO_BROKER: 'mqtt://env', MSGFLO_SPY: 'false', MSGFLO_INSTANCE: 'env' };
      const flagged = loadSettings(env, { heartbeat: '2', broker: 'amqp://flag', spy: true, instance: 'flag' });
      assert.deepEqual([flagged.heartbeat, flagged.broker, flagged.spy, flagged.instance], [2, 'amqp://flag', true, 'flag']);
      const fromEnv = loadSettings(env);
      assert.deepEqual([fromEnv.heartbeat, fromEnv.broker, fromEnv.spy, fromEnv.instance], [10, 'mqtt://env', false, 'env']);
      // A flag wins even when the variable holds a value it would refuse: that variable is not read.
      assert.equal(readSetting({ MSGFLO_HEARTBEAT: 'abc' }, 'heartbeat', { heartbeat: '3' }), 3);
    });

    it('derives the heartbeat as msgflo does: MSGFLO_HEARTBEAT, else MSGFLO_DISCOVERY_PERIOD / 2.2, else 5', () => {
      assert.equal(heartbeatOf(loadSettings({ MSGFLO_DISCOVERY_PERIOD: '22' })), 10);
      assert.equal(heartbeatOf(loadSettings({ MSGFLO_DISCOVERY_PERIOD: '22', MSGFLO_HEARTBEAT: '1' })), 1);
      assert.equal(heartbeatOf(loadSettings({ MSGFLO_DISCOVERY_PERIOD: '22' }, { heartbeat: '4' })), 4);
    });

    it('hands settings to a child: settingsEnv gives variables that read back as the same values; null unsets', () => {
      const values = { broker: 'mqtt://127.0.0.1:1883', instance: '3', parentPid: 77, spy: true, key: ['a', 'b'], mqttSessionExpiry: 0 } as const;
      const env = settingsEnv(values);
      assert.deepEqual(env, {
        MSGFLO_BROKER: 'mqtt://127.0.0.1:1883',
        MSGFLO_INSTANCE: '3',
        MSGFLO_PARENT_PID: '77',
        MSGFLO_SPY: 'true',
        MSGFLO_KEY: 'a,b',
        MSGFLO_MQTT_SESSION_EXPIRY: '0',
      });
      const back = loadSettings(env);
      for (const [key, value] of Object.entries(values)) assert.deepEqual(back[key as SettingKey], value, key);
      const inherited = { MSGFLO_BROKER: 'amqp://parent' };
      assert.equal(loadSettings({ ...inherited, ...settingsEnv({ broker: null }) }).broker, undefined);
    });
  });

  describe('library entry points read the settings of their env', () => {
    const echo = defineParticipant({ component: 'Echo', inports: [{ id: 'in' }], outports: [{ id: 'out' }], process: (_p, d, send) => send('out', d) });

    it('Participant: MSGFLO_HEARTBEAT, MSGFLO_SPY and MSGFLO_TRACE; an option given in code wins', async () => {
      const t = await connectTransport(`direct://${uniqueName('settings')}`);
      try {
        const p = new Participant(echo, t, { role: 'e', env: { MSGFLO_HEARTBEAT: '7', MSGFLO_SPY: 'on' } });
        assert.equal(p.heartbeat, 7);
        assert.equal(p.snoop.spy, true);
        assert.equal(p.snoop.trace, false);
        assert.equal(new Participant(echo, t, { role: 'e', heartbeat: 1, env: { MSGFLO_HEARTBEAT: 'abc' } }).heartbeat, 1);
        assert.throws(() => new Participant(echo, t, { role: 'e', env: { MSGFLO_HEARTBEAT: 'abc' } }), isSettingError('heartbeat', 'MSGFLO_HEARTBEAT'));
        assert.throws(() => new Participant(echo, t, { role: 'e', env: { MSGFLO_TRACE: 'sometimes' } }), isSettingError('trace', 'MSGFLO_TRACE'));
        assert.deepEqual(snoopFromEnv({ MSGFLO_SPY: '1', MSGFLO_TRACE: 'no' }), { spy: true, trace: false });
      } finally {
        await t.close();
      }
    });
  });

  describe('commands check every setting at start (exit 2)', function () {
    this.timeout(30_000);
    const bad = { MSGFLO_HEARTBEAT: 'abc', MSGFLO_BROKER: 'direct://unused' };
    const commands: Array<[string, (argv: string[], io: CliIO) => Promise<number>, string[]]> = [
      ['msgflo', msgfloMain, ['--port', '0']],
      ['msgflo-setup', setupMain, ['graphs/demo.fbp']],
      ['msgflo-participant', participantMain, ['participants/Repeat.js']],
      ['msgflo-send-message', sendMain, ['--queue', 'q', '--json', '1']],
      ['msgflo-dump-message', dumpMain, ['--queue', 'q']],
      ['msgflo-register', registerMain, ['--role', 'a:participants/none.yml']],
      ['msgflo-trace', traceMain, []],
      ['msgflo-procfile', procfileMain, ['graphs/demo.fbp']],
    ];

    for (const [name, main, argv] of commands) {
      it(`${name}: a setting it refuses stops it before it does anything`, async () => {
        const io = fakeIO({ env: bad });
        assert.equal(await main(argv, io.io), 2, io.stderr());
        assert.equal(io.stdout(), '');
        assert.match(io.stderr(), new RegExp(`^${name}: MSGFLO_ERR_USAGE: MSGFLO_HEARTBEAT must be a number of seconds greater than 0, got 'abc'\\n  → `));
      });
    }

    it('msgflo-participant refuses a --heartbeat or --prefetch that is not a number', async () => {
      for (const [flag, value] of [['--heartbeat', 'soon'], ['--prefetch', '0'], ['--prefetch', 'many']] as const) {
        const io = fakeIO({ env: { MSGFLO_BROKER: 'direct://unused' } });
        assert.equal(await participantMain(['participants/Repeat.js', flag, value], io.io), 2, io.stderr());
        assert.match(io.stderr(), new RegExp(`^msgflo-participant: MSGFLO_ERR_USAGE: ${flag} must be .*, got '${value}'`));
      }
    });

    it('end to end: msgflo-participant with MSGFLO_HEARTBEAT=abc or MSGFLO_MQTT_SESSION_EXPIRY=abc exits 2 and says why', async () => {
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ MSGFLO_HEARTBEAT: 'abc' }, /^msgflo-participant: MSGFLO_ERR_USAGE: MSGFLO_HEARTBEAT must be a number of seconds greater than 0, got 'abc'\n  → .*docs\/configuration\.md/],
        [{ MSGFLO_MQTT_SESSION_EXPIRY: 'abc' }, /^msgflo-participant: MSGFLO_ERR_USAGE: MSGFLO_MQTT_SESSION_EXPIRY must be a whole number of seconds from 0 to 4294967295, got 'abc'/],
      ];
      for (const [env, message] of cases) {
        const r = await runCli('msgflo-participant', ['participants/Repeat.js', '--name', uniqueName('settings')], { env: { MSGFLO_BROKER: 'direct://unused', ...env } });
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, message);
      }
    });

    it('end to end: a process given a MSGFLO_PARENT_PID that is not a pid exits 2 and says why', async () => {
      const r = await runCli('msgflo-send-message', ['--queue', 'q', '--json', '1'], { env: { MSGFLO_BROKER: 'direct://unused', MSGFLO_PARENT_PID: 'parent' } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^msgflo-send-message: MSGFLO_ERR_USAGE: MSGFLO_PARENT_PID must be a process id \(a whole number greater than 0\), got 'parent'/);
    });
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : /\.(ts|js|cjs|mjs)$/.test(name) ? [full] : [];
  });
}
