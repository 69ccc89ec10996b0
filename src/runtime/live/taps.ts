/**
 * Data taps: a subscription to the outport queue behind each port whose packets somebody wants to see (a client's
 * network:data and runtime:packet, a trace, network:processerror in debug mode). Which ports those are is
 * `tapRefs`; `Taps` keeps the subscriptions converged to them.
 */
import { reasonOf } from '../../errors.js';
import type { PortRef } from '../../graph/types.js';
import type { Subscription, Transport } from '../../transport/types.js';
import { logger } from '../../util/logger.js';
import type { GraphDocument } from '../graph-doc.js';
import { downstream, isParticipant } from './projection.js';

const log = logger('runtime');

/** What is wanted from the live graph's packets. */
export interface TapWants {
  /** A client wants network:data and runtime:packet. */
  data: boolean;
  /** The live graph is traced: every edge. */
  tracing: boolean;
  /** network:debug: what participants send on their error outports. */
  debug: boolean;
  /** Whether a client selected this edge (network:edges). */
  selected(edge: { src: PortRef; tgt: PortRef }): boolean;
}

/** Outport refs whose queues must be tapped, for edges reachable from `from` (every node when undefined). */
export function tapRefs(doc: GraphDocument | undefined, wants: TapWants, from?: string): PortRef[] {
  if (!doc) return [];
  const nodes = from === undefined ? new Set(doc.nodes.map((n) => n.id)) : downstream(doc, from);
  const refs: PortRef[] = [];
  if (wants.data || wants.tracing) {
    for (const e of doc.edges) {
      if (!nodes.has(e.src.node) || !isParticipant(doc, e.src.node)) continue;
      const intoRouting = !isParticipant(doc, e.tgt.node);
      if (wants.tracing || (wants.data && (intoRouting || wants.selected(e)))) refs.push(e.src);
    }
  }
  if (wants.data) {
    for (const p of doc.outports) if (nodes.has(p.node) && isParticipant(doc, p.node)) refs.push({ node: p.node, port: p.port });
  }
  if (wants.debug && (wants.data || wants.tracing)) {
    for (const n of doc.nodes) if (nodes.has(n.id) && isParticipant(doc, n.id)) refs.push({ node: n.id, port: 'error' });
  }
  return refs;
}

interface Tap {
  subscription: Subscription | undefined;
  pending: Promise<void> | undefined;
  /** The tap could not be made (e.g. the exchange does not exist yet): tried again on the next sync. */
  failed: boolean;
}

export class Taps {
  private readonly taps = new Map<string, Tap>();
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly onPacket: (queue: string, data: unknown) => void,
  ) {}

  /** Tap exactly the queues `wanted`. Resolves once the new taps are made (or failed); true when some were made. */
  async sync(wanted: ReadonlySet<string>): Promise<boolean> {
    for (const [queue, tap] of [...this.taps]) {
      if (wanted.has(queue)) continue;
      this.taps.delete(queue);
      await tap.pending;
      await tap.subscription?.cancel().catch(() => {});
    }
    const making: Promise<void>[] = [];
    for (const queue of wanted) {
      const existing = this.taps.get(queue);
      if (existing && !existing.failed) continue;
      const tap: Tap = { subscription: undefined, pending: undefined, failed: false };
      this.taps.set(queue, tap);
      tap.pending = this.transport
        .tap('outqueue', queue, (m) => this.onPacket(queue, m.data))
        .then(
          (sub) => {
            if (this.taps.get(queue) === tap && !this.closed) tap.subscription = sub;
            else void sub.cancel().catch(() => {});
          },
          (err: unknown) => {
            tap.failed = true;
            log('cannot tap %s yet: %s', queue, reasonOf(err));
          },
        )
        .finally(() => {
          tap.pending = undefined;
        });
      making.push(tap.pending);
    }
    await Promise.all(making);
    return making.length > 0;
  }

  /** Whether the tap on `queue` is in place. */
  active(queue: string): boolean {
    return this.taps.get(queue)?.subscription !== undefined;
  }

  /** Cancel every tap. */
  async close(): Promise<void> {
    this.closed = true;
    for (const tap of this.taps.values()) {
      await tap.pending;
      await tap.subscription?.cancel().catch(() => {});
    }
    this.taps.clear();
  }
}
