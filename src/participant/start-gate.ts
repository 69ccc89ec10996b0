/**
 * What a participant's sources send before its edges are bound is held, not lost.
 *
 * A send made outside any input from the broker (a source's `start`, its timers, a chart's entry action or delayed
 * transition, an in-process `participant.send`) arrives only if an edge already takes it: a message to an AMQP
 * exchange with no bound queue is dropped, and so is one to an MQTT topic nobody follows. So such sends wait here,
 * in order, until the first of:
 * - a coordinator says the role's edges are bound (a `bound` notice on the snoop control channel);
 * - an input arrives from the broker (whoever sends to the participant has its network running);
 * - the wait runs out: `waitMs` after the participant announced itself when no coordinator speaks (a participant
 *   run without one); while a coordinator says "not yet" (it has the role in its graph and makes its edges, and says
 *   so again on every heartbeat), `holdMs` after its latest word, so a coordinator that goes away holds nothing long;
 * - more than `maxHeld` sends wait;
 * - the participant stops.
 * Then what was held goes, in order, and later sends go at once.
 */
import { type Env, readSetting } from '../settings.js';
import { MAX_BUFFERED_SENDS } from '../transport/defaults.js';
import type { Clock } from '../util/clock.js';

export interface StartGateOptions {
  clock: Clock;
  /** How long to wait, once armed, when no coordinator speaks. 0: hold nothing. */
  waitMs: number;
  /** How long a coordinator's "not yet" holds, from its latest one. */
  holdMs: number;
  /** Held sends beyond this open the gate. */
  maxHeld: number;
  /** Told once, why the gate opened. */
  onOpen: (reason: string) => void;
}

export class StartGate {
  private readonly options: StartGateOptions;
  private held: Array<() => void> = [];
  private opened: boolean;
  private timer: unknown;
  /** A coordinator said "not yet": its hold, not the plain wait, decides. */
  private holding = false;

  constructor(options: StartGateOptions) {
    this.options = options;
    this.opened = options.waitMs <= 0;
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Held sends right now. */
  get size(): number {
    return this.held.length;
  }

  /** Run `send` now when open, else once open; the promise is the send's. */
  send(send: () => Promise<void>): Promise<void> {
    if (this.opened) return send();
    return new Promise<void>((resolve, reject) => {
      this.held.push(() => send().then(resolve, reject));
      if (this.held.length > this.options.maxHeld) this.open(`more than ${this.options.maxHeld} sends held`);
    });
  }

  /** The participant has announced itself: the plain wait starts (unless a coordinator has spoken already). */
  arm(): void {
    if (this.opened || this.holding) return;
    this.waitFor(this.options.waitMs, `no coordinator said the edges are bound within ${this.options.waitMs} ms`);
  }

  /** A coordinator's word: bound (open now), or not yet (hold, from now, for `holdMs`). */
  notice(bound: boolean): void {
    if (this.opened) return;
    if (bound) return this.open('a coordinator said the edges are bound');
    this.holding = true;
    this.waitFor(this.options.holdMs, `the coordinator said nothing more within ${this.options.holdMs} ms`);
  }

  /** Open now: what was held goes, in order. */
  open(reason: string): void {
    if (this.opened) return;
    this.opened = true;
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.options.onOpen(reason);
    for (const send of this.held.splice(0)) send();
  }

  private waitFor(ms: number, reason: string): void {
    this.options.clock.clearTimeout(this.timer);
    const timer = this.options.clock.setTimeout(() => this.open(reason), ms);
    (timer as { unref?: () => void } | undefined)?.unref?.();
    this.timer = timer;
  }
}

/** Held sends beyond which the gate opens (as many as a transport keeps while its broker is away). */
export const MAX_HELD_SENDS = MAX_BUFFERED_SENDS;

/** The plain wait of a participant's gate, in ms: the option, else MSGFLO_START_WAIT (settings), else 5 s. */
export function startWaitMs(options: { startWaitMs?: number | undefined; env?: Env | undefined }): number {
  if (options.startWaitMs !== undefined) return Math.max(0, options.startWaitMs);
  return readSetting(options.env ?? process.env, 'startWait') * 1000;
}
