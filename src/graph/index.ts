/** graph/: parse (.fbp, fbp-graph JSON), validate, diff, and derive bindings. No network I/O. */
export type { ExportedPort, Graph, GraphEdge, GraphIIP, GraphNode, Metadata, PortRef } from './types.js';
export { ROUTING_COMPONENTS, isRoutingComponent } from './types.js';
export { parseFbp } from './fbp.js';
export { parseJsonGraph, graphToJson } from './json.js';
export { locateJsonError, lineColumn } from './json-location.js';
export type { JsonErrorLocation } from './json-location.js';
export { loadGraph, parseGraph } from './load.js';
export type { LoadGraphOptions } from './load.js';
export { validateGraph, graphProblems } from './validate.js';
export { diffGraphs, isEmptyDiff, canonicalJson, edgeKey, iipKey } from './diff.js';
export type { Change, GraphDiff, ListDiff, NodeChange } from './diff.js';
export { graphBindings, participantNodes, iipsForRole, bindingKey, DEADLETTER_PORT } from './bindings.js';
export type { BindingEndpoint, GraphBinding, GraphBindingType } from './bindings.js';
