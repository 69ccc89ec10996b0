/**
 * `msgflo-trace`: the spy and trace of many participants, live on one screen, as if every chart ran in one
 * process (miros's networked instrumentation, for a whole msgflo network).
 */
import { UsageError } from '../errors.js';
import { type NetworkWatcher, watchNetwork } from '../participant/watch.js';
import { loadSettings } from '../settings.js';
import type { Transport } from '../transport/types.js';
import { connectWithRetry, listOption, parseCli, reportError, requireBroker } from './common.js';
import { type CliIO, EXIT } from './io.js';

const COMMAND = 'msgflo-trace';

const USAGE = `Usage: ${COMMAND} [--broker URL] [--role ROLE,...] [--spy] [--trace] [--json]
                    [--sequence] [--no-enable] [--duration S] [--count N] [--no-color]

Show the spy and trace lines of the participants of a network, live, one line
each, coloured by participant. While it runs it switches spy/trace on in the
participants it watches (a lease it renews; they switch off again when it
stops, or within 30 s if it dies).

Spy lines (miros format):  START, SEARCH_FOR_SUPER_SIGNAL:s, ENTRY_SIGNAL:s,
  INIT_SIGNAL:s, <SIGNAL>:s, <SIGNAL>:s:HOOK, EXIT_SIGNAL:s,
  <- Queued:(n) Deferred:(m)
Trace lines:  [YYYY-MM-DD HH:MM:SS.ffffff] [role] e->SIGNAL() from->to

Options:
  --role ROLE      watch only these roles (repeat, or a comma-separated list)
  --spy            spy lines only
  --trace          trace lines only (default: both)
  --json           one JSON object per line, for programs:
                     {"kind":"spy","role","id","line"}
                     {"kind":"trace","role","id","line","t","signal","from","to"}
  --sequence       when done, print the trace as a text sequence diagram per
                   participant (with --json: as {"kind":"sequence","text"})
  --no-enable      only listen; do not switch spy/trace on (for participants
                   run with --spy/--trace or MSGFLO_SPY/MSGFLO_TRACE)
  --duration S     stop after S seconds
  --count N        stop after N lines
  --no-color       no colours (also when NO_COLOR is set or --json is given)
  --broker URL     broker (default: MSGFLO_BROKER)
  -h, --help       show this help

Stops on SIGINT/SIGTERM (then prints --sequence). With MSGFLO_KEY set the
lines are decrypted with the network key.

Examples:
  ${COMMAND} --broker amqp://localhost
  ${COMMAND} --broker mqtt://localhost --role producer --trace --sequence`;

interface Values {
  broker?: string;
  role?: string[];
  spy?: boolean;
  trace?: boolean;
  json?: boolean;
  sequence?: boolean;
  'no-enable'?: boolean;
  duration?: string;
  count?: string;
  'no-color'?: boolean;
}

/** Readable on dark and light terminals. */
const COLOURS = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92, 94, 91];

function colourOf(role: string): number {
  let h = 0;
  for (const ch of role) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLOURS[h % COLOURS.length]!;
}

function positive(value: string | undefined, option: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${option} must be a positive ${integer ? 'integer' : 'number'}, got '${value}'`, COMMAND);
  }
  return n;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<Values>(
    argv,
    {
      broker: { type: 'string' },
      role: { type: 'string', multiple: true },
      spy: { type: 'boolean' },
      trace: { type: 'boolean' },
      json: { type: 'boolean' },
      sequence: { type: 'boolean' },
      'no-enable': { type: 'boolean' },
      duration: { type: 'string' },
      count: { type: 'string' },
      'no-color': { type: 'boolean' },
    },
    USAGE,
    io,
    COMMAND,
  );
  if (typeof parsed === 'number') return parsed;
  if (parsed.positionals.length > 0) {
    io.stderr.write(`${COMMAND}: unexpected argument '${parsed.positionals[0]}'\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const v = parsed.values;
  let transport: Transport | undefined;
  let watcher: NetworkWatcher | undefined;
  try {
    const settings = loadSettings(io.env, { broker: v.broker });
    const duration = positive(v.duration, '--duration', false);
    const count = positive(v.count, '--count', true);
    const roles = listOption(v.role);
    const both = !v.spy && !v.trace;
    const spy = both || v.spy === true;
    const trace = both || v.trace === true;
    const json = v.json === true;
    const colour = !json && !v['no-color'] && io.env.NO_COLOR === undefined;
    const broker = requireBroker(settings, COMMAND);

    transport = await connectWithRetry(broker, {
      name: COMMAND,
      env: io.env,
      signal: io.signal,
      onRetry: (err, inMs) => io.stderr.write(`${COMMAND}: ${err.message.split('\n')[0]}; retrying in ${inMs} ms\n`),
    });
    const width = Math.max(8, ...roles.map((r) => r.length));
    const label = (role: string) => {
      const padded = role.padEnd(width);
      return colour ? `\u001b[${colourOf(role)}m${padded}\u001b[0m` : padded;
    };

    let printed = 0;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const counted = () => {
      printed++;
      if (count !== undefined && printed >= count) finish();
    };

    watcher = await watchNetwork(transport, { roles: roles.length ? roles : undefined, spy, trace, enable: !v['no-enable'] });
    watcher.on('spy', (e) => {
      if (count !== undefined && printed >= count) return;
      io.stdout.write(json ? `${JSON.stringify({ kind: 'spy', role: e.role, id: e.id, line: e.line })}\n` : `${label(e.role)} spy   ${e.line}\n`);
      counted();
    });
    watcher.on('trace', (e) => {
      if (count !== undefined && printed >= count) return;
      io.stdout.write(
        json
          ? `${JSON.stringify({ kind: 'trace', role: e.role, id: e.id, line: e.line, t: e.t, signal: e.signal, from: e.from, to: e.to })}\n`
          : `${label(e.role)} trace ${e.line}\n`,
      );
      counted();
    });
    watcher.on('dropped', (e) => {
      const text = `${e.count} ${e.channel} line(s) of ${e.role} (${e.id}) were dropped`;
      if (json) io.stdout.write(`${JSON.stringify({ kind: 'dropped', role: e.role, id: e.id, channel: e.channel, count: e.count })}\n`);
      else io.stderr.write(`${COMMAND}: ${text}\n`);
    });
    watcher.on('invalid', (e) => io.stderr.write(`${COMMAND}: ignored a ${e.channel} message from ${e.role} that is not one\n`));
    io.stderr.write(`${COMMAND}: watching ${roles.length ? roles.join(', ') : 'every participant'} on ${transport.url}\n`);

    const timer = duration !== undefined ? setTimeout(finish, duration * 1000) : undefined;
    const onAbort = () => finish();
    io.signal.addEventListener('abort', onAbort, { once: true });
    if (io.signal.aborted) finish();
    await done;
    clearTimeout(timer);
    io.signal.removeEventListener('abort', onAbort);

    if (v.sequence) {
      const text = watcher.sequence();
      io.stdout.write(json ? `${JSON.stringify({ kind: 'sequence', text })}\n` : `${text}\n`);
    }
    await watcher.close();
    await transport.close();
    return EXIT.OK;
  } catch (err) {
    await watcher?.close().catch(() => {});
    await transport?.close().catch(() => {});
    if (io.signal.aborted) return EXIT.OK;
    return reportError(err, io, COMMAND);
  }
}
