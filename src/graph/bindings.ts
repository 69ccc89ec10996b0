/**
 * Graph → broker bindings as data (msgflo-setup's `graphBindings`), without knowing queue names: the
 * coordinator maps each {node, port} to a queue (by discovery, or the role.PORT convention) and binds.
 */
import { isRoutingComponent } from './types.js';
import type { Graph, GraphNode } from './types.js';

export type GraphBindingType = 'pubsub' | 'roundrobin';

export interface BindingEndpoint {
  node: string;
  port: string;
}

export interface GraphBinding {
  type: GraphBindingType;
  /** Outport of a participant. */
  src: BindingEndpoint;
  /** Inport of a participant. */
  tgt: BindingEndpoint;
  /** roundrobin only: inport that receives what `tgt` refuses (nacks). */
  deadletter?: BindingEndpoint;
}

/** The RoundRobin outport whose edge names the dead-letter target. */
export const DEADLETTER_PORT = 'deadletter';

/** Nodes that are participants (processes to run), i.e. not msgflo/RoundRobin or msgflo/PubSub. */
export function participantNodes(graph: Graph): GraphNode[] {
  return graph.nodes.filter((n) => !isRoutingComponent(n.component));
}

/** `{port: data}` of the IIPs sent to `role` (the last one wins per port), as msgflo passed them in #IIPS. */
export function iipsForRole(graph: Graph, role: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const iip of graph.iips) if (iip.tgt.node === role) out[iip.tgt.port] = iip.data;
  return out;
}

function endpointKey(e: BindingEndpoint | undefined): string {
  return e ? `${e.node}\u0000${e.port.toLowerCase()}` : '';
}

/** Identity of a binding (ports compared case-insensitively, like queue names). */
export function bindingKey(b: GraphBinding): string {
  return [b.type, endpointKey(b.src), endpointKey(b.tgt), endpointKey(b.deadletter)].join('\u0001');
}

/**
 * The bindings a graph needs, in edge order, without duplicates:
 * - an edge between two participants → `pubsub` (every target role gets a copy; instances of a role compete);
 * - a msgflo/RoundRobin node: each participant edge into it × each participant edge out of it → one `roundrobin`
 *   binding; an edge from its `deadletter` port sets `deadletter` (one binding per dead-letter target);
 * - a msgflo/PubSub node: each participant source × each participant target → `pubsub`; chains of PubSub nodes
 *   are followed.
 * IIPs, edges naming undeclared nodes, incomplete routing nodes and routing↔RoundRobin edges give no binding
 * (validateGraph reports the invalid ones).
 */
export function graphBindings(graph: Graph): GraphBinding[] {
  const component = new Map(graph.nodes.map((n) => [n.id, n.component]));
  const isParticipant = (id: string) => component.has(id) && !isRoutingComponent(component.get(id)!);
  const is = (id: string, c: string) => component.get(id) === c;
  const ep = (r: { node: string; port: string }): BindingEndpoint => ({ node: r.node, port: r.port });

  const out: GraphBinding[] = [];
  const seen = new Set<string>();
  const add = (b: GraphBinding) => {
    const k = bindingKey(b);
    if (seen.has(k)) return;
    seen.add(k);
    out.push(b);
  };

  /** Participant inports reachable from a PubSub node, through further PubSub nodes. */
  const pubsubTargets = (start: string): BindingEndpoint[] => {
    const targets: BindingEndpoint[] = [];
    const visited = new Set<string>();
    const walk = (id: string) => {
      if (visited.has(id)) return;
      visited.add(id);
      for (const e of graph.edges) {
        if (e.src.node !== id) continue;
        if (isParticipant(e.tgt.node)) targets.push(ep(e.tgt));
        else if (is(e.tgt.node, 'msgflo/PubSub')) walk(e.tgt.node);
      }
    };
    walk(start);
    return targets;
  };

  for (const edge of graph.edges) {
    if (!isParticipant(edge.src.node)) continue; // routing-node out-edges are handled from their sources
    const src = ep(edge.src);
    const tgtNode = edge.tgt.node;
    if (isParticipant(tgtNode)) {
      add({ type: 'pubsub', src, tgt: ep(edge.tgt) });
    } else if (is(tgtNode, 'msgflo/PubSub')) {
      for (const tgt of pubsubTargets(tgtNode)) add({ type: 'pubsub', src, tgt });
    } else if (is(tgtNode, 'msgflo/RoundRobin')) {
      const outs = graph.edges.filter((e) => e.src.node === tgtNode && isParticipant(e.tgt.node));
      const deadletters = outs.filter((e) => e.src.port.toLowerCase() === DEADLETTER_PORT).map((e) => ep(e.tgt));
      const targets = outs.filter((e) => e.src.port.toLowerCase() !== DEADLETTER_PORT).map((e) => ep(e.tgt));
      for (const tgt of targets) {
        if (deadletters.length === 0) add({ type: 'roundrobin', src, tgt });
        for (const deadletter of deadletters) add({ type: 'roundrobin', src, tgt, deadletter });
      }
    }
  }
  return out;
}
