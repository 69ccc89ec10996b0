/**
 * A graph as the runtime protocol edits it: nodes, edges, IIPs (with their actual values), exported ports and
 * groups, changed one protocol command at a time. No I/O: every change returns the messages that announce it
 * (the runtime broadcasts them), or throws a GraphCommandError that becomes a `graph:error` reply.
 */
import { iipValue } from '../coordinator/coordinator.js';
import { type ErrorCode, ErrorCodes } from '../errors.js';
import type { ExportedPort, Graph, GraphEdge, GraphIIP, GraphNode, Metadata, PortRef } from '../graph/types.js';

export interface GraphGroup {
  name: string;
  nodes: string[];
  metadata: Metadata;
}

/** Graph properties that graph:clear sets. */
export interface GraphProperties {
  name?: string;
  library?: string;
  main?: boolean;
  icon?: string;
  description?: string;
}

/** A change message: `graph:<command>` with its payload (without `graph`, added by the caller). */
export interface GraphChange {
  command: string;
  payload: Record<string, unknown>;
}

/** A graph command that cannot be applied; the reply is `graph:error` with `<code>: <message>`. */
export class GraphCommandError extends Error {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = ErrorCodes.GRAPH_INVALID) {
    super(message);
    this.name = 'GraphCommandError';
    this.code = code;
  }
}

const samePort = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const sameIndex = (a: number | string | undefined, b: number | string | undefined) => (a ?? null) === (b ?? null);
const sameRef = (a: PortRef, b: PortRef) => a.node === b.node && samePort(a.port, b.port) && sameIndex(a.index, b.index);

