import { ParticipantDefinitionError } from '../errors.js';
import type { AnyStateMachine } from '../statechart/index.js';

/** One port of a participant definition. */
export interface PortSpec<Id extends string = string> {
  id: Id;
  /** FBP type: any, string, number, int, boolean, object, array, error, … */
  type?: string;
  description?: string;
  /** JSON Schema the data must satisfy (inports: checked on arrival; failures are dead-lettered). */
  schema?: Record<string, unknown>;
  /** Hidden ports have no queue: inports fed by `participant.send()`, outports only observed locally. */
  hidden?: boolean;
  /** Override the queue name (default `<role>.<PORT>`). */
  queue?: string;
  /** At-most-once for this port (QoS 0 / transient, no confirm): for telemetry. Default false. */
  fast?: boolean;
}

/** What a handler gets with each input. */
export interface InputMeta {
  /** Message id (from the broker headers), when known. */
  id: string | undefined;
  headers: Record<string, string>;
  redelivered: boolean;
  role: string;
}

export type SendFn<Out extends string> = (port: Out, data: unknown) => void;

/**
 * The function form: called once per input. Send any number of outputs (including none) with `send`; the input
 * is acknowledged after the handler returns (or its promise resolves) and its sends are confirmed. Throwing or
 * rejecting sends the error to the `error` outport and dead-letters the input with the reason.
 */
export type ProcessFn<In extends string, Out extends string> = (
  port: In,
  data: unknown,
  send: SendFn<Out>,
  meta: InputMeta,
) => void | Promise<void>;

/** An inport message as a statechart event: the port is the event type. `meta` is absent for delayed events. */
export interface PortEvent<In extends string = string> {
  type: In;
  data: unknown;
  meta: InputMeta;
}

