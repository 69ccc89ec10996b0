import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  DecryptError,
  ErrorCodes,
  HandlerError,
  InstanceConflictError,
  MsgfloError,
  UnknownPortError,
  UsageError,
  codeOf,
  reasonOf,
} from '../errors.js';
import { discoveryMessage, type ParticipantInfo } from '../protocol/discovery.js';
import { HEADER } from '../protocol/envelope.js';
import { readSetting } from '../settings.js';
import type { Delivery, Subscription, Transport } from '../transport/types.js';
import { type Clock, systemClock } from '../util/clock.js';
import { lifetime } from '../util/dispose.js';
import { logger } from '../util/logger.js';
import { settledWithin } from '../util/within.js';
import { functionBehaviour, statechartBehaviour } from './chart.js';
import {
  type Behaviour,
  type BehaviourRuntime,
  type InputMeta,
  type ParticipantDefinition,
  checkDefinition,
} from './definition.js';
import { HandlerTimeouts, InputRun } from './input-run.js';
import { DEFAULT_HEARTBEAT_SECONDS, LIBRARY_ID, type ParticipantEvents, type ParticipantOptions, heartbeatOf, heartbeatSeconds } from './options.js';
import { type ResolvedPort, bodyRefusal, resolvePort, schemaRefusal } from './input-check.js';
import { describeDefinition, outportsOf } from './ports.js';
import { Snooper } from './snoop.js';
import { MAX_HELD_SENDS, StartGate, startWaitMs } from './start-gate.js';

const log = logger('participant');

export { DEFAULT_HEARTBEAT_SECONDS, LIBRARY_ID, type ParticipantEvents, type ParticipantOptions, heartbeatOf, heartbeatSeconds };

/** How long stop() waits, in all, for the steps that need the broker (unsubscribe, goodbye, close). */
const STOP_BROKER_MS = 3000;

/** Wait for a broker step of stop() until `deadline` at most; its failure is ignored (we are leaving anyway). */
async function brokerStep(work: Promise<unknown>, deadline: number): Promise<void> {
  await settledWithin(Math.max(0, deadline - Date.now()), work);
}

/**
 * A running participant: owns its ports on the broker, announces itself (and keeps announcing: heartbeats),
 * feeds each input to its behaviour and settles the input exactly once, whatever the behaviour does.
 */
export class Participant<In extends string = string, Out extends string = string> extends EventEmitter<ParticipantEvents> {
  readonly role: string;
  readonly id: string;
  readonly definition: ParticipantDefinition<In, Out>;
  readonly heartbeat: number;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly behaviour: Behaviour<In, Out>;
  /** This participant's spy/trace publisher: `participant.snoop.setLocal({spy: true})` switches spy on. */
  readonly snoop: Snooper;
  private readonly inports = new Map<string, ResolvedPort>();
  private readonly outports = new Map<string, ResolvedPort>();
  private readonly subscriptions: Subscription[] = [];
  private readonly options: ParticipantOptions;
  private timer: unknown;
  private unlisten: (() => void) | undefined;
  /** The connection is lost right now: stop() then does not wait for broker steps that cannot succeed. */
  private brokerLost = false;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  /** Inputs whose handler runs, with their deadline (see sweepTimeouts). */
  private readonly timeouts: HandlerTimeouts;
  private readonly handlerTimeoutMs: number;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private readonly life = lifetime();
  /** Holds what sources send until the edges are bound (see StartGate). */
  private readonly gate: StartGate;

  constructor(definition: ParticipantDefinition<In, Out>, transport: Transport, options: ParticipantOptions) {
    super();
    checkDefinition(definition as unknown);
    this.definition = definition;
    this.transport = transport;
    this.options = options;
    this.role = options.role;
    this.id = options.id ?? `${options.role}-${randomUUID()}`;
    this.clock = options.clock ?? systemClock;
    this.heartbeat = heartbeatSeconds(options);
    this.handlerTimeoutMs = options.handlerTimeoutMs ?? 60_000;
    this.timeouts = new HandlerTimeouts(this.clock, this.handlerTimeoutMs, (run) =>
      // The plain Error is only the reason inside the coded HandlerError.
      this.failInput(run, new HandlerError(this.role, run.port, { cause: new Error(`handler did not finish within ${this.handlerTimeoutMs} ms`) })),
    );
    this.behaviour = definition.machine
      ? statechartBehaviour<In, Out>(definition.machine)
      : definition.process
        ? functionBehaviour(definition.process)
        : definition.behaviour!();
    const env = options.env ?? process.env;
    const waitMs = startWaitMs(options);
    this.gate = new StartGate({
      clock: this.clock,
      waitMs,
      holdMs: Math.max(waitMs, this.heartbeat * 3000),
      maxHeld: MAX_HELD_SENDS,
      onOpen: (reason) => log('%s: sources send now: %s', this.role, reason),
    });
    this.snoop = new Snooper(transport, {
      role: this.role,
      id: this.id,
      clock: this.clock,
      spy: options.snoop?.spy ?? readSetting(env, 'spy'),
      trace: options.snoop?.trace ?? readSetting(env, 'trace'),
      onBound: (bound) => this.gate.notice(bound),
    });
    for (const p of definition.inports) this.inports.set(p.id, resolvePort(this.role, p));
    for (const p of outportsOf(definition)) this.outports.set(p.id, resolvePort(this.role, p));
  }