/** The {node, port, index?} of a reference, as the protocol writes it. */
export function refPayload(ref: PortRef): Record<string, unknown> {
  const out: Record<string, unknown> = { node: ref.node, port: ref.port };
  if (ref.index !== undefined) out.index = ref.index;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merge metadata the way the protocol's changenode/changeedge do: keys set to null are removed. */
export function mergeMetadata(current: Metadata, change: Metadata): Metadata {
  const out: Metadata = { ...current };
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

export class GraphDocument {
  readonly id: string;
  properties: GraphProperties;
  nodes: GraphNode[] = [];
  edges: GraphEdge[] = [];
  iips: GraphIIP[] = [];
  inports: ExportedPort[] = [];
  outports: ExportedPort[] = [];
  groups: GraphGroup[] = [];

  constructor(id: string, properties: GraphProperties = {}) {
    this.id = id;
    this.properties = { ...properties };
  }

  /**
   * A document for a graph loaded from a file. IIPs of .fbp files are strings that may hold JSON (`'42'`); the
   * document keeps the value the coordinator would send (42), which is what the protocol shows.
   */
  static fromGraph(graph: Graph, id = graph.name): GraphDocument {
    const doc = new GraphDocument(id, { name: graph.name, main: true });
    doc.nodes = graph.nodes.map((n) => ({ id: n.id, component: n.component, metadata: clone(n.metadata) }));
    doc.edges = graph.edges.map((e) => ({ src: { ...e.src }, tgt: { ...e.tgt }, metadata: clone(e.metadata) }));
    doc.iips = graph.iips.map((i) => ({ data: iipValue(i.data), tgt: { ...i.tgt }, metadata: clone(i.metadata) }));
    doc.inports = graph.inports.map((p) => ({ ...p, metadata: clone(p.metadata) }));
    doc.outports = graph.outports.map((p) => ({ ...p, metadata: clone(p.metadata) }));
    return doc;
  }

  /** The graph in the model the rest of msgflo-ts uses (IIP data as actual values). */
  toGraph(): Graph {
    const properties: Metadata = {};
    for (const [k, v] of Object.entries(this.properties)) if (v !== undefined) properties[k] = v;
    return {
      name: this.properties.name || this.id,
      properties,
      nodes: this.nodes.map((n) => ({ ...n, metadata: clone(n.metadata) })),
      edges: this.edges.map((e) => ({ src: { ...e.src }, tgt: { ...e.tgt }, metadata: clone(e.metadata) })),
      iips: this.iips.map((i) => ({ data: clone(i.data), tgt: { ...i.tgt }, metadata: clone(i.metadata) })),
      inports: this.inports.map((p) => ({ ...p, metadata: clone(p.metadata) })),
      outports: this.outports.map((p) => ({ ...p, metadata: clone(p.metadata) })),
    };
  }

  node(id: string): GraphNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  private requireNode(id: string, what: string): GraphNode {
    const node = this.node(id);
    if (!node) throw new GraphCommandError(`${what}: node '${id}' does not exist in graph '${this.id}'`);
    return node;
  }

  // ── nodes ─────────────────────────────────────────────────────────────────────────────────────────────────

  addNode(id: string, component: string, metadata: Metadata | undefined): GraphChange[] {
    if (this.node(id)) throw new GraphCommandError(`Node '${id}' already exists in graph '${this.id}'`);
    const node: GraphNode = { id, component, metadata: clone(metadata ?? {}) };
    this.nodes.push(node);
    return [{ command: 'addnode', payload: { id, component, metadata: clone(node.metadata) } }];
  }

  /** Remove a node and everything attached to it: edges, IIPs, exported ports, group membership. */
  removeNode(id: string): GraphChange[] {
    this.requireNode(id, 'Cannot remove node');
    const changes: GraphChange[] = [];
    for (const edge of this.edges.filter((e) => e.src.node === id || e.tgt.node === id)) {
      changes.push(...this.removeEdge(edge.src, edge.tgt));
    }
    for (const iip of this.iips.filter((i) => i.tgt.node === id)) changes.push(...this.removeInitial(iip.tgt, iip.data));
    for (const p of this.inports.filter((x) => x.node === id)) changes.push(...this.removeExported('inport', p.public));
    for (const p of this.outports.filter((x) => x.node === id)) changes.push(...this.removeExported('outport', p.public));
    for (const group of this.groups.filter((g) => g.nodes.includes(id))) {
      group.nodes = group.nodes.filter((n) => n !== id);
    }
    this.nodes = this.nodes.filter((n) => n.id !== id);
    changes.push({ command: 'removenode', payload: { id } });
    return changes;
  }

  renameNode(from: string, to: string): GraphChange[] {
    const node = this.requireNode(from, 'Cannot rename node');
    if (from === to) return [{ command: 'renamenode', payload: { from, to } }];
    if (this.node(to)) throw new GraphCommandError(`Cannot rename node '${from}': node '${to}' already exists in graph '${this.id}'`);
    node.id = to;
    const move = (ref: PortRef) => {
      if (ref.node === from) ref.node = to;
    };
    for (const e of this.edges) {
      move(e.src);
      move(e.tgt);
    }
    for (const i of this.iips) move(i.tgt);
    for (const p of [...this.inports, ...this.outports]) if (p.node === from) p.node = to;
    for (const g of this.groups) g.nodes = g.nodes.map((n) => (n === from ? to : n));
    return [{ command: 'renamenode', payload: { from, to } }];
  }

  changeNode(id: string, metadata: Metadata): GraphChange[] {
    const node = this.requireNode(id, 'Cannot change node');
    node.metadata = mergeMetadata(node.metadata, metadata);
    return [{ command: 'changenode', payload: { id, metadata: clone(node.metadata) } }];
  }

  // ── edges ─────────────────────────────────────────────────────────────────────────────────────────────────

  edge(src: PortRef, tgt: PortRef): GraphEdge | undefined {
    return this.edges.find((e) => sameRef(e.src, src) && sameRef(e.tgt, tgt));
  }

  addEdge(src: PortRef, tgt: PortRef, metadata: Metadata | undefined): GraphChange[] {
    this.requireNode(src.node, 'Cannot add edge');
    this.requireNode(tgt.node, 'Cannot add edge');
    if (this.edge(src, tgt)) throw new GraphCommandError(`Edge ${show(src)} -> ${show(tgt)} already exists in graph '${this.id}'`);
    const edge: GraphEdge = { src: { ...src }, tgt: { ...tgt }, metadata: clone(metadata ?? {}) };
    this.edges.push(edge);
    return [{ command: 'addedge', payload: { src: refPayload(src), tgt: refPayload(tgt), metadata: clone(edge.metadata) } }];
  }

  removeEdge(src: PortRef, tgt: PortRef): GraphChange[] {
    const edge = this.edge(src, tgt);
    if (!edge) throw new GraphCommandError(`Edge ${show(src)} -> ${show(tgt)} does not exist in graph '${this.id}'`);
    this.edges = this.edges.filter((e) => e !== edge);
    return [{ command: 'removeedge', payload: { src: refPayload(edge.src), tgt: refPayload(edge.tgt) } }];
  }

  changeEdge(src: PortRef, tgt: PortRef, metadata: Metadata): GraphChange[] {
    const edge = this.edge(src, tgt);
    if (!edge) throw new GraphCommandError(`Edge ${show(src)} -> ${show(tgt)} does not exist in graph '${this.id}'`);
    edge.metadata = mergeMetadata(edge.metadata, metadata);
    return [{ command: 'changeedge', payload: { src: refPayload(edge.src), tgt: refPayload(edge.tgt), metadata: clone(edge.metadata) } }];
  }

  // ── IIPs ──────────────────────────────────────────────────────────────────────────────────────────────────

  addInitial(data: unknown, tgt: PortRef, metadata: Metadata | undefined): GraphChange[] {
    this.requireNode(tgt.node, 'Cannot add IIP');
    const iip: GraphIIP = { data: clone(data), tgt: { ...tgt }, metadata: clone(metadata ?? {}) };
    this.iips.push(iip);
    return [{ command: 'addinitial', payload: { src: { data: clone(data) }, tgt: refPayload(tgt), metadata: clone(iip.metadata) } }];
  }

  /**
   * Remove the IIP sent to `tgt` (the one with `data` when given, else the last one added); the change carries the
   * removed IIP's data.
   */
  removeInitial(tgt: PortRef, data?: unknown): GraphChange[] {
    const matches = this.iips.filter((i) => sameRef(i.tgt, tgt));
    const wanted = data === undefined ? matches : matches.filter((i) => JSON.stringify(i.data) === JSON.stringify(data));
    const iip = wanted[wanted.length - 1];
    if (!iip) throw new GraphCommandError(`No IIP to ${show(tgt)} in graph '${this.id}'`);
    this.iips = this.iips.filter((i) => i !== iip);
    return [{ command: 'removeinitial', payload: { src: { data: clone(iip.data) }, tgt: refPayload(iip.tgt) } }];
  }

  // ── exported ports ────────────────────────────────────────────────────────────────────────────────────────

  private exportedList(kind: 'inport' | 'outport'): ExportedPort[] {
    return kind === 'inport' ? this.inports : this.outports;
  }

  exported(kind: 'inport' | 'outport', name: string): ExportedPort | undefined {
    return this.exportedList(kind).find((p) => samePort(p.public, name));
  }

  addExported(kind: 'inport' | 'outport', pub: string, node: string, port: string, metadata: Metadata | undefined): GraphChange[] {
    this.requireNode(node, `Cannot export ${kind} '${pub}'`);
    const list = this.exportedList(kind);
    const existing = this.exported(kind, pub);
    const entry: ExportedPort = { public: pub, node, port, metadata: clone(metadata ?? {}) };
    // Re-exporting a public name moves it (noflo does the same).
    if (existing) list.splice(list.indexOf(existing), 1, entry);
    else list.push(entry);
    const payload: Record<string, unknown> = { public: pub, node, port };
    if (metadata !== undefined) payload.metadata = clone(metadata);
    return [{ command: `add${kind}`, payload }];
  }

  removeExported(kind: 'inport' | 'outport', pub: string): GraphChange[] {
    const existing = this.exported(kind, pub);
    if (!existing) throw new GraphCommandError(`Graph '${this.id}' has no exported ${kind} '${pub}'`);
    const list = this.exportedList(kind);
    list.splice(list.indexOf(existing), 1);
    return [{ command: `remove${kind}`, payload: { public: existing.public } }];
  }

  renameExported(kind: 'inport' | 'outport', from: string, to: string): GraphChange[] {
    const existing = this.exported(kind, from);
    if (!existing) throw new GraphCommandError(`Graph '${this.id}' has no exported ${kind} '${from}'`);
    const clash = this.exported(kind, to);
    if (clash && clash !== existing) throw new GraphCommandError(`Graph '${this.id}' already exports an ${kind} '${to}'`);
    existing.public = to;
    return [{ command: `rename${kind}`, payload: { from, to } }];
  }

  // ── groups ────────────────────────────────────────────────────────────────────────────────────────────────

  private group(name: string): GraphGroup | undefined {
    return this.groups.find((g) => g.name === name);
  }

  addGroup(name: string, nodes: string[], metadata: Metadata | undefined): GraphChange[] {
    if (this.group(name)) throw new GraphCommandError(`Group '${name}' already exists in graph '${this.id}'`);
    for (const n of nodes) this.requireNode(n, `Cannot add group '${name}'`);
    this.groups.push({ name, nodes: [...nodes], metadata: clone(metadata ?? {}) });
    const payload: Record<string, unknown> = { name, nodes: [...nodes] };
    if (metadata !== undefined) payload.metadata = clone(metadata);
    return [{ command: 'addgroup', payload }];
  }

  removeGroup(name: string): GraphChange[] {
    const group = this.group(name);
    if (!group) throw new GraphCommandError(`Group '${name}' does not exist in graph '${this.id}'`);
    this.groups = this.groups.filter((g) => g !== group);
    return [{ command: 'removegroup', payload: { name } }];
  }

  renameGroup(from: string, to: string): GraphChange[] {
    const group = this.group(from);
    if (!group) throw new GraphCommandError(`Group '${from}' does not exist in graph '${this.id}'`);
    if (from !== to && this.group(to)) throw new GraphCommandError(`Group '${to}' already exists in graph '${this.id}'`);
    group.name = to;
    return [{ command: 'renamegroup', payload: { from, to } }];
  }

  changeGroup(name: string, metadata: Metadata): GraphChange[] {
    const group = this.group(name);
    if (!group) throw new GraphCommandError(`Group '${name}' does not exist in graph '${this.id}'`);
    group.metadata = mergeMetadata(group.metadata, metadata);
    return [{ command: 'changegroup', payload: { name, metadata: clone(group.metadata) } }];
  }
}

/** `node.PORT[index]`, for messages. */
export function show(ref: PortRef): string {
  return `${ref.node}.${ref.port}${ref.index !== undefined ? `[${ref.index}]` : ''}`;
}

/** Read a {node, port, index?} from a (schema-checked) payload. */
export function refOf(value: unknown): PortRef {
  const v = isObject(value) ? value : {};
  const ref: PortRef = { node: String(v.node), port: String(v.port) };
  if (typeof v.index === 'number') ref.index = v.index;
  else if (typeof v.index === 'string' && /^\d+$/.test(v.index)) ref.index = Number(v.index);
  return ref;
}
