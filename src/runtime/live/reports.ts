/**
 * What the live network tells clients, as ready-to-send protocol messages: packets seen on taps (network:data,
 * runtime:packet, network:processerror), edges bound and unbound (network:connect / network:disconnect), and
 * participants and their processes coming and going (network:output / network:error / network:icon).
 */
import type { CoordinatorEvent, ResolvedBinding } from '../../coordinator/coordinator.js';
import { type ProcessEvent, describeProcessEvent } from '../../coordinator/network-events.js';
import type { GraphEdge, PortRef } from '../../graph/types.js';
import { type GraphDocument, refPayload } from '../graph-doc.js';
import { edgeId, edgeKey } from './ids.js';
import { isParticipant } from './projection.js';
import type { TapWants } from './taps.js';

/** A protocol message the live network wants sent. `toClients` false: for traces only (an unselected edge). */
export interface LiveMessage {
  protocol: 'network' | 'runtime';
  command: string;
  payload: Record<string, unknown>;
  toClients: boolean;
}

const message = (protocol: LiveMessage['protocol'], command: string, payload: Record<string, unknown>, toClients = true): LiveMessage => ({
  protocol,
  command,
  payload,
  toClients,
});

/** network:error / network:output for the live graph. */
export function report(doc: GraphDocument, kind: 'error' | 'output', text: string): LiveMessage {
  return kind === 'error' ? message('network', 'error', { message: text, graph: doc.id }) : message('network', 'output', { message: text, type: 'message' });
}

/** What a participant's error outport said, as one line. */
export function describeFailure(data: unknown): string {
  if (data && typeof data === 'object') {
    const d = data as { message?: unknown; code?: unknown };
    if (typeof d.message === 'string') return typeof d.code === 'string' ? `${d.code}: ${d.message}` : d.message;
  }
  return typeof data === 'string' ? data : JSON.stringify(data) ?? String(data);
}

/** The messages a packet seen on the tapped outport queue `queue` becomes. */
export function packetMessages(doc: GraphDocument, queue: string, data: unknown, wants: TapWants, tapQueue: (ref: PortRef) => string | undefined): LiveMessage[] {
  const out: LiveMessage[] = [];
  const reported = new Set<string>();
  const edgeData = (edge: GraphEdge) => {
    const key = edgeKey(edge);
    if (reported.has(key)) return;
    reported.add(key);
    const toClients = wants.data && wants.selected(edge);
    if (!toClients && !wants.tracing) return;
    out.push(message('network', 'data', { id: edgeId(edge.src, edge.tgt), graph: doc.id, src: refPayload(edge.src), tgt: refPayload(edge.tgt), data }, toClients));
  };
  /** Edges after a PubSub node carry a copy of every packet that reaches it. */
  const throughPubSub = (node: string, seen: Set<string>) => {
    if (seen.has(node)) return;
    seen.add(node);
    for (const e of doc.edges) {
      if (e.src.node !== node) continue;
      edgeData(e);
      if (doc.node(e.tgt.node)?.component === 'msgflo/PubSub') throughPubSub(e.tgt.node, seen);
    }
  };
  for (const edge of doc.edges) {
    if (!isParticipant(doc, edge.src.node) || tapQueue(edge.src) !== queue) continue;
    edgeData(edge);
    if (doc.node(edge.tgt.node)?.component === 'msgflo/PubSub') throughPubSub(edge.tgt.node, new Set());
  }
  if (wants.data) {
    for (const p of doc.outports) {
      if (isParticipant(doc, p.node) && tapQueue({ node: p.node, port: p.port }) === queue) {
        out.push(message('runtime', 'packet', { port: p.public, event: 'data', graph: doc.id, payload: data }));
      }
    }
  }
  if (wants.debug) {
    for (const n of doc.nodes) {
      if (isParticipant(doc, n.id) && tapQueue({ node: n.id, port: 'error' }) === queue) {
        out.push(message('network', 'processerror', { id: n.id, error: describeFailure(data), graph: doc.id }, wants.data));
      }
    }
  }
  return out;
}

/** The edges of `doc` that `applied` bindings carry now, by edge key, with their network:connect payloads. */
export function boundEdges(
  doc: GraphDocument,
  applied: readonly ResolvedBinding[],
  queueOf: (ref: PortRef, direction: 'inport' | 'outport') => string | undefined,
): Map<string, Record<string, unknown>> {
  const now = new Map<string, Record<string, unknown>>();
  for (const edge of doc.edges) {
    let bound = false;
    const src = isParticipant(doc, edge.src.node) ? queueOf(edge.src, 'outport') : undefined;
    const tgt = isParticipant(doc, edge.tgt.node) ? queueOf(edge.tgt, 'inport') : undefined;
    if (src && tgt) bound = applied.some((b) => b.src === src && b.tgt === tgt);
    else if (src) bound = applied.some((b) => b.src === src);
    else if (tgt) bound = applied.some((b) => b.tgt === tgt || b.deadletter === tgt);
    if (bound) now.set(edgeKey(edge), { id: edgeId(edge.src, edge.tgt), src: refPayload(edge.src), tgt: refPayload(edge.tgt), graph: doc.id });
  }
  return now;
}

/** network:connect for edges bound since `before`, network:disconnect for those no longer bound. */
export function boundChanges(before: ReadonlyMap<string, Record<string, unknown>>, now: ReadonlyMap<string, Record<string, unknown>>): LiveMessage[] {
  const out: LiveMessage[] = [];
  for (const [key, payload] of now) if (!before.has(key)) out.push(message('network', 'connect', payload));
  for (const [key, payload] of before) if (!now.has(key)) out.push(message('network', 'disconnect', payload));
  return out;
}

/** What clients hear about a participant of the live graph (node `node`) coming, going or expiring. */
export function participantMessages(doc: GraphDocument, node: string, e: CoordinatorEvent): LiveMessage[] {
  switch (e.type) {
    case 'participant-added': {
      const out = [report(doc, 'output', `participant ${e.participant.role} (${e.participant.component}) is up: ${e.participant.id}`)];
      if (typeof e.participant.icon === 'string' && e.participant.icon) out.push(message('network', 'icon', { id: node, icon: e.participant.icon, graph: doc.id }));
      return out;
    }
    case 'participant-expired': {
      const since = Math.round((Date.now() - e.lastSeen) / 1000);
      return [
        report(
          doc,
          'error',
          `participant ${e.participant.role} (node '${node}', ${e.participant.id}) expired: no heartbeat for ${since} s; its edges stay, and work queues up until it is back`,
        ),
      ];
    }
    case 'participant-left':
      return [report(doc, 'output', `participant ${e.participant.role} (${e.participant.id}) stopped`)];
    default:
      return [];
  }
}

/** What clients hear about a process of the live graph (of `node`, when known): one line, as output or as an error. */
export function processMessage(doc: GraphDocument, e: ProcessEvent, node: string | undefined): LiveMessage | undefined {
  if (e.type === 'unlaunchable') return undefined;
  const text = describeProcessEvent(e, node);
  if (text === undefined) return undefined;
  const kind = e.type === 'started' || e.type === 'restarting' ? 'output' : 'error';
  return report(doc, kind, text.split('\n')[0]!);
}
