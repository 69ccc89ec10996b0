/**
 * The FBP runtime protocol, without sockets: `handle(connection, frame)` checks a client's frame (JSON, secret,
 * schema, capability) and runs it through the handler of its sub-protocol (protocol/*.ts); what the runtime
 * says goes out through each connection's `send`. The WebSocket server (server.ts) is a thin layer on top.
 *
 * Every frame a client sends must carry the runtime's secret (top-level `secret`, or `payload.secret` as
 * older clients and fbp-client send it); one without it gets `<protocol>:error` and changes nothing. Replies
 * go to the requester (with `responseTo` when it gave a `requestId`); graph changes and network events go to
 * every client that has authenticated. The secret is never sent back.
 */
import { randomUUID } from 'node:crypto';
import type { CoordinatorEvent } from '../coordinator/coordinator.js';
import type { Network } from '../coordinator/network.js';
import { ParticipantTimeoutError, ProtocolError, RuntimeSecretError, reasonOf } from '../errors.js';
import type { Graph, PortRef } from '../graph/types.js';
import type { ParticipantInfo } from '../protocol/discovery.js';
import { logger } from '../util/logger.js';
import { ComponentCatalog } from './components.js';
import { Connection, errorText, isExpectedError, sameSecret, type RuntimeChannel } from './connection.js';
import type { HandlerContext, Payload, ProtocolHandlers } from './context.js';
import { FrameRules, type Refusal, parseFrame } from './frames.js';
import { GraphDocument } from './graph-doc.js';
import { LiveNetwork } from './live/live-network.js';
import { nodePorts, portsPayload } from './ports.js';
import { componentHandlers } from './protocol/component.js';
import { graphHandlers } from './protocol/graph.js';
import { networkHandlers } from './protocol/network.js';
import { runtimeHandlers } from './protocol/runtime.js';
import { traceHandlers } from './protocol/trace.js';
import { schemaProblems } from './schemas.js';
import type { TraceBuffer } from './trace.js';

export { Connection, errorText, type RuntimeChannel };

const log = logger('runtime');

/** The protocol version spoken (0.8: top-level secret, requestId/responseTo). */
export const PROTOCOL_VERSION = '0.8';

/** What this runtime can do, for a client that has the secret. */
export const CAPABILITIES = [
  'protocol:runtime',
  'protocol:graph',
  'protocol:component',
  'component:getsource',
  'protocol:network',
  'network:control',
  'network:status',
  'network:data',
  'protocol:trace',
] as const;

const HANDLERS: Readonly<Record<string, ProtocolHandlers>> = {
  runtime: runtimeHandlers,
  graph: graphHandlers,
  component: componentHandlers,
  network: networkHandlers,
  trace: traceHandlers,
};

export interface FbpRuntimeOptions {
  /** The network the runtime's live graph runs on (it launches processes when it was started to). */
  network: Network;
  /** The secret every message must carry. */
  secret: string;
  /** Runtime id (a UUID v4); random by default. */
  id?: string;
  label?: string;
  /** Prefix of every role this runtime's graphs use (runtimes sharing a broker stay apart). */
  rolePrefix?: string;
  /** Node ids whose participants are not started here. */
  ignore?: string[];
  /** How long runtime:packet waits for its target to be ready (default 10 s). */
  packetTimeoutMs?: number;
  /** Read participant files for their ports (default true). */
  introspect?: boolean;
  /** The component catalog to use (default: a new one on `library`). */
  catalog?: ComponentCatalog;
  /** Where the runtime listens, for traces. */
  address?: string;
}

export class FbpRuntime {
  readonly id: string;
  readonly label: string;
  readonly graphs = new Map<string, GraphDocument>();
  readonly traces = new Map<string, TraceBuffer>();
  readonly live: LiveNetwork;
  readonly catalog: ComponentCatalog;
  private readonly options: FbpRuntimeOptions;
  private readonly connections = new Set<Connection>();
  private readonly rules = new FrameRules(CAPABILITIES, HANDLERS);
  /** network:edges selections and debug flags per graph, applied when a graph becomes live. */
  private readonly selections = new Map<string, Array<{ src: PortRef; tgt: PortRef }>>();
  private readonly debugFlags = new Map<string, boolean>();
  /** The last announcement of each component, for component:getsource. */
  private readonly announced = new Map<string, ParticipantInfo>();
  private readonly onCoordinatorEvent: (e: CoordinatorEvent) => void;
  /** Frames the runtime sent that its own schema check refused (a bug if ever > 0). */
  invalidOutputs = 0;

