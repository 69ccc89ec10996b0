/**
 * `msgflo-dump-message`: print messages from a queue, one JSON document per line.
 *
 * As in msgflo 0.12 an existing inqueue is *consumed*: the messages are taken from it (acked once printed).
 * Unlike msgflo it can also *tap* an outqueue (an AMQP fanout exchange such as `role.OUT`) through a private
 * temporary queue, which takes nothing from the participants bound to it; `--tap` asks for that explicitly.
 */
import { ErrorCodes, MsgfloError, QueueNotFoundError, TimeoutError, TransportClosedError, UsageError, reasonOf } from '../errors.js';
import { loadSettings } from '../settings.js';
import { connectTransport } from '../transport/index.js';
import type { Delivery, InMessage, Transport } from '../transport/types.js';
import { parseCli, reportError, requireBroker } from './common.js';
import { type CliIO, EXIT } from './io.js';
import { checkQueueName } from './send.js';

const COMMAND = 'msgflo-dump-message';

/** RabbitMQ's prefetch count is a 16-bit number. */
const MAX_PREFETCH = 65_535;

const USAGE = `Usage: ${COMMAND} --queue QUEUE [--amount N] [--tap] [--timeout S] [--broker URL]

Print N messages from QUEUE on stdout, one JSON document per line, then exit.
A body that is not JSON is printed as a JSON string.

  - QUEUE is an inqueue (e.g. repeat.IN): the messages are consumed, i.e.
    taken from the queue (acked once printed), as msgflo did.
  - QUEUE is an outqueue (e.g. repeat.OUT, an AMQP exchange), or --tap is
    given: the queue is tapped through a private temporary queue; the
    participants reading it still get every message.
  - On MQTT the topic QUEUE is subscribed (nothing is taken from anyone).

Options:
  --queue QUEUE    queue, outqueue or topic to read
  --amount N       messages to print before exiting (default 1)
  --tap            observe instead of consuming (on AMQP a tapped inqueue shows
                   what is sent to its same-named exchange, not what arrives
                   through bindings: tap the outqueue bound to it instead)
  --timeout S      give up after S seconds (exit 1) when fewer than N arrived;
                   default: wait until N arrived or until interrupted
  --broker URL     broker (default: MSGFLO_BROKER), e.g. amqp://user:pass@host
  -h, --help       show this help

Exit status: 0 N messages printed, or interrupted (SIGINT/SIGTERM) after at
least one; 1 interrupted before any message, --timeout expired, the queue
does not exist, or the broker failed; 2 bad usage.

Examples:
  ${COMMAND} --broker amqp://localhost --queue repeat.IN --amount 3
  ${COMMAND} --broker amqp://localhost --queue repeat.OUT --timeout 10`;

interface Values {
  queue?: string;
  amount?: string;
  broker?: string;
  tap?: boolean;
  timeout?: string;
}

