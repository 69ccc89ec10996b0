/**
 * A coordinator's `bound` notices: it tells each participant of its graph whether the graph's edges are bound, so
 * that the participant's sources hold what they send until then (see participant/start-gate.ts). Sent on the snoop
 * control channel of the participant's role (at most once: a lost notice costs the participant its wait, nothing
 * more):
 * - "not yet" when the participant is first seen, and again on each of its heartbeats until it is bound: it holds
 *   while this coordinator works, and no longer than a few heartbeats after the coordinator is gone;
 * - "bound" once, when the coordinator finds the role ready.
 */
import type { ParticipantInfo } from '../protocol/discovery.js';
import type { BoundNotice } from '../protocol/snoop.js';
import type { Transport } from '../transport/types.js';
import { logger } from '../util/logger.js';

const log = logger('coordinator');

/**
 * Asked right before a role's participants are told that their edges are bound (besides the coordinator's
 * `isReady`): false postpones it. Whoever installs a gate calls `reconcile()` when its answer may have changed.
 */
export type BoundGate = (role: string) => boolean;

export class BoundNotices {
  /** Participant id → what it was told last: bound (true) or not yet (false). */
  private readonly told = new Map<string, boolean>();

  constructor(
    private readonly transport: Transport,
    /** Who sends them (the coordinator's id). */
    readonly from: string,
  ) {}

  /** Whether the participant has been told its edges are bound (nothing more to tell it). */
  isBound(id: string): boolean {
    return this.told.get(id) === true;
  }

  /**
   * Tell the participant what `bound` says, unless it knows already: "not yet" is said again only on a heartbeat.
   */
  tell(info: ParticipantInfo, bound: boolean, heartbeat: boolean): void {
    const { id, role } = info;
    if (this.told.get(id) === true || (!bound && this.told.has(id) && !heartbeat)) return;
    this.told.set(id, bound);
    const notice: BoundNotice = { v: 1, command: 'bound', from: this.from, role, bound };
    log('told %s: %s', id, bound ? 'edges bound' : 'edges not bound yet');
    this.transport.publishSnoop?.('control', role, notice).catch((err: Error) => log('cannot tell %s about its edges: %s', role, err.message));
  }

  /** The participant is gone. */
  forget(id: string): void {
    this.told.delete(id);
  }
}