  constructor(options: FbpRuntimeOptions) {
    this.options = options;
    this.id = options.id ?? randomUUID();
    this.label = options.label ?? `msgflo-ts on ${options.network.transport.url}`;
    this.catalog = options.catalog ?? new ComponentCatalog({ library: options.network.library, introspect: options.introspect ?? true });
    this.live = new LiveNetwork({ network: options.network, rolePrefix: options.rolePrefix ?? '', ignore: options.ignore ?? [] });
    this.live.on('message', (m) => {
      const graph = typeof m.payload.graph === 'string' ? m.payload.graph : this.live.graph?.id;
      if (m.toClients) this.broadcastAll(m.protocol, m.command, m.payload);
      if (graph !== undefined) this.traceEvent(graph, m.protocol, m.command, m.payload);
    });
    for (const e of options.network.coordinator.participants()) this.noteParticipant(e.info, false);
    this.onCoordinatorEvent = (e) => {
      if (e.type === 'participant-added' || e.type === 'participant-changed') this.noteParticipant(e.participant, true);
    };
    options.network.coordinator.on('event', this.onCoordinatorEvent);
    // Read the participant files now, so the first component:list or addedge does not wait for it.
    void this.catalog.refresh();
  }

  get namespace(): string {
    return this.options.network.library.namespace;
  }

  private noteParticipant(info: ParticipantInfo, tell: boolean): void {
    this.announced.set(info.component, info);
    const changed = this.catalog.noteDiscovered(info);
    if (changed && tell) this.broadcastAll('component', 'component', changed);
  }

  /** The last announcement of a participant running `component`. */
  announcedParticipant(component: string): ParticipantInfo | undefined {
    return this.announced.get(component);
  }

  // ── connections ───────────────────────────────────────────────────────────────────────────────────────────

  connect(channel: RuntimeChannel): Connection {
    const conn = new Connection(channel);
    this.connections.add(conn);
    return conn;
  }

  /** The client went away: what it asked for goes on, nothing more is sent to it. */
  disconnect(conn: Connection): void {
    conn.closed = true;
    this.connections.delete(conn);
    this.updateWantData();
  }

  private updateWantData(): void {
    this.live.setWantData([...this.connections].some((c) => c.authenticated && !c.closed));
  }

  /** Handle one frame from a client (text, a Buffer, or an already parsed message). Never rejects. */
  handle(conn: Connection, frame: string | Buffer | object): Promise<void> {
    const next = conn.queue.then(() => this.handleNow(conn, frame)).catch((err: unknown) => {
      log('handling a frame failed: %s', reasonOf(err));
    });
    conn.queue = next;
    return next;
  }

  private send(conn: Connection, protocol: string, command: string, payload: unknown, responseTo?: string): void {
    if (conn.closed) return;
    const message: Record<string, unknown> = { protocol, command, payload };
    if (responseTo !== undefined) message.responseTo = responseTo;
    const problems = schemaProblems('output', message);
    if (problems.length) {
      this.invalidOutputs++;
      log('BUG: %s:%s does not match its schema: %s', protocol, command, problems.join('; '));
    }
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (err) {
      log('cannot serialise %s:%s: %s', protocol, command, (err as Error).message);
      return;
    }
    try {
      conn.channel.send(text);
    } catch (err) {
      log('sending to a client failed: %s', (err as Error).message);
    }
  }

  private broadcastAll(protocol: string, command: string, payload: unknown, except?: Connection): void {
    for (const c of this.connections) if (c.authenticated && c !== except) this.send(c, protocol, command, payload);
  }

  private async handleNow(conn: Connection, frame: string | Buffer | object): Promise<void> {
    if (conn.closed) return;
    const req = parseFrame(frame);
    if ('error' in req) return this.send(conn, req.protocol, 'error', { message: errorText(req.error) });
    const { protocol, command, payload, requestId } = req;
    const fail = (r: Refusal) => this.send(conn, r.protocol, 'error', { message: errorText(r.error) }, requestId);
    const unknown = this.rules.checkProtocol(req);
    if (unknown) return fail(unknown);
    if (!sameSecret(req.secret, this.options.secret)) {
      if (protocol === 'runtime' && command === 'getruntime') this.send(conn, 'runtime', 'runtime', this.description(false), requestId);
      return fail({ protocol, error: new RuntimeSecretError() });
    }
    if (!conn.authenticated) {
      conn.authenticated = true;
      this.updateWantData();
    }
    const refused = this.rules.checkRequest(req, (id) => this.graphs.has(id));
    if (refused) return fail(refused);

    const ctx: HandlerContext = {
      runtime: this,
      protocol,
      reply: (cmd, p) => this.send(conn, protocol, cmd, p, requestId),
      send: (proto, cmd, p) => this.send(conn, proto, cmd, p, requestId),
      broadcast: (cmd, p) => {
        this.send(conn, protocol, cmd, p, requestId);
        this.broadcastAll(protocol, cmd, p, conn);
      },
      broadcastAs: (proto, cmd, p) => {
        this.send(conn, proto, cmd, p, requestId);
        this.broadcastAll(proto, cmd, p, conn);
      },
    };
    try {
      await HANDLERS[protocol]![command]!(ctx, payload as Payload);
    } catch (err) {
      if (!isExpectedError(err)) {
        log('%s:%s failed: %s', protocol, command, (err as Error)?.stack ?? String(err));
      }
      fail({ protocol, error: err as Error });
    }
  }