/** A positive number given as an option value, or a UsageError. */
function positive(value: string, option: string, integer: boolean): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${option} must be a positive ${integer ? 'integer' : 'number'}, got '${value}'`, COMMAND);
  }
  return n;
}

/** One line of output: the message as JSON (a non-JSON body as a JSON string). */
function line(message: InMessage): string {
  return `${JSON.stringify(message.data === undefined ? null : message.data)}\n`;
}

function plural(n: number): string {
  return n === 1 ? 'message' : 'messages';
}

type Outcome = { kind: 'done' } | { kind: 'interrupted' } | { kind: 'timeout' } | { kind: 'failed'; error: unknown };

/**
 * Receives messages until `amount` have been printed, then settles `finished`.
 *
 * When consuming it never takes more than it prints: the prefetch is at most `amount`, and a delivery is acked
 * at once only while the broker cannot have sent more than `amount` in total (acked + prefetch); the others are
 * acked when the last one has arrived.
 */
class Dumper {
  printed = 0;
  private acked = 0;
  private readonly held: Delivery[] = [];
  private settle: ((outcome: Outcome) => void) | undefined;
  readonly finished: Promise<Outcome>;
  private done = false;
  private readonly io: CliIO;
  private readonly amount: number;
  readonly prefetch: number;

  constructor(io: CliIO, amount: number, prefetch: number) {
    this.io = io;
    this.amount = amount;
    this.prefetch = prefetch;
    this.finished = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** Whether the outcome is known (all printed, interrupted, timed out or failed). */
  get isDone(): boolean {
    return this.done;
  }

  finish(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    this.settle?.(outcome);
  }

  /** A message observed through a tap. */
  onMessage = (message: InMessage): void => {
    if (this.done || this.printed >= this.amount) return;
    this.print(message);
    if (this.printed >= this.amount) this.finish({ kind: 'done' });
  };

  /** A message consumed from an inqueue. */
  onDelivery = (delivery: Delivery): void => {
    // Not acked: it goes back to the queue when we close.
    if (this.done || this.printed >= this.amount) return;
    this.print(delivery);
    if (this.printed >= this.amount) {
      const last = [...this.held.splice(0), delivery];
      void Promise.all(last.map((d) => d.ack())).then(
        () => this.finish({ kind: 'done' }),
        (error: unknown) => this.finish({ kind: 'failed', error }),
      );
    } else if (this.acked + 1 + this.prefetch <= this.amount) {
      this.acked++;
      void delivery.ack().catch((error: unknown) => this.finish({ kind: 'failed', error }));
    } else {
      this.held.push(delivery);
    }
  };

  /**
   * Ack what was printed but held back (when stopping early): printed messages must not come back to the queue
   * and be dumped twice. Resolves with the failure, if any.
   */
  async ackPrinted(): Promise<unknown> {
    const held = this.held.splice(0);
    const results = await Promise.allSettled(held.map((d) => d.ack()));
    return results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason;
  }

  private print(message: InMessage): void {
    this.printed++;
    this.io.stdout.write(line(message));
  }
}

/** Decide how to read `queue`: consume an inqueue, or tap an outqueue. Returns what it does, for the log. */
async function open(transport: Transport, queue: string, tap: boolean, dumper: Dumper): Promise<string> {
  const isInqueue = await transport.queueExists('inqueue', queue);
  const topic = !transport.brokerBindings;
  if (!tap && isInqueue) {
    await transport.subscribe(queue, dumper.onDelivery, { prefetch: dumper.prefetch });
    return topic ? `subscribed to topic '${queue}'` : `consuming inqueue '${queue}'`;
  }
  if (await transport.queueExists('outqueue', queue)) {
    await transport.tap(isInqueue ? 'inqueue' : 'outqueue', queue, dumper.onMessage);
    return topic ? `subscribed to topic '${queue}'` : `tapping ${isInqueue ? 'inqueue' : 'outqueue'} '${queue}'`;
  }
  if (isInqueue) {
    throw new MsgfloError(ErrorCodes.QUEUE_NOT_FOUND, `Queue '${queue}' has no exchange of the same name to tap`, {
      hint: 'It was not declared by a msgflo participant; drop --tap to consume it instead.',
    });
  }
  throw new QueueNotFoundError(queue);
}

/**
 * Connect, unless the dump ends first (timeout, signal): then the connection, once made, is closed again and
 * undefined is returned.
 */
async function connectUnlessDone(broker: string, dumper: Dumper): Promise<Transport | undefined> {
  const connecting = connectTransport(broker, { name: COMMAND });
  const first = await Promise.race([connecting, dumper.finished.then(() => undefined)]);
  if (first) return first;
  void connecting.then(
    (t) => t.close(),
    () => {},
  );
  return undefined;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<Values>(
    argv,
    {
      queue: { type: 'string', short: 'q' },
      amount: { type: 'string', short: 'n' },
      broker: { type: 'string', short: 'b' },
      tap: { type: 'boolean' },
      timeout: { type: 'string', short: 't' },
    },
    USAGE,
    io,
    COMMAND,
  );
  if (typeof parsed === 'number') return parsed;
  const { queue, tap = false } = parsed.values;

  let broker: string;
  let amount: number;
  let timeoutS: number | undefined;
  try {
    const settings = loadSettings(io.env, { broker: parsed.values.broker });
    if (parsed.positionals.length) throw new UsageError(`unexpected argument '${parsed.positionals[0]}'`, COMMAND);
    if (!queue) throw new UsageError('missing --queue QUEUE', COMMAND);
    amount = parsed.values.amount === undefined ? 1 : positive(parsed.values.amount, '--amount', true);
    timeoutS = parsed.values.timeout === undefined ? undefined : positive(parsed.values.timeout, '--timeout', false);
    broker = requireBroker(settings, COMMAND);
    checkQueueName(broker, queue, COMMAND);
  } catch (err) {
    return reportError(err, io, COMMAND);
  }

  const dumper = new Dumper(io, amount, Math.min(amount, MAX_PREFETCH));
  let transport: Transport | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (): void => dumper.finish({ kind: 'interrupted' });
  try {
    if (io.signal.aborted) onAbort();
    else io.signal.addEventListener('abort', onAbort, { once: true });
    // The timeout bounds the whole wait, connecting included.
    if (timeoutS !== undefined) timer = setTimeout(() => dumper.finish({ kind: 'timeout' }), timeoutS * 1000);
    if (!dumper.isDone) transport = await connectUnlessDone(broker, dumper);
    if (transport && !dumper.isDone) {
      const t = transport;
      t.on((event) => {
        // AMQP does not resume consumers after a lost connection; MQTT reconnects and resumes by itself.
        if (event.type === 'disconnect' && t.scheme === 'amqp') {
          dumper.finish({ kind: 'failed', error: new TransportClosedError('receive messages', { cause: event.error }) });
        } else if (event.type === 'error' && event.error instanceof MsgfloError) {
          dumper.finish({ kind: 'failed', error: event.error });
        } else if (event.type === 'disconnect') {
          io.stderr.write(`${COMMAND}: connection to ${t.url} lost, reconnecting\n`);
        }
      });
      const what = await open(t, queue, tap, dumper);
      io.stderr.write(`${COMMAND}: ${what} on ${t.url}, waiting for ${amount} ${plural(amount)}\n`);
    }

    const outcome = await dumper.finished;
    if (outcome.kind !== 'done') {
      const failure = await dumper.ackPrinted();
      if (failure !== undefined && outcome.kind !== 'failed') {
        io.stderr.write(`${COMMAND}: printed messages could not be acked and may be delivered again: ${reasonOf(failure)}\n`);
      }
    }
    const got = `${dumper.printed} of ${amount} ${plural(amount)} from '${queue}'`;
    if (outcome.kind === 'done') return EXIT.OK;
    if (outcome.kind === 'interrupted') {
      io.stderr.write(`${COMMAND}: interrupted: got ${got}\n`);
      return dumper.printed > 0 ? EXIT.OK : EXIT.FAIL;
    }
    if (outcome.kind === 'timeout') {
      throw new TimeoutError(`got ${got}`, timeoutS ?? 0, `Check that something sends to '${queue}', or raise --timeout.`);
    }
    throw outcome.error;
  } catch (err) {
    return reportError(err, io, COMMAND);
  } finally {
    if (timer) clearTimeout(timer);
    io.signal.removeEventListener('abort', onAbort);
    await transport?.close().catch(() => {});
  }
}
