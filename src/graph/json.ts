/**
 * The fbp-graph JSON format (what Flowhub, `fbp` and noflo write) ⇄ our Graph model.
 *
 * Loading is done here rather than with fbp-graph's `loadJSON`: that one is asynchronous, lower-cases port names
 * unless `caseSensitive` is set, and silently drops edges and IIPs whose node is not declared, so
 * `validateGraph` could not report them. The output of `graphToJson` is typed with fbp-graph's own `GraphJson`
 * and loads in fbp-graph unchanged (see spec/graph/json.spec.ts).
 */
import type { GraphJson, GraphJsonEdge, GraphExportedPort } from 'fbp-graph/lib/Types.js';
import { GraphInvalidError, GraphParseError } from '../errors.js';
import { locateJsonError } from './json-location.js';
import { defaultGraphName } from './name.js';
import type { ExportedPort, Graph, GraphEdge, GraphIIP, GraphNode, Metadata, PortRef } from './types.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse JSON text, turning a syntax error into a GraphParseError at the right line and column. */
function parseJsonText(text: string, file: string | undefined): unknown {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(source);
  } catch (err) {
    const loc = locateJsonError(source);
    if (loc) throw new GraphParseError({ file, line: loc.line, column: loc.column }, `invalid JSON: ${loc.detail}`, { cause: err });
    // JSON.parse and our scanner disagree: should not happen, report what JSON.parse said.
    throw new GraphParseError({ file, line: 1, column: 1 }, `invalid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Collects shape problems of a JSON graph, with a path to each, e.g. `connections[3].tgt.port`. */
class ShapeChecker {
  readonly problems: string[] = [];

  metadata(v: unknown, where: string): Metadata {
    if (v === undefined || v === null) return {};
    if (!isObject(v)) {
      this.problems.push(`${where}.metadata must be an object`);
      return {};
    }
    return { ...v };
  }

  portRef(v: unknown, where: string): PortRef | undefined {
    if (!isObject(v)) {
      this.problems.push(`${where} must be an object {process, port}`);
      return undefined;
    }
    let ok = true;
    if (typeof v.process !== 'string' || v.process === '') {
      this.problems.push(`${where}.process must be a non-empty string`);
      ok = false;
    }
    if (typeof v.port !== 'string' || v.port === '') {
      this.problems.push(`${where}.port must be a non-empty string`);
      ok = false;
    }
    if (v.index !== undefined && v.index !== null && !(typeof v.index === 'number' && Number.isInteger(v.index) && v.index >= 0)) {
      this.problems.push(`${where}.index must be a non-negative integer`);
      ok = false;
    }
    if (!ok) return undefined;
    const ref: PortRef = { node: v.process as string, port: v.port as string };
    if (typeof v.index === 'number') ref.index = v.index;
    return ref;
  }

  exported(v: unknown, key: 'inports' | 'outports'): ExportedPort[] {
    if (v === undefined || v === null) return [];
    // msgflo 0.12's serializeGraph always wrote `inports: []`.
    if (Array.isArray(v) && v.length === 0) return [];
    if (!isObject(v)) {
      this.problems.push(`${key} must be an object mapping public port names to {process, port}`);
      return [];
    }
    const out: ExportedPort[] = [];
    for (const [pub, def] of Object.entries(v)) {
      const where = `${key}.${pub}`;
      const ref = this.portRef(def, where);
      if (!ref) continue;
      out.push({ public: pub, node: ref.node, port: ref.port, metadata: this.metadata((def as Record<string, unknown>).metadata, where) });
    }
    return out;
  }
}

/** Build our Graph from an already parsed fbp-graph JSON object; shape problems throw GraphInvalidError. */
function fromGraphJson(json: unknown, file: string | undefined): Graph {
  const check = new ShapeChecker();
  if (!isObject(json)) throw new GraphInvalidError(file, ['a JSON graph must be an object {properties, processes, connections, inports, outports}']);

  let properties: Metadata = {};
  if (json.properties !== undefined && json.properties !== null) {
    if (isObject(json.properties)) properties = { ...json.properties };
    else check.problems.push('properties must be an object');
  }
  const { name: rawName, ...otherProperties } = properties;
  if (rawName !== undefined && typeof rawName !== 'string') check.problems.push('properties.name must be a string');

  const nodes: GraphNode[] = [];
  if (json.processes !== undefined && json.processes !== null) {
    if (!isObject(json.processes)) check.problems.push('processes must be an object mapping node ids to {component, metadata}');
    else {
      for (const [id, def] of Object.entries(json.processes)) {
        const where = `processes.${id}`;
        if (!isObject(def)) {
          check.problems.push(`${where} must be an object {component, metadata}`);
          continue;
        }
        let component = '';
        if (typeof def.component === 'string') component = def.component;
        else if (def.component !== undefined && def.component !== null) check.problems.push(`${where}.component must be a string`);
        nodes.push({ id, component, metadata: check.metadata(def.metadata, where) });
      }
    }
  }

  const edges: GraphEdge[] = [];
  const iips: GraphIIP[] = [];
  if (json.connections !== undefined && json.connections !== null) {
    if (!Array.isArray(json.connections)) check.problems.push('connections must be an array');
    else {
      json.connections.forEach((conn: unknown, i: number) => {
        const where = `connections[${i}]`;
        if (!isObject(conn)) {
          check.problems.push(`${where} must be an object {src, tgt} or {data, tgt}`);
          return;
        }
        const tgt = check.portRef(conn.tgt, `${where}.tgt`);
        const metadata = check.metadata(conn.metadata, where);
        // Like fbp-graph: any `data` key (even null, 0, false or '') makes an IIP; msgflo 0.12 tested truthiness.
        if ('data' in conn && conn.data !== undefined) {
          if (tgt) iips.push({ data: conn.data, tgt, metadata });
          return;
        }
        const src = check.portRef(conn.src, `${where}.src`);
        if (src && tgt) edges.push({ src, tgt, metadata });
      });
    }
  }

  const inports = check.exported(json.inports, 'inports');
  const outports = check.exported(json.outports, 'outports');
  if (check.problems.length) throw new GraphInvalidError(file, check.problems);

  const graph: Graph = {
    name: typeof rawName === 'string' && rawName !== '' ? rawName : defaultGraphName(file),
    properties: otherProperties,
    nodes,
    edges,
    iips,
    inports,
    outports,
  };
  if (file !== undefined) graph.file = file;
  return graph;
}

/**
 * Parse a graph in the fbp-graph JSON format (`processes`, `connections` with `src`/`tgt` or `data`,
 * `inports`/`outports` as `{process, port, metadata}`, `properties`).
 *
 * Port names are kept as written (msgflo did the same; participants' port ids are matched case-insensitively).
 * Only the shape is checked here: use `validateGraph` for references (or `loadGraph`, which does both).
 * @throws GraphParseError for malformed JSON, with the line and column of the error.
 * @throws GraphInvalidError when the JSON is not shaped like a graph, listing every problem.
 */
export function parseJsonGraph(source: string | object, file?: string): Graph {
  const json = typeof source === 'string' ? parseJsonText(source, file) : source;
  return fromGraphJson(json, file);
}

function portJson(ref: PortRef): { process: string; port: string; index?: number } {
  const out: { process: string; port: string; index?: number } = { process: ref.node, port: ref.port };
  if (typeof ref.index === 'number') out.index = ref.index;
  return out;
}

/** `properties` with `name` first (the graph's own name wins over a stray `properties.name`). */
function withName(name: string, properties: Metadata): Metadata {
  const { name: _ignored, ...rest } = properties;
  return { name, ...rest };
}

function hasKeys(m: Metadata): boolean {
  return Object.keys(m).length > 0;
}

/**
 * Serialize a graph to the fbp-graph JSON format, keeping IIPs (msgflo#126 lost them) and exported ports
 * (msgflo 0.12 always wrote them empty). `parseJsonGraph(graphToJson(g))` gives `g` back (without `file`).
 * `caseSensitive` is true only when some port name has upper-case letters, so that fbp-graph keeps them as written.
 */
export function graphToJson(graph: Graph): GraphJson {
  const clone = <T>(v: T): T => structuredClone(v);
  const ports = [
    ...graph.edges.flatMap((e) => [e.src.port, e.tgt.port]),
    ...graph.iips.map((i) => i.tgt.port),
    ...graph.inports.flatMap((p) => [p.port, p.public]),
    ...graph.outports.flatMap((p) => [p.port, p.public]),
  ];
  const processes: NonNullable<GraphJson['processes']> = {};
  for (const node of graph.nodes) processes[node.id] = { component: node.component, metadata: clone(node.metadata) };
  const connections: GraphJsonEdge[] = [];
  for (const edge of graph.edges) {
    const c: GraphJsonEdge = { src: portJson(edge.src), tgt: portJson(edge.tgt) };
    if (hasKeys(edge.metadata)) c.metadata = clone(edge.metadata);
    connections.push(c);
  }
  for (const iip of graph.iips) {
    const c: GraphJsonEdge = { data: clone(iip.data), tgt: portJson(iip.tgt) };
    if (hasKeys(iip.metadata)) c.metadata = clone(iip.metadata);
    connections.push(c);
  }
  const exported = (list: ExportedPort[]) => {
    const out: Record<string, GraphExportedPort> = {};
    for (const p of list) {
      const e: GraphExportedPort = { process: p.node, port: p.port };
      if (hasKeys(p.metadata)) e.metadata = clone(p.metadata);
      out[p.public] = e;
    }
    return out;
  };
  return {
    caseSensitive: ports.some((p) => p !== p.toLowerCase()),
    properties: withName(graph.name, clone(graph.properties)),
    processes,
    connections,
    inports: exported(graph.inports),
    outports: exported(graph.outports),
  };
}
