/**
 * `msgflo-register`: announce "foreign" participants (systems that do not speak msgflo themselves: devices,
 * services in other languages) from YAML definitions, so that a coordinator can wire their queues.
 *
 * Differences from msgflo 0.12: `--forever=false` / `--forever false` really mean false (msgflo coerced the
 * string with `Boolean()`), definitions are checked before anything is sent, ports may be given as maps or
 * arrays, and a broker that is not up yet is waited for (with --forever).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DiscoveryInvalidError, ErrorCodes, MsgfloError, TransportClosedError, UsageError, reasonOf } from '../errors.js';
import { discoveryMessage, parseDiscovery, type DiscoveryMessage, type ParticipantInfo, type PortDefinition } from '../protocol/discovery.js';
import { LEGACY_DISCOVERY_PERIOD, heartbeatForPeriod, queueName } from '../protocol/naming.js';
import { connectTransport } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import { loadSettings } from '../settings.js';
import { delay } from '../util/backoff.js';
import { booleanOption, connectWithRetry, normalizeBooleanFlag, parseCli, reportError, requireBroker } from './common.js';
import { type CliIO, EXIT } from './io.js';

const COMMAND = 'msgflo-register';


const USAGE = `Usage: ${COMMAND} --role ROLE:FILE.yml [--role ROLE:FILE.yml ...] [--broker URL]
                      [--interval S] [--forever[=BOOL]]

Announce foreign participants (systems that do not speak msgflo themselves)
on the discovery queue 'fbp', so that a coordinator can wire their queues.

Each FILE is YAML:
  component: Bulb                 # required
  label: A smart light bulb       # optional; also icon, id (default: ROLE)
  inports:                        # map keyed by port id (or a list with id:)
    on:
      queue: lights/#ROLE/on      # #ROLE is replaced by the role;
      type: boolean               #   default queue: ROLE.PORT (e.g. bulb1.ON)
      description: switch on/off
  outports:
    state: {queue: "lights/#ROLE/state", type: object}

Options:
  --role ROLE:FILE  a participant ROLE described by FILE (repeatable)
  --broker URL      broker (default: MSGFLO_BROKER), e.g. amqp://user:pass@host
  --interval S      discovery period in seconds (default ${LEGACY_DISCOVERY_PERIOD}); with --forever
                    the participants are re-announced every S/2.2 seconds
  --forever[=BOOL]  keep re-announcing until SIGINT/SIGTERM (default true);
                    --forever=false, --forever false or --no-forever announce
                    once and exit. Keeps waiting for a broker that is not up yet.
  -h, --help        show this help

Exit status: 0 announced (once), or stopped by SIGINT/SIGTERM (forever);
1 a definition is missing or invalid, or the broker failed; 2 bad usage.

Example:
  ${COMMAND} --broker mqtt://localhost --role bulb1:participants/Bulb.yml --role bulb2:participants/Bulb.yml`;

interface Values {
  role?: string[];
  broker?: string;
  interval?: string;
  forever?: string;
}

export interface RoleSpec {
  role: string;
  file: string;
}

/** `ROLE:FILE` → {role, file}; the role is everything before the first ':'. */
export function parseRoleSpec(spec: string): RoleSpec {
  const colon = spec.indexOf(':');
  const role = colon < 0 ? '' : spec.slice(0, colon).trim();
  const file = colon < 0 ? '' : spec.slice(colon + 1).trim();
  if (!role || !file) throw new UsageError(`--role must be ROLE:FILE (e.g. bulb1:bulb.yml), got '${spec}'`, COMMAND);
  if (/\s/.test(role)) throw new UsageError(`role '${role}' must not contain spaces`, COMMAND);
  return { role, file };
}

