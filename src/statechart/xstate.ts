/**
 * XState v5 machines as participant charts: one long-lived actor per participant, fed one event per input.
 *
 * - Spy: every state of the machine gets an entry action first and an exit action last that record the order
 *   in which XState entered and exited states; with the transitions of each microstep (from XState's inspection
 *   API) that gives the miros spy lines (spy.ts). Nothing is recorded while spy and trace are off.
 * - Errors: an action or guard that throws puts an XState actor in status 'error' and stops it. The chart is
 *   then rebuilt from the snapshot it had before the failing event, its pending delayed events armed again, and
 *   the error reported (thrown from dispatch, or to the observer for delayed transitions): one bad input cannot
 *   take the participant down.
 *
 * Everything that touches XState internals (`_transitions`, `_nodes`) is in this file.
 */
import {
  type AnyActorRef,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type AnyStateNode,
  type InspectionEvent,
  createActor,
  StateMachine,
} from 'xstate';
import { type Chart, type ChartEvent, ChartError, type ChartObserver } from './engine.js';
import { START_SIGNAL, TOP, errorLine, nowMicros, queueReflection, signalName, type TraceRecord } from './format.js';
import { type SpyState, type StepTransition, startLines, stepLines } from './spy.js';

export interface ClockLike {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

const systemClock: ClockLike = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

export interface XStateChartOptions {
  /** Name in trace lines (the role). */
  name: string;
  observer: ChartObserver;
  /** Time for delayed transitions (tests pass a fake clock). */
  clock?: ClockLike;
}

interface MutableSpyState {
  name: string;
  parent: SpyState | undefined;
  handlesExit: boolean;
  initial: SpyState | undefined;
}

interface StepRecord {
  signal: string;
  spy: boolean;
  trace: boolean;
  start: boolean;
  startDone: boolean;
  from: string;
  lines: string[];
  entered: SpyState[];
  exited: SpyState[];
  changed: boolean;
  /** Delayed events scheduled and cancelled in this step: applied to `pending` only if the step succeeds. */
  raised: Array<[string, Pending]>;
  cancelled: string[];
}

interface Pending {
  event: { type: string };
  due: number;
  timer?: unknown;
}

type Config = Record<string, unknown>;

const asArray = (x: unknown): unknown[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** A state node's configuration, with a recording action first in `entry` and last in `exit` (history excluded). */
function instrument(config: Config, path: string[], hooks: (path: string[]) => { entry: () => void; exit: () => void }, exits: Set<string>): Config {
  const out: Config = { ...config };
  if (config.type !== 'history') {
    const h = hooks(path);
    if (asArray(config.exit).length > 0) exits.add(path.join('\u0000'));
    out.entry = [h.entry, ...asArray(config.entry)];
    out.exit = [...asArray(config.exit), h.exit];
  }
  const states = config.states as Record<string, Config> | undefined;
  if (states && typeof states === 'object') {
    const copy: Record<string, Config> = {};
    for (const [key, child] of Object.entries(states)) copy[key] = instrument(child ?? {}, [...path, key], hooks, exits);
    out.states = copy;
  }
  return out;
}

function allNodes(root: AnyStateNode): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const walk = (n: AnyStateNode) => {
    out.push(n);
    for (const child of Object.values(n.states ?? {})) walk(child as AnyStateNode);
  };
  walk(root);
  return out;
}

/** The active state nodes of a snapshot (XState keeps them in `_nodes`). */
function activeNodes(snapshot: AnyMachineSnapshot): AnyStateNode[] {
  return (snapshot as unknown as { _nodes?: AnyStateNode[] })._nodes ?? [];
}

/** The transitions of a microstep (XState reports them as `_transitions`). */
function microstepTransitions(ev: InspectionEvent): Array<{ source: AnyStateNode; target?: readonly AnyStateNode[] | undefined }> {
  return (ev as unknown as { _transitions?: Array<{ source: AnyStateNode; target?: AnyStateNode[] }> })._transitions ?? [];
}

export class XStateChart implements Chart {
  readonly name: string;
  private readonly machine: AnyStateMachine;
  private readonly observer: ChartObserver;
  private readonly clock: ClockLike;
  private readonly spyOf = new Map<AnyStateNode, SpyState>();
  private actor: AnyActorRef;
  private leaves: SpyState[] = [];
  private step: StepRecord | undefined;
  /** The snapshot before the event being processed: where a failing event takes the chart back to. */
  private before: AnyMachineSnapshot | undefined;
  private dispatching = false;
  private dispatchError: { error: unknown } | undefined;
  private restoring = false;
  private stopped = false;
  /** Delayed events XState scheduled (by id), so that they can be armed again after a restore. */
  private readonly pending = new Map<string, Pending>();

