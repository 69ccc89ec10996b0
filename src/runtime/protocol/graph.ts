/**
 * The graph sub-protocol: every command edits a graph document and is announced to every client. Changes to
 * the live graph go to the broker (processes, bindings, IIPs; see live.ts).
 *
 * A node needs a component the runtime knows (library, routing node, or announced on the broker); an edge, IIP
 * or exported port needs a port the component has, when its ports are known. `graph:clear` makes the graph
 * the live one (msgflo runs one network at a time).
 */
import { ErrorCodes, UnknownComponentError } from '../../errors.js';
import { graphProblems } from '../../graph/validate.js';
import type { Metadata, PortRef } from '../../graph/types.js';
import { GRAPH_NOT_FOUND, PlainProtocolError, type HandlerContext, type Payload, type ProtocolHandlers } from '../context.js';
import { GraphCommandError, GraphDocument, refOf, type GraphChange, type GraphProperties } from '../graph-doc.js';

/** The graph a command names (fbp-test's exact errors for none / an unknown one are given by the runtime). */
function docOf(ctx: HandlerContext, payload: Payload): GraphDocument {
  const doc = ctx.runtime.graphs.get(String(payload.graph));
  if (!doc) throw new PlainProtocolError(GRAPH_NOT_FOUND);
  return doc;
}

function metadataOf(v: unknown): Metadata | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Metadata) : undefined;
}

/** Announce changes of `doc` to every client; tell the live network when it is the live graph. */
function announce(ctx: HandlerContext, doc: GraphDocument, changes: GraphChange[], options: { live?: boolean; ports?: boolean } = {}): void {
  for (const c of changes) ctx.broadcast(c.command, { ...c.payload, graph: doc.id });
  if (ctx.runtime.live.isLive(doc.id)) {
    if (options.live ?? true) ctx.runtime.live.changed();
    if (options.ports) ctx.runtime.announcePorts(doc);
  }
}

/** Apply a change, and undo it (restore the document) when it makes the graph invalid. */
function checked(doc: GraphDocument, change: () => GraphChange[]): GraphChange[] {
  const before = graphProblems(doc.toGraph());
  const snapshot = structuredClone({ nodes: doc.nodes, edges: doc.edges, iips: doc.iips, inports: doc.inports, outports: doc.outports, groups: doc.groups });
  const changes = change();
  const added = graphProblems(doc.toGraph()).filter((p) => !before.includes(p));
  if (added.length) {
    Object.assign(doc, snapshot);
    throw new GraphCommandError(added.join('; '));
  }
  return changes;
}

/** Check that `ref` names a port of its node's component (when the runtime knows that component's ports). */
async function requirePort(ctx: HandlerContext, doc: GraphDocument, ref: PortRef, direction: 'inport' | 'outport'): Promise<void> {
  const node = doc.node(ref.node);
  if (!node) throw new GraphCommandError(`node '${ref.node}' does not exist in graph '${doc.id}'`);
  const ports = await ctx.runtime.portsOf(doc, ref.node, direction);
  if (!ports) return;
  if (ports.some((p) => p.toLowerCase() === ref.port.toLowerCase())) return;
  throw new GraphCommandError(
    `node '${ref.node}' (${node.component}) has no ${direction} '${ref.port}'. Known: ${ports.join(', ') || '(none)'}`,
    ErrorCodes.UNKNOWN_PORT,
  );
}