  /** The discovery payload this participant announces. Hidden ports are left out, as msgflo does. */
  info(): ParticipantInfo {
    const { component, inports, outports, label, icon } = describeDefinition(this.definition, this.role);
    const info: ParticipantInfo = { id: this.id, role: this.role, component, inports, outports, heartbeat: this.heartbeat, library: LIBRARY_ID };
    if (label) info.label = label;
    if (icon) info.icon = icon;
    return info;
  }

  /**
   * Declare the ports, start consuming, announce, and keep announcing every `heartbeat` seconds. What the participant
   * sends outside broker inputs from then on is held until its edges are bound (see StartGate).
   */
  async start(): Promise<void> {
    if (this.state !== 'new') {
      throw new UsageError(`participant '${this.role}' is already started`, undefined, 'A Participant starts once: create a new one to start again.');
    }
    this.state = 'running';
    for (const p of this.outports.values()) if (p.queue) await this.transport.createQueue('outqueue', p.queue, { persistent: !p.fast });
    // On a keyed network, inputs that do not decrypt are dead-lettered by the transport: report them as failed.
    this.unlisten = this.transport.on((event) => {
      if (event.type === 'disconnect') this.brokerLost = true;
      if (event.type === 'reconnect') this.brokerLost = false;
      if (event.type !== 'error') return;
      // MQTT: another process took this instance's session; the transport does not fight back. Say so.
      if (event.error instanceof InstanceConflictError) {
        if (this.listenerCount('error') > 0) this.emit('error', event.error);
        return;
      }
      if (!(event.error instanceof DecryptError)) return;
      const queue = (event.error as DecryptError & { queue?: string }).queue;
      const port = [...this.inports.values()].find((p) => p.queue !== undefined && p.queue === queue);
      if (port) this.emit('failed', port.id, event.error);
    });
    await this.snoop.start().catch((err: Error) => log('%s: cannot listen on the snoop channel: %s', this.role, err.message));
    this.snoop.beginStart();
    try {
      await this.ownStart('its chart', () => this.behaviour.start?.(this.behaviourRuntime()));
    } finally {
      this.snoop.endStart();
    }
    for (const p of this.inports.values()) {
      if (!p.queue) continue;
      await this.transport.createQueue('inqueue', p.queue, { persistent: !p.fast });
      const sub = await this.transport.subscribe(p.queue, (d) => void this.onDelivery(p, d), {
        prefetch: this.options.prefetch ?? 50,
        group: this.role,
      });
      this.subscriptions.push(sub);
    }
    await this.announce();
    this.gate.arm();
    await this.ownStart('start()', () => this.definition.start?.((port, data) => this.emitOutput(port, data), { role: this.role }));
    this.timer = this.clock.setInterval(() => {
      this.announce().catch((err: Error) => {
        log('%s: heartbeat failed: %s', this.role, err.message);
        this.emit('error', err);
      });
    }, this.heartbeat * 1000);
    log('%s (%s) started, heartbeat every %ss', this.role, this.definition.component, this.heartbeat);
  }

