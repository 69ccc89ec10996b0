/** The ports of the runtime's graphs as the protocol describes them: a node's port ids, and runtime:ports. */
import type { ParticipantRegistry } from '../coordinator/registry.js';
import type { ComponentCatalog, ProtocolPort } from './components.js';
import type { Payload } from './context.js';
import type { GraphDocument } from './graph-doc.js';

/**
 * Port ids of a node: from its live participant (`role`, when the graph is live), else from its component;
 * undefined when unknown.
 */
export async function nodePorts(
  doc: GraphDocument,
  node: string,
  direction: 'inport' | 'outport',
  catalog: ComponentCatalog,
  live: { registry: ParticipantRegistry; role: string } | undefined,
): Promise<string[] | undefined> {
  const n = doc.node(node);
  if (!n) return undefined;
  if (live) {
    const entry = live.registry.byRole(live.role)[0];
    if (entry) return (direction === 'inport' ? entry.info.inports : entry.info.outports).map((p) => p.id);
  }
  const c = await catalog.entry(n.component);
  if (!c?.portsKnown) return undefined;
  return (direction === 'inport' ? c.description.inPorts : c.description.outPorts).map((p) => p.id);
}

function portInfo(doc: GraphDocument, catalog: ComponentCatalog, node: string, port: string, direction: 'inport' | 'outport'): ProtocolPort | undefined {
  const n = doc.node(node);
  if (!n) return undefined;
  const c = catalog.entryNow(n.component);
  const list = direction === 'inport' ? c?.description.inPorts : c?.description.outPorts;
  return list?.find((p) => p.id.toLowerCase() === port.toLowerCase());
}

/** runtime:ports of a graph: its exported ports. */
export function portsPayload(doc: GraphDocument, catalog: ComponentCatalog): Payload {
  const ports = (list: GraphDocument['inports'], direction: 'inport' | 'outport') =>
    list.map((p) => {
      const inner = portInfo(doc, catalog, p.node, p.port, direction);
      const out: ProtocolPort = { id: p.public, type: inner?.type ?? 'any', required: false, addressable: false };
      if (inner?.description) out.description = inner.description;
      return out;
    });
  return { graph: doc.id, inPorts: ports(doc.inports, 'inport'), outPorts: ports(doc.outports, 'outport') };
}