  constructor(machine: AnyStateMachine, options: XStateChartOptions) {
    this.name = options.name;
    this.observer = options.observer;
    this.clock = options.clock ?? systemClock;
    const byPath = new Map<string, MutableSpyState>();
    const spyFor = (path: string[]): MutableSpyState => {
      const key = path.join('\u0000');
      let s = byPath.get(key);
      if (!s) {
        s = { name: path[path.length - 1] ?? machine.id, parent: undefined, handlesExit: false, initial: undefined };
        byPath.set(key, s);
      }
      return s;
    };
    const hooks = (path: string[]) => {
      const s = spyFor(path);
      return {
        entry: () => {
          if (this.step?.spy) this.step.entered.push(s);
        },
        exit: () => {
          if (this.step?.spy) this.step.exited.push(s);
        },
      };
    };
    const exits = new Set<string>();
    const config = instrument(machine.config as Config, [], hooks, exits);
    this.machine = new StateMachine(config as never, machine.implementations as never) as unknown as AnyStateMachine;

    // Spy names: a state's key, or its path where keys repeat.
    const nodes = allNodes(this.machine.root);
    const keyCount = new Map<string, number>();
    for (const n of nodes) keyCount.set(n.key, (keyCount.get(n.key) ?? 0) + 1);
    for (const n of nodes) {
      const s = spyFor(n.path);
      if (n.path.length === 0) s.name = this.machine.id;
      else if ((keyCount.get(n.key) ?? 0) > 1) s.name = n.path.join('.');
      s.handlesExit = exits.has(n.path.join('\u0000'));
      this.spyOf.set(n, s);
    }
    for (const n of nodes) {
      const s = this.spyOf.get(n) as MutableSpyState;
      if (n.parent) s.parent = this.spyOf.get(n.parent);
      const initial = n.type === 'compound' ? (n.initial?.target?.[0] as AnyStateNode | undefined) : undefined;
      if (initial) s.initial = this.spyOf.get(initial);
    }
    this.actor = this.createActor(undefined);
  }

  private createActor(snapshot: unknown): AnyActorRef {
    const actor = createActor(this.machine, {
      ...(snapshot !== undefined ? { snapshot: snapshot as never } : {}),
      clock: this.clock,
      inspect: (ev: InspectionEvent) => this.inspect(ev),
    });
    actor.subscribe({ error: (err: unknown) => this.onActorError(actor, err) });
    return actor;
  }

  start(): void {
    this.actor.start();
    this.failIfErrored('xstate.init');
  }

  dispatch(event: ChartEvent): void {
    // Plain errors (statechart/ imports no errors module): the participant reports every ChartError coded.
    if (this.stopped) throw new ChartError(event.type, new Error('the chart is stopped'));
    this.dispatching = true;
    this.dispatchError = undefined;
    try {
      this.actor.send(event as { type: string });
    } finally {
      this.dispatching = false;
    }
    this.failIfErrored(event.type);
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) if (p.timer !== undefined) this.clock.clearTimeout(p.timer);
    this.pending.clear();
    this.actor.stop();
  }

  state(): string {
    return this.leaves.map((s) => s.name).join(',');
  }

  // ── failures ──────────────────────────────────────────────────────────────────────────────────────────

  private failIfErrored(type: string): void {
    const snapshot = this.actor.getSnapshot() as AnyMachineSnapshot;
    if (snapshot.status !== 'error' && !this.dispatchError) return;
    const error = this.dispatchError?.error ?? snapshot.error;
    this.dispatchError = undefined;
    this.flushFailedStep(error);
    if (type === 'xstate.init') throw new ChartError(type, error);
    this.restore();
    throw new ChartError(signalName(type), error);
  }

  private onActorError(actor: AnyActorRef, error: unknown): void {
    if (actor !== this.actor || this.restoring) return;
    if (this.dispatching || !this.before) {
      this.dispatchError = { error };
      return;
    }
    // A step nobody dispatched (a delayed transition) failed.
    const signal = this.step?.signal ?? 'unknown';
    this.flushFailedStep(error);
    queueMicrotask(() => {
      if (this.stopped) return;
      this.restore();
      this.observer.onError(error, signal);
    });
  }

  private flushFailedStep(error: unknown): void {
    const step = this.step;
    this.step = undefined;
    if (step?.spy) {
      const lines = step.start ? startLines(step.entered) : step.lines;
      this.observer.onSpy([...lines, errorLine(error), queueReflection(this.observer.queued(), this.observer.deferred())]);
    }
  }

  /** A new actor from the snapshot before the failed event, with the delayed events it was waiting for. */
  private restore(): void {
    const before = this.before;
    if (!before) return;
    const persisted = this.machine.getPersistedSnapshot(before as never);
    this.restoring = true;
    try {
      this.actor = this.createActor(persisted);
      this.actor.start();
    } finally {
      this.restoring = false;
    }
    this.leaves = this.leavesOf(before);
    const now = this.clock.now();
    for (const [id, p] of this.pending) {
      if (p.timer !== undefined) continue;
      p.timer = this.clock.setTimeout(() => {
        if (this.pending.get(id) !== p) return;
        this.pending.delete(id);
        this.deliverLate(p.event);
      }, Math.max(0, p.due - now));
    }
  }