  /** Run the participant's own start code (its chart's initial state, its start function); what it throws becomes coded. */
  private async ownStart(what: string, run: () => void | Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (err instanceof MsgfloError) throw err;
      throw new MsgfloError(ErrorCodes.HANDLER, `Participant '${this.role}' failed to start: ${what} threw: ${reasonOf(err)}`, {
        cause: err,
        hint: "Fix the participant's start: the entry actions of its chart's initial state, or its start() function.",
      });
    }
  }

  private behaviourRuntime(): BehaviourRuntime {
    return {
      role: this.role,
      send: (port, data) => this.emitOutput(port as Out, data),
      snoop: this.snoop,
      clock: this.clock,
      fail: (err, signal) => {
        const error = err instanceof MsgfloError ? err : new HandlerError(this.role, signal, { cause: err });
        log('%s: chart failed outside an input (%s): %s', this.role, signal, reasonOf(error));
        this.sendError(signal, undefined, error).catch(() => {});
        // An 'error' event nobody listens to would throw: this one is reported on the error port already.
        if (this.listenerCount('error') > 0) this.emit('error', error);
      },
    };
  }

  /** Send the discovery message now. */
  announce(): Promise<void> {
    return this.transport.announce(discoveryMessage(this.info()), { ttlMs: Math.max(60_000, this.heartbeat * 3000) });
  }

  /**
   * Feed data to an inport from inside the process (sources use hidden inports). Resolves when handled, its outputs
   * included: like every source's, those are held until the edges are bound (see StartGate).
   */
  async send(port: In, data: unknown): Promise<void> {
    const p = this.inports.get(port);
    if (!p) throw new UnknownPortError(this.role, port, [...this.inports.keys()], 'inport');
    const meta: InputMeta = { id: undefined, headers: {}, redelivered: false, role: this.role };
    await new Promise<void>((resolve, reject) => this.handleInput(p, data, meta, (failed, err) => (failed ? reject(err) : resolve()), true));
  }

  private onDelivery(port: ResolvedPort, delivery: Delivery): void {
    // Whoever sends to this participant has its network running: what its sources held may go.
    this.gate.open('an input arrived');
    const refused = bodyRefusal(this.role, port, delivery);
    if (refused) {
      void this.refuse(port, delivery, refused);
      return;
    }
    const meta: InputMeta = { id: delivery.id, headers: delivery.headers, redelivered: delivery.redelivered, role: this.role };
    this.handleInput(port, delivery.data, meta, (failed, err) => {
      if (failed) void this.refuse(port, delivery, err);
      else delivery.ack().catch((e: unknown) => this.refuse(port, delivery, e));
    }, false);
  }

  /** An input that failed: reported on the error port, dead-lettered with its reason. */
  private async refuse(port: ResolvedPort, delivery: Delivery, err: unknown): Promise<void> {
    const error = err instanceof MsgfloError ? err : new HandlerError(this.role, port.id, { cause: err });
    log('%s: input on %s failed: %s', this.role, port.id, reasonOf(error));
    await this.sendError(port.id, delivery.data, error).catch(() => {});
    await delivery.nack(reasonOf(error), codeOf(error)).catch((e: Error) => this.emit('error', e));
    this.emit('failed', port.id, error);
  }

  /**
   * Run the behaviour for one input. `done` hears once: success when the handler finished and its outputs are
   * confirmed; failure if it threw, sent to an unknown port, a send failed, or it ran past the handler timeout (then
   * once the sends it made have settled, so none is left unconfirmed when the input is dead-lettered).
   */
  private handleInput(port: ResolvedPort, data: unknown, meta: InputMeta, done: (failed: boolean, err?: unknown) => void, local: boolean): void {
    const misfit = schemaRefusal(this.role, port, data);
    if (misfit) {
      done(true, misfit);
      return;
    }
    this.inFlight++;
    const run = new InputRun(port.id, this.clock.now() + this.handlerTimeoutMs, done, local);
    this.timeouts.watch(run);
    const send = (out: Out, value: unknown): void => this.sendFromInput(run, meta, out, value);
    let handled: Promise<void>;
    try {
      handled = this.behaviour.handle({ type: port.id as In, data, meta }, send);
    } catch (err) {
      this.failInput(run, err);
      return;
    }
    handled.then(
      () => this.handlerDone(run),
      (err: unknown) => this.failInput(run, err),
    );
  }

  private sendFromInput(run: InputRun, meta: InputMeta, out: Out, value: unknown): void {
    const p = this.outports.get(out);
    if (!p) {
      const err = new UnknownPortError(this.role, out, [...this.outports.keys()], 'outport');
      if (run.finished) this.emit('error', err);
      else run.sendError ??= err;
      return;
    }
    this.emit('data', out, value);
    if (!p.queue) return;
    // The input's id, so a consumer can recognise the outputs of an input handled twice (not on at-most-once ports:
    // nothing there is sent twice on purpose).
    const fast = p.fast === true;
    const queue = p.queue;
    const send = () => this.transport.send('outqueue', queue, value, fast || !meta.id ? { fast } : { fast, headers: { [HEADER.parent]: meta.id } });
    const sent = run.local ? this.gate.send(send) : send();
    if (run.finished) sent.catch((err: Error) => this.emit('error', err));
    else (run.sends ??= []).push(sent);
  }

  private handlerDone(run: InputRun): void {
    // The timeout is the handler's: waiting for the broker to confirm its outputs is not timed.
    this.timeouts.unwatch(run, true);
    if (run.sendError) return this.failInput(run, run.sendError);
    if (!run.sends) return this.endInput(run, false);
    Promise.all(run.sends).then(
      () => {
        if (!run.failing) this.endInput(run, false);
      },
      (err: unknown) => this.failInput(run, err),
    );
  }

  private failInput(run: InputRun, err: unknown): void {
    if (run.finished || run.failing) return;
    run.failing = true;
    if (!run.sends) return this.endInput(run, true, err);
    void Promise.allSettled(run.sends).then(() => this.endInput(run, true, err));
  }

  private endInput(run: InputRun, failed: boolean, err?: unknown): void {
    if (run.finished) return;
    run.finished = true;
    this.timeouts.unwatch(run, this.state === 'running');
    if (--this.inFlight === 0) for (const resolveDrain of this.drained.splice(0)) resolveDrain();
    run.done(failed, err);
  }

  /** Send on an outport outside of any input (sources); failures are reported as 'error' events. */
  emitOutput(port: Out, data: unknown): void {
    const p = this.outports.get(port);
    if (!p) {
      this.emit('error', new UnknownPortError(this.role, port, [...this.outports.keys()], 'outport'));
      return;
    }
    this.emit('data', port, data);
    if (!p.queue || this.state !== 'running') return;
    const queue = p.queue;
    this.gate.send(() => this.transport.send('outqueue', queue, data, { fast: !!p.fast })).catch((err: Error) => this.emit('error', err));
  }

  private async sendError(port: string, data: unknown, error: MsgfloError): Promise<void> {
    const p = this.outports.get('error');
    const payload = { message: error.message.split('\n')[0], code: error.code, role: this.role, port, data };
    this.emit('data', 'error', payload);
    if (p?.queue) await this.transport.send('outqueue', p.queue, payload, { headers: { [HEADER.code]: error.code } });
  }

  /**
   * Stop gracefully: no new inputs, finish those in flight (up to drainTimeoutMs), stop heartbeats, say goodbye,
   * close the connection. Inputs still unsettled after the drain are redelivered by the broker.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.clock.clearInterval(this.timer);
    // What sources still hold goes now, while the connection is up (close() waits for its confirms).
    this.gate.open('stopping');
    // Steps that need the broker are bounded: a participant whose broker is gone (e.g. the embedded broker of a
    // coordinator that was killed) must still stop, not wait for a reconnection forever.
    const budget = () => (this.brokerLost ? 0 : STOP_BROKER_MS);
    let deadline = Date.now() + budget();
    // No new inputs. Where the broker keeps this instance's session (MQTT with an instance id), stay subscribed:
    // what arrives from now on, and what is not settled at exit, waits there for the instance to come back.
    await brokerStep(Promise.all(this.subscriptions.splice(0).map((sub) => (sub.pause ? sub.pause() : sub.cancel()))), deadline);
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.options.drainTimeoutMs ?? 10_000);
        this.drained.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.timeouts.stopIfIdle();
    await this.behaviour.stop?.();
    await this.definition.stop?.();
    // The drain above takes the time it needs; the broker steps after it get their own budget.
    deadline = this.brokerLost ? Date.now() : Math.max(deadline, Date.now() + 1000);
    await brokerStep(Promise.resolve(this.snoop.stop()), deadline);
    this.unlisten?.();
    if (wasRunning) {
      // A normal discovery message flagged `leaving`: msgflo-era tools take it as one more heartbeat (they throw on
      // unknown commands), our coordinator as a goodbye.
      await brokerStep(this.transport.announce(discoveryMessage({ ...this.info(), leaving: true })), deadline);
    }
    await brokerStep(this.transport.close(), this.brokerLost ? Date.now() : Math.max(deadline, Date.now() + 1000));
    this.state = 'stopped';
    log('%s stopped', this.role);
    this.life.close();
  }

  /** Resolves when the participant has stopped (its connection closed). */
  closed(): Promise<void> {
    return this.life.closed;
  }

  /** `await using`: stops the participant and waits until it has stopped. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await this.life.closed;
  }

  /** The behaviour's active state: for statecharts the active leaf state(s), e.g. `c1` or `on,ok`. */
  get chartState(): string | undefined {
    return this.behaviour.state?.();
  }

  get running(): boolean {
    return this.state === 'running';
  }
}