const NODE_ID = /^[^\s+#]+$/;

export const graphHandlers: ProtocolHandlers = {
  clear(ctx, payload) {
    const id = String(payload.id);
    const properties: GraphProperties = {};
    const echo: Payload = { id };
    for (const key of ['name', 'library', 'main', 'icon', 'description'] as const) {
      if (payload[key] === undefined) continue;
      (properties as Record<string, unknown>)[key] = payload[key];
      echo[key] = payload[key];
    }
    const doc = new GraphDocument(id, properties);
    ctx.runtime.graphs.set(id, doc);
    ctx.broadcast('clear', echo);
    ctx.runtime.makeLive(doc);
  },

  async addnode(ctx, payload) {
    const doc = docOf(ctx, payload);
    const id = String(payload.id);
    const component = String(payload.component);
    if (!NODE_ID.test(id)) {
      throw new GraphCommandError(`node id '${id}' must not be empty or contain whitespace, '+' or '#': it becomes a role and queue names`);
    }
    if (!(await ctx.runtime.knowsComponent(component))) {
      const known = (await ctx.runtime.catalog.list()).map((c) => c.description.name);
      throw new GraphCommandError(new UnknownComponentError(component, id, known).message.split('\n')[0]!, ErrorCodes.UNKNOWN_COMPONENT);
    }
    announce(ctx, doc, doc.addNode(id, component, metadataOf(payload.metadata)));
  },

  removenode(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.removeNode(String(payload.id)), { ports: true });
  },

  renamenode(ctx, payload) {
    const doc = docOf(ctx, payload);
    const to = String(payload.to);
    if (!NODE_ID.test(to)) throw new GraphCommandError(`node id '${to}' must not be empty or contain whitespace, '+' or '#'`);
    announce(ctx, doc, doc.renameNode(String(payload.from), to), { ports: true });
  },

  changenode(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.changeNode(String(payload.id), metadataOf(payload.metadata) ?? {}), { live: false });
  },

  async addedge(ctx, payload) {
    const doc = docOf(ctx, payload);
    const src = refOf(payload.src);
    const tgt = refOf(payload.tgt);
    await requirePort(ctx, doc, src, 'outport');
    await requirePort(ctx, doc, tgt, 'inport');
    announce(ctx, doc, checked(doc, () => doc.addEdge(src, tgt, metadataOf(payload.metadata))));
  },

  removeedge(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.removeEdge(refOf(payload.src), refOf(payload.tgt)));
  },

  changeedge(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.changeEdge(refOf(payload.src), refOf(payload.tgt), metadataOf(payload.metadata) ?? {}), { live: false });
  },

  async addinitial(ctx, payload) {
    const doc = docOf(ctx, payload);
    const tgt = refOf(payload.tgt);
    await requirePort(ctx, doc, tgt, 'inport');
    const data = (payload.src as { data: unknown }).data;
    announce(ctx, doc, checked(doc, () => doc.addInitial(data, tgt, metadataOf(payload.metadata))));
  },

  removeinitial(ctx, payload) {
    const doc = docOf(ctx, payload);
    const src = payload.src as { data: unknown } | undefined;
    announce(ctx, doc, doc.removeInitial(refOf(payload.tgt), src?.data));
  },

  async addinport(ctx, payload) {
    const doc = docOf(ctx, payload);
    const ref = { node: String(payload.node), port: String(payload.port) };
    await requirePort(ctx, doc, ref, 'inport');
    announce(ctx, doc, checked(doc, () => doc.addExported('inport', String(payload.public), ref.node, ref.port, metadataOf(payload.metadata))), { ports: true });
  },

  async addoutport(ctx, payload) {
    const doc = docOf(ctx, payload);
    const ref = { node: String(payload.node), port: String(payload.port) };
    await requirePort(ctx, doc, ref, 'outport');
    announce(ctx, doc, checked(doc, () => doc.addExported('outport', String(payload.public), ref.node, ref.port, metadataOf(payload.metadata))), { ports: true });
  },

  removeinport(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.removeExported('inport', String(payload.public)), { ports: true });
  },

  removeoutport(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.removeExported('outport', String(payload.public)), { ports: true });
  },

  renameinport(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.renameExported('inport', String(payload.from), String(payload.to)), { ports: true });
  },

  renameoutport(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.renameExported('outport', String(payload.from), String(payload.to)), { ports: true });
  },

  addgroup(ctx, payload) {
    const doc = docOf(ctx, payload);
    const nodes = Array.isArray(payload.nodes) ? payload.nodes.map(String) : [];
    announce(ctx, doc, doc.addGroup(String(payload.name), nodes, metadataOf(payload.metadata)), { live: false });
  },

  removegroup(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.removeGroup(String(payload.name)), { live: false });
  },

  renamegroup(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.renameGroup(String(payload.from), String(payload.to)), { live: false });
  },

  changegroup(ctx, payload) {
    const doc = docOf(ctx, payload);
    announce(ctx, doc, doc.changeGroup(String(payload.name), metadataOf(payload.metadata) ?? {}), { live: false });
  },
};