  /** A delayed event armed again by restore(): dispatched like one from XState's own scheduler. */
  private deliverLate(event: { type: string }): void {
    if (this.stopped) return;
    try {
      this.dispatch(event);
    } catch (err) {
      this.observer.onError(err instanceof ChartError ? err.cause : err, signalName(event.type));
    }
  }

  // ── inspection ────────────────────────────────────────────────────────────────────────────────────────

  private inspect(ev: InspectionEvent): void {
    if (ev.actorRef !== this.actor || this.restoring) return;
    switch (ev.type) {
      case '@xstate.event':
        return this.onEvent(ev.event as { type: string }, ev.sourceRef === ev.actorRef);
      case '@xstate.action':
        return this.onAction(ev.action.type, ev.action.params as Record<string, unknown> | undefined);
      case '@xstate.microstep':
        return this.onMicrostep(ev);
      case '@xstate.snapshot':
        return this.onSnapshot(ev.snapshot as AnyMachineSnapshot);
      default:
    }
  }

  private onEvent(event: { type: string }, fromSelf: boolean): void {
    this.before = this.actor.getSnapshot() as AnyMachineSnapshot;
    if (fromSelf && this.pending.size > 0) {
      for (const [id, p] of this.pending) {
        if (p.event.type === event.type) {
          this.pending.delete(id);
          break;
        }
      }
    }
    const o = this.observer;
    const spy = o.spy;
    const trace = o.trace;
    const start = event.type === 'xstate.init';
    this.step = {
      signal: start ? START_SIGNAL : signalName(event.type),
      spy,
      trace,
      start,
      startDone: false,
      from: start ? TOP : this.state(),
      lines: [],
      entered: [],
      exited: [],
      changed: false,
      raised: [],
      cancelled: [],
    };
  }

  private onAction(type: string, params: Record<string, unknown> | undefined): void {
    const step = this.step;
    if (!step || !params) return;
    if (type === 'xstate.raise' && typeof params.delay === 'number') {
      const event = params.event as { type: string } | undefined;
      const id = typeof params.id === 'string' ? params.id : event?.type;
      if (event && id) step.raised.push([id, { event, due: this.clock.now() + params.delay }]);
    } else if (type === 'xstate.cancel' && typeof params.sendId === 'string') {
      step.cancelled.push(params.sendId);
    }
  }

  /** A step succeeded: what it scheduled and cancelled is now the chart's. */
  private commitDelays(step: StepRecord): void {
    for (const id of step.cancelled) {
      const p = this.pending.get(id);
      if (p?.timer !== undefined) this.clock.clearTimeout(p.timer);
      this.pending.delete(id);
    }
    for (const [id, p] of step.raised) this.pending.set(id, p);
  }

  private onMicrostep(ev: InspectionEvent): void {
    const step = this.step;
    if (!step) return;
    const transitions = microstepTransitions(ev);
    if (transitions.some((t) => (t.target?.length ?? 0) > 0)) step.changed = true;
    if (step.spy) {
      if (step.start && !step.startDone) {
        step.lines.push(...startLines(step.entered));
        step.entered = [];
        step.startDone = true;
      }
      const mapped: StepTransition[] = transitions.map((t) => ({
        source: this.spyOf.get(t.source)!,
        targets: (t.target ?? []).map((n) => this.spyOf.get(n)!).filter(Boolean),
      }));
      step.lines.push(...stepLines({ signal: step.signal, leaves: this.leaves, transitions: mapped, exited: step.exited, entered: step.entered }));
      step.entered = [];
      step.exited = [];
    }
    this.leaves = this.leavesOf((ev as unknown as { snapshot: AnyMachineSnapshot }).snapshot);
  }

  private onSnapshot(snapshot: AnyMachineSnapshot): void {
    const step = this.step;
    this.step = undefined;
    this.leaves = this.leavesOf(snapshot);
    if (!step) return;
    this.commitDelays(step);
    const o = this.observer;
    if (step.spy) {
      const lines = step.start && !step.startDone ? startLines(step.entered) : step.lines;
      lines.push(queueReflection(o.queued(), o.deferred()));
      o.onSpy(lines);
    }
    if (step.trace && (step.start || step.changed)) {
      const record: TraceRecord = { t: nowMicros(), chart: this.name, signal: step.signal, from: step.from, to: this.state() };
      o.onTrace(record);
    }
  }

  /** The active atomic states of a snapshot, in document order. */
  private leavesOf(snapshot: AnyMachineSnapshot): SpyState[] {
    const nodes = activeNodes(snapshot).filter(isLeaf);
    nodes.sort((a, b) => a.order - b.order);
    const out: SpyState[] = [];
    for (const n of nodes) {
      const s = this.spyOf.get(n);
      if (s) out.push(s);
    }
    return out;
  }
}

function isLeaf(n: AnyStateNode): boolean {
  return n.type === 'atomic' || n.type === 'final';
}
