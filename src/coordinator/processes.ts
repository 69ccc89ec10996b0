/**
 * The participant processes a network wants running, kept converged to that wish through the Launcher: a role
 * that appears is started, one that goes (or now runs another component) is stopped, and operations on one role
 * run in order, so a restart waits until the old process is gone.
 */
import type { Launcher } from './launcher.js';
import type { ParticipantRegistry } from './registry.js';

/** One process a network wants: the graph node it runs for, as `role`. */
export interface ProcessWish {
  role: string;
  node: string;
  component: string;
  /** The command, asked for when the process is started. */
  command: () => string[];
}

export class Processes {
  /** Roles whose process is wanted, with what it runs. */
  private readonly wanted = new Map<string, ProcessWish>();
  private readonly ops = new Map<string, Promise<void>>();
  /** When a role's process was last started: only a participant announced since then is that process. */
  private readonly startedAt = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly launcher: Launcher,
    private readonly registry: ParticipantRegistry,
    private readonly onError: (role: string, error: Error) => void,
  ) {}

  /** Make the wanted processes exactly `wishes` (by role); changes happen in the background, in order per role. */
  sync(wishes: readonly ProcessWish[]): void {
    if (this.closed) return;
    const desired = new Map(wishes.map((w) => [w.role, w]));
    for (const [role, current] of [...this.wanted]) {
      const want = desired.get(role);
      if (want && want.component === current.component) continue;
      // One that has not announced itself yet has nothing to finish: no need to let it complete its start.
      const serving = this.isCurrent(role);
      this.wanted.delete(role);
      this.op(role, async () => {
        await (serving ? this.launcher.stop(role) : this.launcher.kill(role));
        if (!this.wanted.has(role)) this.startedAt.delete(role);
      });
    }
    for (const [role, want] of desired) {
      if (this.wanted.has(role)) continue;
      this.wanted.set(role, want);
      this.op(role, () => {
        // Changed again while an earlier stop of this role was under way.
        if (this.wanted.get(role) !== want || this.closed) return;
        const command = want.command();
        this.startedAt.set(role, Date.now());
        this.launcher.start({ role, command });
      });
    }
  }

  /** Whether this role's process is wanted (started, or being started). */
  has(role: string): boolean {
    return this.wanted.has(role);
  }

  roles(): string[] {
    return [...this.wanted.keys()];
  }

  /**
   * Whether the role has a participant that can take packets: for a role whose process is wanted here, one
   * announced after that process was started (not the previous process of that role, still saying goodbye).
   */
  isCurrent(role: string): boolean {
    const entries = this.registry.byRole(role);
    const since = this.startedAt.get(role);
    if (since === undefined || !this.wanted.has(role)) return entries.length > 0;
    return entries.some((e) => e.firstSeen >= since);
  }

  /** Run process operations of one role in order. */
  private op(role: string, op: () => Promise<void> | void): void {
    const next = (this.ops.get(role) ?? Promise.resolve()).then(op).catch((err: unknown) => this.onError(role, err as Error));
    this.ops.set(role, next);
    void next.then(() => {
      if (this.ops.get(role) === next) this.ops.delete(role);
    });
  }

  /**
   * Stop every process (SIGTERM to all at once; they drain), and resolve when they are gone. A later `sync` may
   * start processes again.
   */
  async stopAll(): Promise<void> {
    this.wanted.clear();
    const stopping = this.launcher.stopAll();
    await Promise.all([...this.ops.values()]);
    await stopping;
    // A start queued behind a stop found its role no longer wanted and did nothing.
    for (const role of [...this.startedAt.keys()]) if (!this.wanted.has(role)) this.startedAt.delete(role);
  }

  /** Stop every process for good. */
  async close(): Promise<void> {
    this.closed = true;
    await this.stopAll();
  }
}
