import { ParticipantDefinitionError } from '../errors.js';

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

/**
 * The behaviour behind a participant. The function form and (later) statecharts implement it: the runtime feeds
 * it one event per input and carries out the sends it asks for.
 */
export interface Behaviour<In extends string = string, Out extends string = string> {
  /** Handle one input. Resolves when the behaviour is done with it; rejects on error. */
  handle(event: { type: In; data: unknown; meta: InputMeta }, send: SendFn<Out>): Promise<void>;
  stop?(): Promise<void> | void;
}

export interface ParticipantDefinition<In extends string = string, Out extends string = string> {
  component: string;
  label?: string;
  description?: string;
  icon?: string;
  inports: ReadonlyArray<PortSpec<In>>;
  outports: ReadonlyArray<PortSpec<Out>>;
  /** Function form. */
  process?: ProcessFn<In, Out>;
  /** Any other behaviour (e.g. a statechart); used when `process` is absent. */
  behaviour?: () => Behaviour<In, Out>;
  /**
   * Called once the participant runs, with a `send` usable at any time (sources: timers, sensors). What is sent
   * this way is not tied to an input; failures are reported as participant errors.
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
  if (typeof d.process !== 'function' && typeof d.behaviour !== 'function') {
    throw new ParticipantDefinitionError("give a 'process(port, data, send)' function (or a 'behaviour')");
  }
}

/** The function form as a Behaviour. */
export function functionBehaviour<In extends string, Out extends string>(process: ProcessFn<In, Out>): Behaviour<In, Out> {
  return {
    handle: async (event, send) => {
      await process(event.type, event.data, send, event.meta);
    },
  };
}
