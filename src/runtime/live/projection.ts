/**
 * The live graph as the broker sees it: node `a` runs as role `<prefix>a` (runtimes sharing a broker stay
 * apart), and edges and IIPs exist only while the network is started. Pure functions of the graph document.
 */
import type { Graph, PortRef } from '../../graph/types.js';
import { isRoutingComponent } from '../../graph/types.js';
import type { GraphDocument } from '../graph-doc.js';

export class RoleNames {
  constructor(readonly prefix: string) {}

  role(node: string): string {
    return `${this.prefix}${node}`;
  }

  ref(ref: PortRef): PortRef {
    return { ...ref, node: this.role(ref.node) };
  }

  /** The node of `doc` that runs as `role`, if any. */
  nodeOf(doc: GraphDocument | undefined, role: string): string | undefined {
    if (!doc || !role.startsWith(this.prefix)) return undefined;
    const id = role.slice(this.prefix.length);
    return doc.node(id) ? id : undefined;
  }
}

/** Whether `node` is a participant of `doc` (a node that is not a routing node). */
export function isParticipant(doc: GraphDocument | undefined, node: string): boolean {
  const n = doc?.node(node);
  return n !== undefined && !isRoutingComponent(n.component);
}

/** `node` and every node its packets can reach through edges. */
export function downstream(doc: GraphDocument | undefined, node: string): Set<string> {
  const seen = new Set([node]);
  const walk = [node];
  while (walk.length) {
    const id = walk.pop()!;
    for (const e of doc?.edges ?? []) {
      if (e.src.node === id && !seen.has(e.tgt.node)) {
        seen.add(e.tgt.node);
        walk.push(e.tgt.node);
      }
    }
  }
  return seen;
}

/** The graph the coordinator keeps the broker converged to: roles prefixed; edges and IIPs only while started. */
export function brokerGraph(doc: GraphDocument | undefined, names: RoleNames, started: boolean): Graph | undefined {
  if (!doc) return undefined;
  const g = doc.toGraph();
  const ref = (r: PortRef) => names.ref(r);
  return {
    ...g,
    nodes: g.nodes.map((n) => ({ ...n, id: names.role(n.id) })),
    edges: started ? g.edges.map((e) => ({ ...e, src: ref(e.src), tgt: ref(e.tgt) })) : [],
    // The coordinator reads a string IIP as JSON when it holds JSON (.fbp files); the protocol gives the value.
    iips: started ? g.iips.map((i) => ({ ...i, tgt: ref(i.tgt), data: typeof i.data === 'string' ? JSON.stringify(i.data) : i.data })) : [],
    inports: g.inports.map((p) => ({ ...p, node: names.role(p.node) })),
    outports: g.outports.map((p) => ({ ...p, node: names.role(p.node) })),
  };
}
