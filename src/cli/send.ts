/**
 * `msgflo-send-message`: publish one JSON message to a queue and wait for the broker's confirm.
 *
 * Unlike msgflo 0.12 (whose bin could not even load its module) this one works, confirms delivery, reports a
 * missing queue instead of silently dropping the message, and can also emit on an outqueue, as if a
 * participant's outport had sent the message (so it follows the bindings of that outport).
 */
import { BadJsonError, UsageError } from '../errors.js';
import { loadSettings } from '../settings.js';
import { connectTransport } from '../transport/index.js';
import type { QueueKind, Transport } from '../transport/types.js';
import { parseCli, reportError, requireBroker } from './common.js';
import { type CliIO, EXIT } from './io.js';

const COMMAND = 'msgflo-send-message';

const USAGE = `Usage: ${COMMAND} --queue QUEUE --json JSON [--broker URL] [--outqueue]

Send one JSON message to QUEUE and wait until the broker has confirmed it.
Prints "sent to QUEUE" on success.

Options:
  --queue QUEUE    inqueue to send to, e.g. repeat.IN (queues are <role>.<PORT>)
  --json JSON      the message, as JSON (checked before connecting)
  --outqueue       send to the outqueue QUEUE instead, as if a participant's
                   outport emitted it (e.g. repeat.OUT): every queue bound to
                   it gets a copy
  --broker URL     broker (default: MSGFLO_BROKER), e.g. amqp://user:pass@host
  -h, --help       show this help

Exit status: 0 sent and confirmed; 1 the broker is unreachable, refused the
credentials, or the queue does not exist (on AMQP; MQTT topics always exist);
2 bad usage or invalid JSON.

Example:
  ${COMMAND} --broker amqp://localhost --queue repeat.IN --json '{"hello": "world"}'`;

const MQTT_SCHEMES = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:']);

/**
 * Refuse, as a usage error and before connecting, a queue name that the broker's transport cannot use: on MQTT a
 * queue is a topic name, which may not contain the wildcards `+` and `#` (nor NUL).
 */
export function checkQueueName(broker: string, queue: string, command: string): void {
  let scheme = '';
  try {
    scheme = new URL(broker).protocol;
  } catch {
    return; // the transport reports a bad URL
  }
  if (MQTT_SCHEMES.has(scheme) && /[+#\u0000]/.test(queue)) {
    throw new UsageError(`'${queue}' cannot be an MQTT topic: a queue name may not contain the wildcards + and #`, command);
  }
}

interface Values {
  queue?: string;
  json?: string;
  broker?: string;
  outqueue?: boolean;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<Values>(
    argv,
    { queue: { type: 'string', short: 'q' }, json: { type: 'string', short: 'j' }, broker: { type: 'string', short: 'b' }, outqueue: { type: 'boolean' } },
    USAGE,
    io,
    COMMAND,
  );
  if (typeof parsed === 'number') return parsed;
  const { queue, json, outqueue } = parsed.values;

  let data: unknown;
  let broker: string;
  try {
    const settings = loadSettings(io.env, { broker: parsed.values.broker });
    if (parsed.positionals.length) throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`, COMMAND);
    if (!queue) throw new UsageError('missing --queue QUEUE', COMMAND);
    if (json === undefined) throw new UsageError('missing --json JSON', COMMAND);
    try {
      data = JSON.parse(json);
    } catch (err) {
      throw new BadJsonError('--json', { cause: err });
    }
    broker = requireBroker(settings, COMMAND);
    checkQueueName(broker, queue, COMMAND);
  } catch (err) {
    const code = reportError(err, io, COMMAND);
    // Invalid JSON is the user's input, like any other usage error: exit 2.
    return err instanceof BadJsonError ? EXIT.USAGE : code;
  }

  const kind: QueueKind = outqueue ? 'outqueue' : 'inqueue';
  let transport: Transport | undefined;
  try {
    transport = await connectTransport(broker, { name: COMMAND });
    await transport.send(kind, queue, data);
    io.stdout.write(`sent to ${queue}\n`);
    return EXIT.OK;
  } catch (err) {
    return reportError(err, io, COMMAND);
  } finally {
    await transport?.close().catch(() => {});
  }
}
