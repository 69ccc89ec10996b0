import { GraphInvalidError } from '../errors.js';
import { isRoutingComponent } from './types.js';
import type { Graph, PortRef } from './types.js';

/** Characters a node id (= role) may not contain: it becomes part of queue names and MQTT topics. */
const BAD_ROLE_CHARS = /[\s+#]/;

/**
 * Every problem of a graph, as readable sentences (empty when the graph is valid):
 * - a node id that is empty, duplicated, or has whitespace, '+' or '#' (it becomes queue and topic names);
 * - a node without a component;
 * - an edge, IIP or exported port that names a node the graph does not declare, or has an empty port name;
 * - two exported inports (or outports) with the same public name (compared case-insensitively);
 * - an exported port on a routing node (msgflo/RoundRobin, msgflo/PubSub have no queues of their own);
 * - an edge between a msgflo/RoundRobin and another routing node (the broker cannot chain those).
 */
export function graphProblems(graph: Graph): string[] {
  const problems: string[] = [];
  const components = new Map<string, string>();
  for (const node of graph.nodes) {
    if (typeof node.id !== 'string' || node.id === '') {
      problems.push('a node has an empty id');
      continue;
    }
    if (components.has(node.id)) problems.push(`node '${node.id}' is declared more than once`);
    else components.set(node.id, node.component);
    if (BAD_ROLE_CHARS.test(node.id)) problems.push(`node id '${node.id}' contains whitespace, '+' or '#', which cannot be used in queue names`);
    if (typeof node.component !== 'string' || node.component === '') problems.push(`node '${node.id}' has no component`);
  }

  const ref = (r: PortRef, what: string) => {
    if (!components.has(r.node)) problems.push(`${what} names node '${r.node}', which the graph does not declare`);
    if (typeof r.port !== 'string' || r.port === '') problems.push(`${what} has an empty port name`);
  };
  const show = (r: PortRef) => `${r.node}.${r.port}`;

  for (const edge of graph.edges) {
    const what = `edge ${show(edge.src)} -> ${show(edge.tgt)}`;
    ref(edge.src, what);
    ref(edge.tgt, what);
    const srcComponent = components.get(edge.src.node);
    const tgtComponent = components.get(edge.tgt.node);
    if (
      srcComponent !== undefined &&
      tgtComponent !== undefined &&
      isRoutingComponent(srcComponent) &&
      isRoutingComponent(tgtComponent) &&
      (srcComponent === 'msgflo/RoundRobin' || tgtComponent === 'msgflo/RoundRobin')
    ) {
      problems.push(`${what} connects two routing nodes with a msgflo/RoundRobin; connect routing nodes to participants`);
    }
  }
  for (const iip of graph.iips) ref(iip.tgt, `IIP ${JSON.stringify(iip.data) ?? String(iip.data)} -> ${show(iip.tgt)}`);

  for (const [kind, list] of [
    ['inport', graph.inports],
    ['outport', graph.outports],
  ] as const) {
    const seen = new Set<string>();
    for (const p of list) {
      const what = `exported ${kind} '${p.public}'`;
      if (typeof p.public !== 'string' || p.public === '') problems.push(`an exported ${kind} has an empty public name`);
      else if (seen.has(p.public.toLowerCase())) problems.push(`${what} is declared more than once`);
      else seen.add(p.public.toLowerCase());
      ref({ node: p.node, port: p.port }, what);
      const component = components.get(p.node);
      if (component !== undefined && isRoutingComponent(component)) {
        problems.push(`${what} is on routing node '${p.node}' (${component}); export a participant's port instead`);
      }
    }
  }
  return problems;
}

/**
 * Check a graph's references and names.
 * @throws GraphInvalidError listing every problem (see graphProblems).
 */
export function validateGraph(graph: Graph): void {
  const problems = graphProblems(graph);
  if (problems.length) throw new GraphInvalidError(graph.file, problems);
}
