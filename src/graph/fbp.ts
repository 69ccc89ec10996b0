/** The .fbp language (npm `fbp`) → our Graph model. */
import fbp from 'fbp';
import type { FbpGraphJson, FbpPortRef } from 'fbp';
import { GraphParseError } from '../errors.js';
import { defaultGraphName } from './name.js';
import type { ExportedPort, Graph, GraphEdge, GraphIIP, GraphNode, Metadata, PortRef } from './types.js';

function portRef(p: FbpPortRef): PortRef {
  const ref: PortRef = { node: p.process, port: p.port };
  if (typeof p.index === 'number') ref.index = p.index;
  return ref;
}

function exported(map: FbpGraphJson['inports']): ExportedPort[] {
  return Object.entries(map).map(([pub, p]) => ({ public: pub, node: p.process, port: p.port, metadata: {} }));
}

/**
 * Parse the .fbp language with npm `fbp`, using its default options as msgflo did: port names (including the
 * public names of `INPORT=`/`OUTPORT=`) are lower-cased, node names and components are kept as written.
 * `# @name X` sets the graph name, `# @runtime msgflo` sets `properties.environment.type`.
 *
 * Only the syntax is checked here; `validateGraph` checks references (`loadGraph` does both).
 * IIPs keep what the parser gives: a quoted IIP (`'text' -> IN a`) is the string `text`, a JSON literal IIP
 * (`{"a": 1} -> IN a`) is the parsed value.
 * @throws GraphParseError with the parser's line and column.
 */
export function parseFbp(source: string, file?: string): Graph {
  let json: FbpGraphJson;
  try {
    // validateContents: false — references are validateGraph's job, which reports all problems at once.
    json = fbp.parse(source.charCodeAt(0) === 0xfeff ? source.slice(1) : source, { caseSensitive: false, validateContents: false });
  } catch (err) {
    if (err instanceof fbp.SyntaxError && err.location) {
      const { line, column } = err.location.start;
      throw new GraphParseError({ file, line, column }, err.message, { cause: err });
    }
    throw new GraphParseError({ file, line: 1, column: 1 }, err instanceof Error ? err.message : String(err), { cause: err });
  }

  const nodes: GraphNode[] = Object.entries(json.processes).map(([id, p]) => ({
    id,
    component: p.component ?? '',
    metadata: { ...(p.metadata ?? {}) },
  }));
  const edges: GraphEdge[] = [];
  const iips: GraphIIP[] = [];
  for (const c of json.connections) {
    const metadata: Metadata = { ...(c.metadata ?? {}) };
    if (c.src) edges.push({ src: portRef(c.src), tgt: portRef(c.tgt), metadata });
    else iips.push({ data: c.data, tgt: portRef(c.tgt), metadata });
  }
  const { name, ...properties } = json.properties ?? {};
  const graph: Graph = {
    // fbp keeps trailing blanks of `# @name x ` in the value
    name: typeof name === 'string' && name.trim() !== '' ? name.trim() : defaultGraphName(file),
    properties,
    nodes,
    edges,
    iips,
    inports: exported(json.inports),
    outports: exported(json.outports),
  };
  if (file !== undefined) graph.file = file;
  return graph;
}
