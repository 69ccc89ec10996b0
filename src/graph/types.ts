/** The typed graph model every loader (.fbp, .json) produces. */

export type Metadata = Record<string, unknown>;

export interface GraphNode {
  /** Node id = the participant's role. */
  id: string;
  component: string;
  metadata: Metadata;
}

export interface PortRef {
  node: string;
  /** Port id as written in the graph; compared case-insensitively with participant port ids. */
  port: string;
  index?: number;
}

export interface GraphEdge {
  src: PortRef;
  tgt: PortRef;
  metadata: Metadata;
}

export interface GraphIIP {
  data: unknown;
  tgt: PortRef;
  metadata: Metadata;
}

export interface ExportedPort {
  /** Public port name (lower-case as fbp parses it). */
  public: string;
  node: string;
  port: string;
  metadata: Metadata;
}

export interface Graph {
  name: string;
  /** Where it was loaded from, for error messages. */
  file?: string;
  properties: Metadata;
  nodes: GraphNode[];
  edges: GraphEdge[];
  iips: GraphIIP[];
  inports: ExportedPort[];
  outports: ExportedPort[];
}

/** Components that are routing nodes, not participants. */
export const ROUTING_COMPONENTS = ['msgflo/RoundRobin', 'msgflo/PubSub'] as const;

export function isRoutingComponent(component: string): boolean {
  return (ROUTING_COMPONENTS as readonly string[]).includes(component);
}