/** What an XState action function gets (typed loosely: annotate for more). */
export interface ChartActionArgs {
  context: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  event: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** An XState action (an inline action function) that the runtime carries out. */
export type ChartAction = (args: ChartActionArgs) => void;

/** Data for `send`: a value, or a function of the action's `{context, event}` that returns it. */
export type ChartData = ((args: ChartActionArgs) => unknown) | string | number | boolean | null | object;

/** What the `machine` function of a statechart participant gets: outport sends as XState actions. */
export interface ChartTools<Out extends string> {
  /** The participant's role. */
  readonly role: string;
  /**
   * An action that sends to outport `port`: `data` is the value, or a function of the action's
   * `{context, event}` that returns it (`send('out', ({event}) => event.data)`). Without `data`: the event's data.
   */
  send(port: Out, data?: ChartData): ChartAction;
  /** Send at once, from your own action code. */
  sendNow(port: Out, data: unknown): void;
}

/** What the runtime offers a behaviour when the participant starts. */
export interface BehaviourRuntime {
  role: string;
  /** Outputs that belong to no input (delayed transitions, the start). */
  send: SendFn<string>;
  /** Where spy lines and trace records go (flags switchable at run time). */
  snoop: SnoopSink;
  /** A failure outside any input (a delayed transition threw): reported on the `error` outport. */
  fail(error: unknown, signal: string): void;
  /** Time for delayed transitions. */
  clock: { now(): number; setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
}

/** The spy/trace sink of a participant. */
export interface SnoopSink {
  readonly spy: boolean;
  readonly trace: boolean;
  onSpy(lines: string[]): void;
  onTrace(record: { t: number; chart: string; signal: string; from: string; to: string }): void;
}

/**
 * The behaviour behind a participant: statecharts (XState machines, and the one-state chart of the function
 * form) implement it. The runtime feeds it one event per input and carries out the sends it asks for.
 */
export interface Behaviour<In extends string = string, Out extends string = string> {
  /** Called once when the participant starts, before the first input. */
  start?(runtime: BehaviourRuntime): void | Promise<void>;
  /** Handle one input. Resolves when the behaviour is done with it; rejects on error. */
  handle(event: { type: In; data: unknown; meta: InputMeta }, send: SendFn<Out>): Promise<void>;
  stop?(): Promise<void> | void;
  /** The active state (statecharts: the active leaf states, parallel ones joined with `,`). */
  state?(): string | undefined;
}

export interface ParticipantDefinition<In extends string = string, Out extends string = string> {
  component: string;
  label?: string;
  description?: string;
  icon?: string;
  inports: ReadonlyArray<PortSpec<In>>;
  outports: ReadonlyArray<PortSpec<Out>>;
  /**
   * Function form: sugar for a one-state statechart whose every event calls `process`. (A method signature, so
   * that a definition with typed ports is also a `ParticipantDefinition` of any ports.)
   */
  process?(port: In, data: unknown, send: SendFn<Out>, meta: InputMeta): void | Promise<void>;
  /**
   * Statechart form: an XState v5 machine (built once per running participant, with `tools` bound to it). Each
   * inport message is the event `{type: <port>, data, meta}`; outport sends are the actions `tools.send(...)`.
   */
  machine?: (tools: ChartTools<NoInfer<Out>>) => AnyStateMachine;
  /** Any other behaviour; used when neither `process` nor `machine` is given. */
  behaviour?: () => Behaviour<In, Out>;
  /**
   * Called once the participant runs, with a `send` usable at any time (sources: timers, sensors). What is sent
   * this way is not tied to an input; failures are reported as participant errors. It is held, in order, until the
   * participant's edges are bound (a coordinator says so, an input arrives, or MSGFLO_START_WAIT passes: see
   * StartGate), so a source's first messages are not lost to edges that do not exist yet.
   */
  start?: (send: SendFn<Out>, info: { role: string }) => void | Promise<void>;
  /** Called on stop, after in-flight inputs finished and before the connection closes. */
  stop?: () => void | Promise<void>;
}

/**
 * Define a participant with typed ports: `send('nope', …)` is a compile error when 'nope' is not an outport.
 *
 * @example
 * export default defineParticipant({
 *   component: 'Uppercase',
 *   inports: [{ id: 'in', type: 'string' }],
 *   outports: [{ id: 'out', type: 'string' }],
 *   process: (port, data, send) => send('out', String(data).toUpperCase()),
 * });
 */
export function defineParticipant<const In extends string, const Out extends string>(
  definition: ParticipantDefinition<In, Out>,
): ParticipantDefinition<In, Out> {
  checkDefinition(definition as unknown);
  return definition;
}

/**
 * Define a participant by an XState v5 machine. Sends are typed: `send('nope')` does not compile when 'nope' is
 * not an outport.
 *
 * @example
 * export default defineStatechartParticipant({
 *   component: 'Toggle',
 *   inports: [{ id: 'flip' }],
 *   outports: [{ id: 'state' }],
 *   machine: ({ send }) => setup({}).createMachine({
 *     initial: 'off',
 *     states: {
 *       off: { entry: send('state', 'off'), on: { flip: 'on' } },
 *       on: { entry: send('state', 'on'), on: { flip: 'off' } },
 *     },
 *   }),
 * });
 */
export function defineStatechartParticipant<const In extends string, const Out extends string>(
  definition: ParticipantDefinition<In, Out> & { machine: (tools: ChartTools<NoInfer<Out>>) => AnyStateMachine },
): ParticipantDefinition<In, Out> {
  checkDefinition(definition as unknown);
  return definition;
}

const PORT_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Validate a definition (also one loaded from an untyped module). */
export function checkDefinition(def: unknown): asserts def is ParticipantDefinition {
  const d = def as Partial<ParticipantDefinition> | null;
  if (!d || typeof d !== 'object') throw new ParticipantDefinitionError('expected an object');
  if (typeof d.component !== 'string' || !d.component) throw new ParticipantDefinitionError("'component' must be a non-empty string");
  for (const dir of ['inports', 'outports'] as const) {
    const ports = d[dir];
    if (!Array.isArray(ports)) throw new ParticipantDefinitionError(`'${dir}' must be an array of {id, type}`);
    const seen = new Set<string>();
    for (const p of ports) {
      if (!p || typeof p.id !== 'string' || !PORT_ID.test(p.id)) {
        throw new ParticipantDefinitionError(`${dir}: port id ${JSON.stringify(p?.id)} must be a word (letters, digits, _ or -)`);
      }
      if (seen.has(p.id.toLowerCase())) throw new ParticipantDefinitionError(`${dir}: port '${p.id}' declared twice`);
      seen.add(p.id.toLowerCase());
    }
  }
  const forms = (['process', 'machine', 'behaviour'] as const).filter((k) => d[k] !== undefined);
  for (const k of forms) if (typeof d[k] !== 'function') throw new ParticipantDefinitionError(`'${k}' must be a function`);
  if (forms.length === 0) {
    throw new ParticipantDefinitionError("give a 'process(port, data, send)' function, a 'machine' (statechart) or a 'behaviour'");
  }
  if (forms.length > 1) throw new ParticipantDefinitionError(`give one of 'process', 'machine', 'behaviour', not ${forms.join(' and ')}`);
}

