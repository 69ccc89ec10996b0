import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InstanceConflictError, ParticipantDefinitionError, UsageError, maskUrl } from '../errors.js';
import { checkDefinition, type ParticipantDefinition } from '../participant/definition.js';
import { Participant, heartbeatOf } from '../participant/participant.js';
import { loadSettings } from '../settings.js';
import { connectWithRetry, parseCli, reportError, requireBroker } from './common.js';
import { type CliIO, EXIT } from './io.js';

const USAGE = `Usage: msgflo-participant FILE [--name ROLE] [--instance ID] [--broker URL] [--heartbeat S] [--prefetch N] [--spy] [--trace]

Run a participant defined in FILE (.js, .mjs or .ts) whose default export is
defineParticipant({component, inports, outports, process}).

Options:
  --name ROLE      role of this participant (default: FILE's basename)
  --instance ID    which instance of its role this process is, the same across its restarts
                   (default: MSGFLO_INSTANCE, which msgflo sets for what it launches). On MQTT the
                   broker then keeps this instance's session (MSGFLO_MQTT_SESSION_EXPIRY seconds,
                   default 3600): what arrives while it is away waits for it. Every running
                   instance of a role needs its own ID.
  --broker URL     broker (default: MSGFLO_BROKER)
  --heartbeat S    seconds between discovery heartbeats (default: MSGFLO_HEARTBEAT; else
                   MSGFLO_DISCOVERY_PERIOD/2.2; else 5)
  --prefetch N     inputs in flight per inport (default 50)
  --spy            publish miros spy lines on the snoop channel (also MSGFLO_SPY=1;
                   msgflo-trace switches them on at run time anyway)
  --trace          publish trace lines on the snoop channel (also MSGFLO_TRACE=1)
  -h, --help       show this help

A flag wins over its MSGFLO_* variable; every setting is listed in docs/configuration.md.

Stops gracefully on SIGINT/SIGTERM: in-flight inputs are finished first.

Example:
  MSGFLO_BROKER=amqp://localhost msgflo-participant participants/Repeat.js --name repeat`;

/** Import a participant module and return its definition (default export, or `participant`). */
export async function loadParticipantModule(file: string, cwd: string): Promise<ParticipantDefinition> {
  const full = path.resolve(cwd, file);
  if (/\.[cm]?ts$/.test(full)) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ParticipantDefinitionError(`cannot load '${file}': ${(err as Error).message}`, { cause: err });
  }
  const def = (mod.default ?? mod.participant) as unknown;
  if (typeof def === 'function') {
    throw new ParticipantDefinitionError(
      `'${file}' exports a function: msgflo-nodejs participant factories run with 'msgflo-nodejs --name ROLE ${file}'`,
    );
  }
  checkDefinition(def);
  return def;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<{ name?: string; instance?: string; broker?: string; heartbeat?: string; prefetch?: string; spy?: boolean; trace?: boolean }>(
    argv,
    {
      name: { type: 'string' },
      instance: { type: 'string' },
      broker: { type: 'string' },
      heartbeat: { type: 'string' },
      prefetch: { type: 'string' },
      spy: { type: 'boolean' },
      trace: { type: 'boolean' },
    },
    USAGE,
    io,
    'msgflo-participant',
  );
  if (typeof parsed === 'number') return parsed;
  const [file, ...extra] = parsed.positionals;
  if (!file || extra.length) {
    io.stderr.write(`msgflo-participant: give exactly one participant FILE\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const v = parsed.values;
  const role = v.name || path.basename(file).replace(/\.[^.]+$/, '');
  let participant: Participant | undefined;
  try {
    const settings = loadSettings(io.env, { broker: v.broker, instance: v.instance, heartbeat: v.heartbeat, spy: v.spy, trace: v.trace });
    const prefetch = prefetchOption(v.prefetch);
    const { instance } = settings;
    const broker = requireBroker(settings, 'msgflo-participant');
    const definition = await loadParticipantModule(file, io.cwd);
    const transport = await connectWithRetry(broker, {
      name: role,
      ...(instance !== undefined ? { instance } : {}),
      env: io.env,
      signal: io.signal,
      onRetry: (err, inMs) => io.stderr.write(`${role}: ${err.message.split('\n')[0]}; retrying in ${inMs} ms\n`),
    });
    participant = new Participant(definition, transport, {
      role,
      heartbeat: heartbeatOf(settings),
      ...(prefetch !== undefined ? { prefetch } : {}),
      snoop: { spy: settings.spy, trace: settings.trace },
    });
    // Another process took this instance's MQTT session: stop (and say why) rather than run without inputs.
    let conflict: InstanceConflictError | undefined;
    let onConflict: () => void = () => {};
    participant.on('error', (err) => {
      if (err instanceof InstanceConflictError) {
        conflict ??= err;
        onConflict();
        return;
      }
      io.stderr.write(`${role}: ${err.message}\n`);
    });
    participant.on('failed', (port, err) => io.stderr.write(`${role}: input on '${port}' dead-lettered: ${err.code}: ${err.message.split('\n')[0]}\n`));
    // A stop asked for while starting (e.g. the coordinator that launched it died with its broker, so start()
    // waits on a broker that will not come back) must not wait for the start.
    const started = participant.start();
    const abortedWhileStarting = await Promise.race([
      started.then(() => false),
      new Promise<boolean>((resolve) => {
        if (io.signal.aborted) resolve(true);
        else io.signal.addEventListener('abort', () => resolve(true), { once: true });
      }),
    ]);
    if (abortedWhileStarting) {
      started.catch(() => {});
      await participant.stop();
      return EXIT.OK;
    }
    // msgflo's setup treated this line as "started"; keep it.
    io.stdout.write(`${role} connected to ${maskUrl(broker)}\n`);
    if (!io.signal.aborted && !conflict) {
      await new Promise<void>((resolve) => {
        onConflict = resolve;
        io.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    await participant.stop();
    if (conflict) return reportError(conflict, io, 'msgflo-participant');
    return EXIT.OK;
  } catch (err) {
    await participant?.stop().catch(() => {});
    if (io.signal.aborted && !(err instanceof ParticipantDefinitionError)) return EXIT.OK;
    return reportError(err, io, 'msgflo-participant');
  }
}

/** --prefetch: a whole number greater than 0, or undefined when not given. */
function prefetchOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < 1) throw new UsageError(`--prefetch must be a whole number greater than 0, got '${value}'`, 'msgflo-participant');
  return n;
}