  // ── what handlers use ─────────────────────────────────────────────────────────────────────────────────────

  /** The runtime:runtime payload; without the secret, no capabilities. */
  description(authorized: boolean): Payload {
    const out: Payload = {
      type: 'msgflo',
      version: PROTOCOL_VERSION,
      capabilities: authorized ? [...CAPABILITIES] : [],
      allCapabilities: [...CAPABILITIES],
      id: this.id,
      label: this.label,
    };
    if (authorized && this.live.graph) out.graph = this.live.graph.id;
    if (this.namespace) out.namespace = this.namespace;
    if (this.options.network.library.repository) out.repository = this.options.network.library.repository;
    return out;
  }

  /** Make `doc` the live graph (the previous one is stopped), with the settings clients gave for it. */
  makeLive(doc: GraphDocument): void {
    if (this.live.graph === doc) return;
    this.live.setGraph(doc);
    const selection = this.selections.get(doc.id);
    if (selection) this.live.selectEdges(selection);
    if (this.debugFlags.get(doc.id)) this.live.setDebug(true);
    this.updateTracing();
    this.broadcastAll('runtime', 'ports', this.portsPayload(doc));
  }

  /** Load a graph (e.g. msgflo's --graph) as the live graph; `start`: start it at once. */
  loadGraph(graph: Graph, options: { start?: boolean } = {}): GraphDocument {
    const doc = GraphDocument.fromGraph(graph);
    this.graphs.set(doc.id, doc);
    this.makeLive(doc);
    if (options.start) this.live.start();
    return doc;
  }

  selectEdges(graph: string, edges: Array<{ src: PortRef; tgt: PortRef }>): void {
    this.selections.set(graph, edges);
    if (this.live.isLive(graph)) this.live.selectEdges(edges);
  }

  setDebug(graph: string, enable: boolean): void {
    this.debugFlags.set(graph, enable);
    if (this.live.isLive(graph)) this.live.setDebug(enable);
  }

  updateTracing(): void {
    const live = this.live.graph;
    this.live.setTracing(!!live && this.traces.get(live.id)?.recording === true);
  }

  traceEvent(graph: string, protocol: string, command: string, payload: Payload): void {
    const trace = this.traces.get(graph);
    if (trace?.recording) trace.record(protocol, command, payload);
  }

  traceMetadata(): Record<string, unknown> {
    const out: Record<string, unknown> = { type: 'msgflo', runtime: this.id, label: this.label };
    if (this.options.address) out.address = this.options.address;
    if (this.namespace) out.namespace = this.namespace;
    if (this.options.network.library.repository) out.repository = this.options.network.library.repository;
    return out;
  }

  /** Whether `name` is a component the runtime knows. */
  async knowsComponent(name: string): Promise<boolean> {
    return this.catalog.has(name);
  }

  /** Port ids of a node (from its live participant, else its component), or undefined when unknown. */
  portsOf(doc: GraphDocument, node: string, direction: 'inport' | 'outport'): Promise<string[] | undefined> {
    const live = this.live.isLive(doc.id) ? { registry: this.options.network.coordinator.registry, role: this.live.role(node) } : undefined;
    return nodePorts(doc, node, direction, this.catalog, live);
  }

  /** runtime:ports of a graph: its exported ports. */
  portsPayload(doc: GraphDocument): Payload {
    return portsPayload(doc, this.catalog);
  }

  announcePorts(doc: GraphDocument): void {
    this.broadcastAll('runtime', 'ports', this.portsPayload(doc));
  }

  /**
   * Send data to a node's inport of the live graph, once the node is ready: its participant is up, the edges
   * downstream are bound and tapped (so what it sends on is seen).
   */
  async sendToNode(node: string, port: string, data: unknown): Promise<void> {
    const timeoutMs = this.options.packetTimeoutMs ?? 10_000;
    const role = this.live.role(node);
    await this.live.whenReady(node, timeoutMs, () => {
      if (this.options.network.coordinator.registry.byRole(role).length === 0) return new ParticipantTimeoutError([role], timeoutMs / 1000);
      return new ProtocolError(`the edges after '${node}' are not all bound within ${timeoutMs / 1000} s`, 'Check network:error messages: a participant downstream may be missing or lack a port.');
    });
    const queue = this.live.queueOf({ node, port }, 'inport');
    if (!queue) throw new ProtocolError(`'${role}' announces no inport '${port}'`);
    await this.options.network.transport.send('inqueue', queue, data);
  }

  /** Stop the live network (taps, processes this runtime started); graphs stay on the broker. */
  async close(): Promise<void> {
    this.options.network.coordinator.off('event', this.onCoordinatorEvent);
    for (const c of this.connections) c.closed = true;
    this.connections.clear();
    await this.live.close();
  }
}
