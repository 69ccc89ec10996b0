import type { MsgfloError } from '../errors.js';
import type { Clock } from '../util/clock.js';

/** One input being handled: the sends it made, its deadline, and whom to tell how it ended. */
export class InputRun {
  sends: Promise<void>[] | undefined = undefined;
  /** A send to an unknown port: the input fails with it once the handler is done. */
  sendError: MsgfloError | undefined = undefined;
  /** It failed and waits for its sends to settle; it fails even if its handler finishes meanwhile. */
  failing = false;
  finished = false;
  constructor(
    readonly port: string,
    readonly deadline: number,
    readonly done: (failed: boolean, err?: unknown) => void,
    /** Fed in-process (`send()`): its sends are a source's, held until the edges are bound. */
    readonly local: boolean,
  ) {}
}


/**
 * One timer for every input's handler timeout, not one per input: created with the first input, kept while the
 * participant runs (re-arming it per input would cost what it saves), cleared when it stops.
 */
export class HandlerTimeouts {
  private readonly watched = new Set<InputRun>();
  private sweeper: unknown;

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    /** An input whose handler ran past its deadline (no longer watched). */
    private readonly expired: (run: InputRun) => void,
  ) {}

  watch(run: InputRun): void {
    this.watched.add(run);
    if (this.sweeper === undefined) {
      const timer = this.clock.setInterval(() => this.sweep(), Math.min(1000, Math.max(10, this.timeoutMs / 10)));
      (timer as { unref?: () => void } | undefined)?.unref?.();
      this.sweeper = timer;
    }
  }

  /** The handler of `run` is done (or it ended): no longer timed. The timer stays while `keepTimer`. */
  unwatch(run: InputRun, keepTimer: boolean): void {
    this.watched.delete(run);
    if (!keepTimer) this.stopIfIdle();
  }

  /** Clear the timer when no input is timed. */
  stopIfIdle(): void {
    if (this.watched.size > 0 || this.sweeper === undefined) return;
    this.clock.clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private sweep(): void {
    if (this.watched.size === 0) return;
    const now = this.clock.now();
    for (const run of this.watched) {
      if (run.deadline > now) continue;
      this.watched.delete(run);
      this.expired(run);
    }
  }
}
