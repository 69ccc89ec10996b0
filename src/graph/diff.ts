/** What changed between two versions of a graph: what the coordinator reconciles on a graph change. */
import type { ExportedPort, Graph, GraphEdge, GraphIIP, GraphNode, PortRef } from './types.js';

export interface Change<T> {
  before: T;
  after: T;
}

export interface NodeChange extends Change<GraphNode> {
  id: string;
  /** The component differs: the participant must be restarted. */
  component: boolean;
  /** The metadata differs (only). */
  metadata: boolean;
}

export interface ListDiff<T> {
  added: T[];
  removed: T[];
  /** Same identity, different metadata. */
  changed: Change<T>[];
}

export interface GraphDiff {
  /** Nodes by id; `changed` when component or metadata differ. */
  nodes: { added: GraphNode[]; removed: GraphNode[]; changed: NodeChange[] };
  /** Edges by (src node, port, index) → (tgt node, port, index); ports compared case-insensitively. */
  edges: ListDiff<GraphEdge>;
  /** IIPs by target and data (deep); the same IIP twice counts twice. */
  iips: ListDiff<GraphIIP>;
  /** Exported ports by public name (case-insensitive) and internal node/port. */
  inports: ListDiff<ExportedPort>;
  outports: ListDiff<ExportedPort>;
  /** The graph's name or properties differ. */
  properties: boolean;
}

/** Deterministic JSON-like text of any value, object keys sorted: equal text ⇔ deep-equal data. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return `${value}n`;
    return JSON.stringify(value) ?? String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function refKey(r: PortRef): string {
  return `${r.node}\u0000${r.port.toLowerCase()}\u0000${r.index ?? ''}`;
}

/** Identity of an edge, e.g. to keep per-edge state in a Map. */
export function edgeKey(e: GraphEdge): string {
  return `${refKey(e.src)}\u0001${refKey(e.tgt)}`;
}

/** Identity of an IIP: its target and its data. */
export function iipKey(i: GraphIIP): string {
  return `${refKey(i.tgt)}\u0001${canonicalJson(i.data)}`;
}

function exportKey(p: ExportedPort): string {
  return `${p.public.toLowerCase()}\u0001${refKey({ node: p.node, port: p.port })}`;
}

/** Multiset diff: items pair up by key, in order; paired items whose metadata differ are `changed`. */
function diffLists<T extends { metadata: unknown }>(before: T[], after: T[], key: (t: T) => string): ListDiff<T> {
  const pending = new Map<string, T[]>();
  for (const item of before) {
    const k = key(item);
    const list = pending.get(k);
    if (list) list.push(item);
    else pending.set(k, [item]);
  }
  const out: ListDiff<T> = { added: [], removed: [], changed: [] };
  for (const item of after) {
    const match = pending.get(key(item))?.shift();
    if (match === undefined) out.added.push(item);
    else if (!same(match.metadata, item.metadata)) out.changed.push({ before: match, after: item });
  }
  for (const list of pending.values()) out.removed.push(...list);
  return out;
}

/**
 * Compare two graphs. Everything `a` has and `b` lacks is `removed`, everything `b` adds is `added`.
 * @example const d = diffGraphs(old, next); for (const n of d.nodes.removed) stop(n.id);
 */
export function diffGraphs(a: Graph, b: Graph): GraphDiff {
  const beforeNodes = new Map(a.nodes.map((n) => [n.id, n]));
  const afterIds = new Set(b.nodes.map((n) => n.id));
  const nodes: GraphDiff['nodes'] = { added: [], removed: [], changed: [] };
  for (const after of b.nodes) {
    const before = beforeNodes.get(after.id);
    if (!before) {
      nodes.added.push(after);
      continue;
    }
    const component = before.component !== after.component;
    const metadata = !same(before.metadata, after.metadata);
    if (component || metadata) nodes.changed.push({ id: after.id, before, after, component, metadata });
  }
  for (const before of a.nodes) if (!afterIds.has(before.id)) nodes.removed.push(before);

  return {
    nodes,
    edges: diffLists(a.edges, b.edges, edgeKey),
    iips: diffLists(a.iips, b.iips, iipKey),
    inports: diffLists(a.inports, b.inports, exportKey),
    outports: diffLists(a.outports, b.outports, exportKey),
    properties: a.name !== b.name || !same(a.properties, b.properties),
  };
}

/** True when diffGraphs found nothing. */
export function isEmptyDiff(d: GraphDiff): boolean {
  const lists = [d.edges, d.iips, d.inports, d.outports];
  return (
    !d.properties &&
    d.nodes.added.length === 0 &&
    d.nodes.removed.length === 0 &&
    d.nodes.changed.length === 0 &&
    lists.every((l) => l.added.length === 0 && l.removed.length === 0 && l.changed.length === 0)
  );
}