function definitionError(file: string, detail: string, cause?: unknown): MsgfloError {
  return new MsgfloError(ErrorCodes.PARTICIPANT_DEFINITION, `Invalid foreign participant definition '${file}': ${detail}`, {
    ...(cause !== undefined ? { cause } : {}),
    hint:
      'A definition is a YAML mapping: component (required), label, icon, id, and inports/outports as maps keyed ' +
      "by port id ({in: {queue: '#ROLE.IN', type: any, description: ...}}) or lists with id. Run 'msgflo-register --help'.",
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function substituteRole(text: string, role: string): string {
  return text.split('#ROLE').join(role);
}

/** The ports of one direction, from a map keyed by port id or a list of ports with `id`. */
function portsOf(raw: unknown, direction: 'inports' | 'outports', role: string, file: string): PortDefinition[] {
  if (raw === undefined || raw === null) return [];
  let entries: Array<[string, unknown]>;
  if (Array.isArray(raw)) {
    entries = raw.map((p, i) => {
      if (!isRecord(p) || typeof p.id !== 'string' || !p.id) throw definitionError(file, `${direction}[${i}] needs an 'id'`);
      return [p.id, p];
    });
  } else if (isRecord(raw)) {
    entries = Object.entries(raw);
  } else {
    throw definitionError(file, `'${direction}' must be a map keyed by port id, or a list`);
  }
  const seen = new Set<string>();
  return entries.map(([id, value]) => {
    if (seen.has(id)) throw definitionError(file, `${direction}: port '${id}' is defined twice`);
    seen.add(id);
    if (value !== null && value !== undefined && !isRecord(value)) {
      throw definitionError(file, `${direction}.${id} must be a mapping like {queue, type, description}`);
    }
    const port: Record<string, unknown> = { ...(value ?? {}) };
    if (port.queue !== undefined && typeof port.queue !== 'string') throw definitionError(file, `${direction}.${id}.queue must be a string`);
    if (port.type !== undefined && typeof port.type !== 'string') throw definitionError(file, `${direction}.${id}.type must be a string`);
    const queue = typeof port.queue === 'string' && port.queue ? substituteRole(port.queue, role) : queueName(role, id);
    return { ...port, id, type: (port.type as string | undefined) ?? 'any', queue } as PortDefinition;
  });
}

/** The discovery payload for `role` from a parsed YAML definition (throws a PARTICIPANT_DEFINITION error). */
export function foreignParticipant(role: string, definition: unknown, file: string): ParticipantInfo {
  if (!isRecord(definition)) throw definitionError(file, 'expected a YAML mapping with at least a component');
  const { inports, outports, id, role: _ignored, heartbeat: _heartbeat, library: _library, ...rest } = definition;
  if (typeof rest.component !== 'string' || !rest.component) throw definitionError(file, "'component' is required (a string)");
  for (const key of ['label', 'icon'] as const) {
    if (rest[key] !== undefined && typeof rest[key] !== 'string') throw definitionError(file, `'${key}' must be a string`);
  }
  if (id !== undefined && (typeof id !== 'string' || !id)) throw definitionError(file, "'id' must be a non-empty string");
  const payload = {
    ...rest,
    id: typeof id === 'string' ? substituteRole(id, role) : role,
    role,
    component: rest.component,
    inports: portsOf(inports, 'inports', role, file),
    outports: portsOf(outports, 'outports', role, file),
  } as ParticipantInfo;
  try {
    parseDiscovery(discoveryMessage(payload));
  } catch (err) {
    if (err instanceof DiscoveryInvalidError) throw definitionError(file, err.problems.join('; '), err);
    throw err;
  }
  return payload;
}

async function loadDefinition(spec: RoleSpec, cwd: string): Promise<ParticipantInfo> {
  let text: string;
  try {
    text = await readFile(path.resolve(cwd, spec.file), 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw definitionError(spec.file, `cannot read it (${why})`, err);
  }
  let definition: unknown;
  try {
    definition = parseYaml(text);
  } catch (err) {
    throw definitionError(spec.file, `not valid YAML: ${(err as Error).message.split('\n')[0]}`, err);
  }
  return foreignParticipant(spec.role, definition, spec.file);
}

function describe(p: ParticipantInfo): string {
  const queues = (ports: PortDefinition[]) => ports.map((port) => port.queue).join(', ') || '-';
  return `${p.role} (${p.component}, id ${p.id}): in ${queues(p.inports)}; out ${queues(p.outports)}`;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<Values>(
    normalizeBooleanFlag(argv, 'forever'),
    {
      role: { type: 'string', multiple: true, short: 'r' },
      broker: { type: 'string', short: 'b' },
      interval: { type: 'string', short: 'i' },
      forever: { type: 'string' },
    },
    USAGE,
    io,
    COMMAND,
  );
  if (typeof parsed === 'number') return parsed;

  let broker: string;
  let specs: RoleSpec[];
  let interval: number;
  let forever: boolean;
  try {
    const settings = loadSettings(io.env, { broker: parsed.values.broker });
    if (parsed.positionals.length) throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`, COMMAND);
    specs = (parsed.values.role ?? []).map(parseRoleSpec);
    if (!specs.length) throw new UsageError('give at least one --role ROLE:FILE', COMMAND);
    const roles = new Set<string>();
    for (const { role } of specs) {
      if (roles.has(role)) throw new UsageError(`role '${role}' is given twice`, COMMAND);
      roles.add(role);
    }
    const rawInterval = parsed.values.interval;
    interval = rawInterval === undefined ? LEGACY_DISCOVERY_PERIOD : Number(rawInterval);
    if (rawInterval !== undefined && (rawInterval.trim() === '' || !Number.isFinite(interval) || interval <= 0)) {
      throw new UsageError(`--interval must be a positive number of seconds, got '${rawInterval}'`, COMMAND);
    }
    forever = booleanOption(parsed.values.forever, '--forever', true, COMMAND);
    broker = requireBroker(settings, COMMAND);
  } catch (err) {
    return reportError(err, io, COMMAND);
  }

  const heartbeat = heartbeatForPeriod(interval);
  let transport: Transport | undefined;
  try {
    // Check every definition before connecting: nothing is announced when one of them is wrong.
    const participants = await Promise.all(specs.map((spec) => loadDefinition(spec, io.cwd)));
    const messages: DiscoveryMessage[] = participants.map((p) => discoveryMessage(forever ? { ...p, heartbeat } : p));
    const ttlMs = interval * 1000;

    if (!forever) {
      transport = await connectTransport(broker, { name: COMMAND });
      for (const message of messages) {
        await transport.announce(message, { ttlMs });
        io.stdout.write(`announced ${describe(message.payload)}\n`);
      }
      return EXIT.OK;
    }

    const connect = () =>
      connectWithRetry(broker, {
        name: COMMAND,
        signal: io.signal,
        onRetry: (err, inMs) => io.stderr.write(`${COMMAND}: ${err.message.split('\n')[0]}; retrying in ${inMs} ms\n`),
      });
    transport = await connect();
    io.stdout.write(`${COMMAND}: connected to ${transport.url}; announcing every ${+heartbeat.toFixed(3)} s until stopped\n`);
    const announced = new Set<string>();
    while (!io.signal.aborted) {
      for (const message of messages) {
        let sent = false;
        // A second attempt only after a reconnect; any other failure waits for the next heartbeat.
        for (let attempt = 0; attempt < 2 && !sent && !io.signal.aborted; attempt++) {
          try {
            await transport.announce(message, { ttlMs });
            sent = true;
          } catch (err) {
            if (io.signal.aborted) break;
            io.stderr.write(`${COMMAND}: announcing ${message.payload.role} failed: ${reasonOf(err)}\n`);
            if (!(err instanceof TransportClosedError)) break;
            // The connection is gone for good (AMQP does not reconnect by itself): make a new one.
            await transport.close().catch(() => {});
            transport = undefined;
            transport = await connect();
            io.stderr.write(`${COMMAND}: reconnected to ${transport.url}\n`);
          }
        }
        if (!sent) continue;
        if (!announced.has(message.payload.role)) {
          announced.add(message.payload.role);
          io.stdout.write(`announced ${describe(message.payload)}\n`);
        }
      }
      await delay(heartbeat * 1000, io.signal).catch(() => {});
    }
    return EXIT.OK;
  } catch (err) {
    // Stopped while waiting for the broker: that is what the user asked for.
    if (io.signal.aborted && forever && !(err instanceof MsgfloError && err.code === ErrorCodes.PARTICIPANT_DEFINITION)) return EXIT.OK;
    return reportError(err, io, COMMAND);
  } finally {
    await transport?.close().catch(() => {});
  }
}
