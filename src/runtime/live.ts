/**
 * The live network: the one graph of the runtime that runs on the broker. It keeps three things converged to
 * that graph, again on every graph change, discovery, expiry and client (dis)connection:
 *
 * - **processes**: a participant process for every node whose component the library can run (started when the
 *   node is added, stopped when it is removed or the live graph changes), through the shared Launcher;
 * - **the coordinator's graph**: nodes always; edges and IIPs only while the network is started. So a network
 *   that is not started has its participants up but nothing flows between them; network:start binds the edges
 *   and sends the IIPs (again); network:stop removes the edges (participants stay up, ready for the next start);
 * - **data taps**: a tap on the outport queue behind each edge whose packets a client or a trace wants
 *   (network:data), behind each exported outport (runtime:packet) and, in debug mode, behind each error outport
 *   (network:processerror). An IIP waits until the taps downstream of its target are in place, so a client sees
 *   every packet the IIP causes.
 *
 * Node ids are roles, prefixed with `rolePrefix` when one is set (runtimes sharing a broker stay apart).
 * Everything the network reports is emitted as ready-to-send protocol messages (`message` events).
 */
import { EventEmitter } from 'node:events';
import type { Coordinator, CoordinatorEvent } from '../coordinator/coordinator.js';
import type { Launcher, LauncherEvent } from '../coordinator/launcher.js';
import type { ComponentLibrary } from '../coordinator/library.js';
import { reasonOf } from '../errors.js';
import { iipsForRole } from '../graph/bindings.js';
import type { Graph, GraphEdge, PortRef } from '../graph/types.js';
import { isRoutingComponent } from '../graph/types.js';
import { queueName } from '../protocol/naming.js';
import type { Subscription, Transport } from '../transport/types.js';
import { logger } from '../util/logger.js';
import { refPayload, type GraphDocument } from './graph-doc.js';

const log = logger('runtime');

/** A protocol message the live network wants sent. `toClients` false: for traces only (an unselected edge). */
export interface LiveMessage {
  protocol: 'network' | 'runtime';
  command: string;
  payload: Record<string, unknown>;
  toClients: boolean;
}

export interface LiveNetworkOptions {
  coordinator: Coordinator;
  transport: Transport;
  library: ComponentLibrary;
  /** Starts participant processes; without one, participants are expected to be started by others. */
  launcher?: Launcher | undefined;
  /** Prefix of every role: node `a` runs as role `<prefix>a`. Default ''. */
  rolePrefix?: string;
  /** Node ids whose processes are not started here (external participants). */
  ignore?: string[];
  /** A node whose component the library cannot run: said once per node and component. */
  onUnlaunchable?: (node: string, component: string) => void;
}

/** noflo's textual edge id: `A() OUT -> IN B()`, with `[index]` for addressable ports. */
export function edgeId(src: PortRef, tgt: PortRef): string {
  const port = (r: PortRef) => `${r.port.toUpperCase()}${r.index !== undefined ? `[${r.index}]` : ''}`;
  return `${src.node}() ${port(src)} -> ${port(tgt)} ${tgt.node}()`;
}

/** The id of an IIP's data event: `DATA -> IN B()`. */
export function iipId(tgt: PortRef): string {
  return `DATA -> ${tgt.port.toUpperCase()}${tgt.index !== undefined ? `[${tgt.index}]` : ''} ${tgt.node}()`;
}

const sameNodePort = (a: PortRef, b: { node: string; port: string; index?: number | undefined }) =>
  a.node === b.node && a.port.toLowerCase() === b.port.toLowerCase() && (a.index ?? null) === (b.index ?? null);

const edgeKey = (e: { src: PortRef; tgt: PortRef }) => `${e.src.node}\u0000${e.src.port.toLowerCase()}\u0000${e.src.index ?? ''}\u0001${e.tgt.node}\u0000${e.tgt.port.toLowerCase()}\u0000${e.tgt.index ?? ''}`;

interface Tap {
  subscription: Subscription | undefined;
  pending: Promise<void> | undefined;
  /** The tap could not be made (e.g. the exchange does not exist yet): tried again on the next sync. */
  failed: boolean;
}

export class LiveNetwork extends EventEmitter<{ message: [LiveMessage]; progress: [] }> {
  private readonly coordinator: Coordinator;
  private readonly transport: Transport;
  private readonly library: ComponentLibrary;
  private readonly launcher: Launcher | undefined;
  readonly rolePrefix: string;
  private readonly ignore: Set<string>;
  private readonly onUnlaunchable: ((node: string, component: string) => void) | undefined;

  private doc: GraphDocument | undefined;
  private started = false;
  private startedAt = 0;
  private debug = false;
  private wantData = false;
  private tracing = false;
  /** Edges selected with network:edges (by edge key); undefined = every edge. */
  private selected: Set<string> | undefined;

  /** Roles whose process this network wants running, with the component it runs. */
  private readonly launched = new Map<string, { node: string; component: string }>();
  private readonly roleOps = new Map<string, Promise<void>>();
  /** When this network last started a role's process: only a participant announced since then is that process. */
  private readonly launchedAt = new Map<string, number>();
  private readonly warned = new Set<string>();
  /** IIP targets (role.port) the gate let through since the network was started: sent, or being sent. */
  private released = new Set<string>();
  private readonly taps = new Map<string, Tap>();
  private bound = new Map<string, Record<string, unknown>>();

  private syncing: Promise<void> = Promise.resolve();
  private syncPending = false;
  private closed = false;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(options: LiveNetworkOptions) {
    super();
    this.coordinator = options.coordinator;
    this.transport = options.transport;
    this.library = options.library;
    this.launcher = options.launcher;
    this.rolePrefix = options.rolePrefix ?? '';
    this.ignore = new Set(options.ignore ?? []);
    this.onUnlaunchable = options.onUnlaunchable;
    const onCoordinator = (e: CoordinatorEvent) => this.onCoordinatorEvent(e);
    this.coordinator.on('event', onCoordinator);
    this.unsubscribe.push(() => this.coordinator.off('event', onCoordinator));
    if (this.launcher) {
      const onLauncher = (e: LauncherEvent) => this.onLauncherEvent(e);
      this.launcher.on('event', onLauncher);
      this.unsubscribe.push(() => this.launcher?.off('event', onLauncher));
    }
    this.coordinator.setIipGate((tgt, data) => this.iipGate(tgt, data));
    this.coordinator.setBoundGate((role) => this.boundGate(role));
  }

  // ── roles ─────────────────────────────────────────────────────────────────────────────────────────────────

  role(node: string): string {
    return `${this.rolePrefix}${node}`;
  }

  /** The live graph's node that runs as `role`, if any. */
  nodeOfRole(role: string): string | undefined {
    if (!this.doc || !role.startsWith(this.rolePrefix)) return undefined;
    const id = role.slice(this.rolePrefix.length);
    return this.doc.node(id) ? id : undefined;
  }

  private roleRef(ref: PortRef): PortRef {
    return { ...ref, node: this.role(ref.node) };
  }

  // ── state ─────────────────────────────────────────────────────────────────────────────────────────────────

  get graph(): GraphDocument | undefined {
    return this.doc;
  }

  isLive(graph: string): boolean {
    return this.doc?.id === graph;
  }

  /** Make `doc` the live graph (or none). The previous live graph is stopped and its processes too. */
  setGraph(doc: GraphDocument | undefined): void {
    if (doc === this.doc) return;
    this.doc = doc;
    this.started = false;
    this.debug = false;
    this.selected = undefined;
    this.bound = new Map();
    this.released = new Set();
    this.changed();
  }

  /** The live graph changed (a graph command was applied to it). */
  changed(): void {
    // Processes first and at once: a participant takes a while to start, nothing else should delay that.
    if (!this.closed) this.syncProcesses();
    this.scheduleSync();
  }

  start(): void {
    if (!this.started) {
      this.startedAt = Date.now();
      this.released = new Set();
    }
    this.started = true;
    this.changed();
  }

  stop(): void {
    this.started = false;
    this.released = new Set();
    this.changed();
  }

  get isStarted(): boolean {
    return this.started;
  }

  /** Seconds since network:start, while started. */
  uptime(): number {
    return this.started ? (Date.now() - this.startedAt) / 1000 : 0;
  }

  /**
   * Whether the network is still coming up: started, and an IIP still waits for its participant, or a process
   * this network started has not announced itself yet. A started network that is up reports running: false
   * (the protocol's "finished"): its participants go on serving on their own.
   */
  get running(): boolean {
    if (!this.started || !this.doc) return false;
    // An IIP the gate let through counts as sent (the broker's confirmation may still be on its way).
    const pending = this.coordinator.pendingIips().some((t) => this.nodeOfRole(t.node) !== undefined && !this.released.has(`${t.node}.${t.port.toLowerCase()}`));
    const unannounced = [...this.launched.keys()].some((role) => !this.hasCurrentParticipant(role));
    return pending || unannounced;
  }

  get debugging(): boolean {
    return this.debug;
  }

  setDebug(enable: boolean): void {
    this.debug = enable;
    this.changed();
  }

  /** Whether clients want network:data and runtime:packet (at least one is connected). */
  setWantData(want: boolean): void {
    if (want === this.wantData) return;
    this.wantData = want;
    this.changed();
  }

  /** Whether the live graph is being traced (every edge is then tapped). */
  setTracing(tracing: boolean): void {
    if (tracing === this.tracing) return;
    this.tracing = tracing;
    this.changed();
  }

  /** network:edges: report packets of these edges only (undefined: every edge). */
  selectEdges(edges: Array<{ src: PortRef; tgt: PortRef }> | undefined): void {
    this.selected = edges ? new Set(edges.map(edgeKey)) : undefined;
    this.changed();
  }

  private isSelected(edge: { src: PortRef; tgt: PortRef }): boolean {
    return this.selected === undefined || this.selected.has(edgeKey(edge));
  }

  // ── sync ──────────────────────────────────────────────────────────────────────────────────────────────────

  private scheduleSync(): void {
    if (this.syncPending || this.closed) return;
    this.syncPending = true;
    this.syncing = this.syncing.then(async () => {
      this.syncPending = false;
      await this.syncNow().catch((err: unknown) => {
        log('live network sync failed: %s', reasonOf(err));
        this.report('error', { message: reasonOf(err) });
      });
      this.emit('progress');
    });
  }

  /** Resolves once every change made so far has been applied. */
  settled(): Promise<void> {
    return this.syncing;
  }

  private async syncNow(): Promise<void> {
    if (this.closed) return;
    this.syncProcesses();
    await this.syncTaps();
    await this.coordinator.setGraph(this.coordinatorGraph());
    this.updateBound();
  }

  private syncProcesses(): void {
    const desired = new Map<string, { node: string; component: string }>();
    for (const node of this.doc?.nodes ?? []) {
      if (isRoutingComponent(node.component) || this.ignore.has(node.id) || !this.launcher) continue;
      if (!this.library.has(node.component)) {
        const key = `${node.id}\u0000${node.component}`;
        if (!this.warned.has(key)) {
          this.warned.add(key);
          this.onUnlaunchable?.(node.id, node.component);
        }
        continue;
      }
      desired.set(this.role(node.id), { node: node.id, component: node.component });
    }
    for (const [role, current] of [...this.launched]) {
      const want = desired.get(role);
      if (want && want.component === current.component) continue;
      // One that has not announced itself yet has nothing to finish: no need to let it complete its start.
      const serving = this.hasCurrentParticipant(role);
      this.launched.delete(role);
      this.roleOp(role, async () => {
        await (serving ? this.launcher!.stop(role) : this.launcher!.kill(role));
        if (!this.launched.has(role)) this.launchedAt.delete(role);
      });
    }
    for (const [role, want] of desired) {
      if (this.launched.has(role)) continue;
      this.launched.set(role, want);
      const graph = this.doc!.toGraph();
      this.roleOp(role, async () => {
        // Changed again while an earlier stop of this role was under way.
        if (this.launched.get(role) !== want || this.closed) return;
        const command = this.library.commandFor(want.component, role, iipsForRole(graph, want.node));
        this.launchedAt.set(role, Date.now());
        this.launcher!.start({ role, command });
      });
    }
  }

  /** Run process operations of one role in order (a restart waits until the old process is gone). */
  private roleOp(role: string, op: () => Promise<void> | void): void {
    const next = (this.roleOps.get(role) ?? Promise.resolve())
      .then(op)
      .catch((err: unknown) => this.report('error', { message: `${role}: ${reasonOf(err)}` }));
    this.roleOps.set(role, next);
    void next.then(() => {
      if (this.roleOps.get(role) === next) this.roleOps.delete(role);
    });
  }

  /** The graph the coordinator keeps the broker converged to (roles prefixed; edges and IIPs while started). */
  private coordinatorGraph(): Graph | undefined {
    if (!this.doc) return undefined;
    const g = this.doc.toGraph();
    const ref = (r: PortRef) => this.roleRef(r);
    return {
      ...g,
      nodes: g.nodes.map((n) => ({ ...n, id: this.role(n.id) })),
      edges: this.started ? g.edges.map((e) => ({ ...e, src: ref(e.src), tgt: ref(e.tgt) })) : [],
      // The coordinator reads a string IIP as JSON when it holds JSON (.fbp files); the protocol gives the value.
      iips: this.started ? g.iips.map((i) => ({ ...i, tgt: ref(i.tgt), data: typeof i.data === 'string' ? JSON.stringify(i.data) : i.data })) : [],
      inports: g.inports.map((p) => ({ ...p, node: this.role(p.node) })),
      outports: g.outports.map((p) => ({ ...p, node: this.role(p.node) })),
    };
  }

  // ── taps ──────────────────────────────────────────────────────────────────────────────────────────────────

  private isParticipant(node: string): boolean {
    const n = this.doc?.node(node);
    return n !== undefined && !isRoutingComponent(n.component);
  }

  /** The broker queue behind a node's port, once known (from discovery). */
  queueOf(ref: PortRef, direction: 'inport' | 'outport'): string | undefined {
    return this.coordinator.queueFor(this.roleRef(ref), direction);
  }

  /**
   * The queue to tap for a node's outport: the announced one; before the announcement, for a process started
   * here, the `role.PORT` queue msgflo-ts participants use (so the tap is in place when the first packet comes;
   * where that outport does not exist yet, e.g. on AMQP, the tap is made after the announcement).
   */
  private tapQueue(ref: PortRef): string | undefined {
    const role = this.role(ref.node);
    return this.queueOf(ref, 'outport') ?? (this.launched.has(role) ? queueName(role, ref.port) : undefined);
  }

  /** Outport refs whose queues must be tapped, for edges reachable from `from` (every node when undefined). */
  private tapRefs(from?: string): PortRef[] {
    const doc = this.doc;
    if (!doc) return [];
    const nodes = from === undefined ? new Set(doc.nodes.map((n) => n.id)) : this.downstream(from);
    const refs: PortRef[] = [];
    if (this.wantData || this.tracing) {
      for (const e of doc.edges) {
        if (!nodes.has(e.src.node) || !this.isParticipant(e.src.node)) continue;
        const intoRouting = !this.isParticipant(e.tgt.node);
        if (this.tracing || (this.wantData && (intoRouting || this.isSelected(e)))) refs.push(e.src);
      }
    }
    if (this.wantData) {
      for (const p of doc.outports) if (nodes.has(p.node) && this.isParticipant(p.node)) refs.push({ node: p.node, port: p.port });
    }
    if (this.debug && (this.wantData || this.tracing)) {
      for (const n of doc.nodes) if (nodes.has(n.id) && this.isParticipant(n.id)) refs.push({ node: n.id, port: 'error' });
    }
    return refs;
  }

  private async syncTaps(): Promise<void> {
    const wanted = new Set<string>();
    for (const ref of this.tapRefs()) {
      const queue = this.tapQueue(ref);
      if (queue) wanted.add(queue);
    }
    for (const [queue, tap] of [...this.taps]) {
      if (wanted.has(queue)) continue;
      this.taps.delete(queue);
      await tap.pending;
      await tap.subscription?.cancel().catch(() => {});
    }
    const making: Promise<void>[] = [];
    for (const queue of wanted) {
      const existing = this.taps.get(queue);
      if (existing && !existing.failed) continue;
      const tap: Tap = { subscription: undefined, pending: undefined, failed: false };
      this.taps.set(queue, tap);
      tap.pending = this.transport
        .tap('outqueue', queue, (m) => this.onTapped(queue, m.data))
        .then(
          (sub) => {
            if (this.taps.get(queue) === tap && !this.closed) tap.subscription = sub;
            else void sub.cancel().catch(() => {});
          },
          (err: unknown) => {
            tap.failed = true;
            log('cannot tap %s yet: %s', queue, reasonOf(err));
          },
        )
        .finally(() => {
          tap.pending = undefined;
        });
      making.push(tap.pending);
    }
    await Promise.all(making);
    // IIPs waiting for these taps may go now.
    if (making.length) void this.coordinator.reconcile();
  }

  private tapActive(queue: string): boolean {
    const tap = this.taps.get(queue);
    return tap !== undefined && tap.subscription !== undefined;
  }

  /** Every tap that packets from `node` onwards need is in place. */
  private tapsReady(node: string): boolean {
    for (const ref of this.tapRefs(node)) {
      const queue = this.tapQueue(ref);
      if (!queue || !this.tapActive(queue)) return false;
    }
    return true;
  }

  /**
   * Whether the role has a participant that can take packets: for a role whose process this network started,
   * one announced after that start (not the previous process of that role, still saying goodbye; on MQTT what
   * is sent to it would be lost).
   */
  private hasCurrentParticipant(role: string): boolean {
    const entries = this.coordinator.registry.byRole(role);
    const since = this.launchedAt.get(role);
    if (since === undefined || !this.launched.has(role)) return entries.length > 0;
    return entries.some((e) => e.firstSeen >= since);
  }

  /** `node` and every node its packets can reach through edges. */
  private downstream(node: string): Set<string> {
    const seen = new Set([node]);
    const walk = [node];
    while (walk.length) {
      const id = walk.pop()!;
      for (const e of this.doc?.edges ?? []) {
        if (e.src.node === id && !seen.has(e.tgt.node)) {
          seen.add(e.tgt.node);
          walk.push(e.tgt.node);
        }
      }
    }
    return seen;
  }

  /**
   * Whether every participant on the path of packets sent to `node` is up (current): on MQTT a packet for a
   * participant that is not subscribed yet is lost, and a binding may still point at the queue of one that is gone.
   */
  private pathUp(node: string): boolean {
    for (const id of this.downstream(node)) {
      if (this.isParticipant(id) && !this.hasCurrentParticipant(this.role(id))) return false;
    }
    return true;
  }

  private iipGate(tgt: PortRef, data: unknown): boolean {
    const node = this.nodeOfRole(tgt.node);
    if (node === undefined || !this.doc) return true;
    if (!this.pathUp(node) || !this.tapsReady(node)) return false;
    this.released.add(`${tgt.node}.${tgt.port.toLowerCase()}`);
    const iip = this.doc.iips.find((i) => sameNodePort(i.tgt, { ...tgt, node }));
    const ref = iip?.tgt ?? { ...tgt, node };
    this.emitMessage('network', 'data', { id: iipId(ref), graph: this.doc.id, tgt: refPayload(ref), data }, true);
    return true;
  }

  /** A role of the live graph hears "bound" once the network is started and what it sends is seen (as an IIP's). */
  private boundGate(role: string): boolean {
    const node = this.nodeOfRole(role);
    return node === undefined || (this.started && this.pathUp(node) && this.tapsReady(node));
  }

  /** A packet seen on a tapped outport queue. */
  private onTapped(queue: string, data: unknown): void {
    const doc = this.doc;
    if (!doc || this.closed) return;
    const reported = new Set<string>();
    const edgeData = (edge: GraphEdge) => {
      const key = edgeKey(edge);
      if (reported.has(key)) return;
      reported.add(key);
      const toClients = this.wantData && this.isSelected(edge);
      if (!toClients && !this.tracing) return;
      this.emitMessage('network', 'data', { id: edgeId(edge.src, edge.tgt), graph: doc.id, src: refPayload(edge.src), tgt: refPayload(edge.tgt), data }, toClients);
    };
    /** Edges after a PubSub node carry a copy of every packet that reaches it. */
    const throughPubSub = (node: string, seen: Set<string>) => {
      if (seen.has(node)) return;
      seen.add(node);
      for (const e of doc.edges) {
        if (e.src.node !== node) continue;
        edgeData(e);
        if (doc.node(e.tgt.node)?.component === 'msgflo/PubSub') throughPubSub(e.tgt.node, seen);
      }
    };
    for (const edge of doc.edges) {
      if (!this.isParticipant(edge.src.node) || this.tapQueue(edge.src) !== queue) continue;
      edgeData(edge);
      if (doc.node(edge.tgt.node)?.component === 'msgflo/PubSub') throughPubSub(edge.tgt.node, new Set());
    }
    if (this.wantData) {
      for (const p of doc.outports) {
        if (this.isParticipant(p.node) && this.tapQueue({ node: p.node, port: p.port }) === queue) {
          this.emitMessage('runtime', 'packet', { port: p.public, event: 'data', graph: doc.id, payload: data }, true);
        }
      }
    }
    if (this.debug) {
      for (const n of doc.nodes) {
        if (this.isParticipant(n.id) && this.tapQueue({ node: n.id, port: 'error' }) === queue) {
          this.emitMessage('network', 'processerror', { id: n.id, error: describeFailure(data), graph: doc.id }, this.wantData);
        }
      }
    }
  }

  // ── readiness ─────────────────────────────────────────────────────────────────────────────────────────────

  /** Whether a packet sent to `node` now is seen all the way: participant up, bindings made, taps in place. */
  isReady(node: string): boolean {
    return this.pathUp(node) && this.coordinator.isReady(this.role(node)) && this.tapsReady(node);
  }

  /** Resolves when `node` is ready (see isReady); rejects with `onTimeout()` after `timeoutMs`. */
  whenReady(node: string, timeoutMs: number, onTimeout: () => Error): Promise<void> {
    if (this.isReady(node)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!this.isReady(node)) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(onTimeout());
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.off('progress', check);
        this.coordinator.off('event', check);
      };
      this.on('progress', check);
      this.coordinator.on('event', check);
    });
  }

  // ── what the network reports ──────────────────────────────────────────────────────────────────────────────

  private emitMessage(protocol: 'network' | 'runtime', command: string, payload: Record<string, unknown>, toClients: boolean): void {
    this.emit('message', { protocol, command, payload, toClients });
  }

  /** network:error / network:output for the live graph. */
  private report(kind: 'error' | 'output', payload: { message: string }): void {
    if (!this.doc) return;
    if (kind === 'error') this.emitMessage('network', 'error', { message: payload.message, graph: this.doc.id }, true);
    else this.emitMessage('network', 'output', { message: payload.message, type: 'message' }, true);
  }

  /** Which edges of the started graph are bound on the broker now; connect/disconnect for the changes. */
  private updateBound(): void {
    const doc = this.doc;
    const now = new Map<string, Record<string, unknown>>();
    if (doc && this.started) {
      const applied = this.coordinator.bindings();
      for (const edge of doc.edges) {
        let bound = false;
        const src = this.isParticipant(edge.src.node) ? this.queueOf(edge.src, 'outport') : undefined;
        const tgt = this.isParticipant(edge.tgt.node) ? this.queueOf(edge.tgt, 'inport') : undefined;
        if (src && tgt) bound = applied.some((b) => b.src === src && b.tgt === tgt);
        else if (src) bound = applied.some((b) => b.src === src);
        else if (tgt) bound = applied.some((b) => b.tgt === tgt || b.deadletter === tgt);
        if (bound) now.set(edgeKey(edge), { id: edgeId(edge.src, edge.tgt), src: refPayload(edge.src), tgt: refPayload(edge.tgt), graph: doc.id });
      }
    }
    for (const [key, payload] of now) if (!this.bound.has(key)) this.emitMessage('network', 'connect', payload, true);
    for (const [key, payload] of this.bound) if (!now.has(key)) this.emitMessage('network', 'disconnect', payload, true);
    this.bound = now;
  }

  private onCoordinatorEvent(e: CoordinatorEvent): void {
    switch (e.type) {
      case 'participant-added': {
        const node = this.nodeOfRole(e.participant.role);
        if (node !== undefined) {
          this.report('output', { message: `participant ${e.participant.role} (${e.participant.component}) is up: ${e.participant.id}` });
          if (typeof e.participant.icon === 'string' && e.participant.icon) {
            this.emitMessage('network', 'icon', { id: node, icon: e.participant.icon, graph: this.doc!.id }, true);
          }
        }
        this.changed();
        break;
      }
      case 'participant-changed':
        this.changed();
        break;
      case 'participant-expired': {
        const node = this.nodeOfRole(e.participant.role);
        if (node !== undefined) {
          const since = Math.round((Date.now() - e.lastSeen) / 1000);
          this.report('error', {
            message: `participant ${e.participant.role} (node '${node}', ${e.participant.id}) expired: no heartbeat for ${since} s; its edges stay, and work queues up until it is back`,
          });
        }
        this.changed();
        break;
      }
      case 'participant-left': {
        const node = this.nodeOfRole(e.participant.role);
        if (node !== undefined) this.report('output', { message: `participant ${e.participant.role} (${e.participant.id}) stopped` });
        this.changed();
        break;
      }
      case 'binding-added':
      case 'binding-removed':
        this.updateBound();
        this.emit('progress');
        break;
      case 'problem':
        this.report('error', { message: e.message });
        break;
      case 'error':
        this.report('error', { message: reasonOf(e.error) });
        break;
      default:
        break;
    }
  }

  private onLauncherEvent(e: LauncherEvent): void {
    const node = this.nodeOfRole(e.role);
    if (node === undefined || !this.launched.has(e.role)) return;
    switch (e.type) {
      case 'started':
        this.report('output', { message: `started ${e.role} (pid ${e.pid}): ${e.command.join(' ')}` });
        break;
      case 'exited':
        if (!e.expected) this.report('error', { message: `participant process ${e.role} (node '${node}') exited unexpectedly (${e.signal ?? `code ${e.code}`})` });
        break;
      case 'restarting':
        this.report('output', { message: `restarting ${e.role} in ${e.inMs} ms (restart ${e.restarts})` });
        break;
      case 'gave-up':
        this.report('error', { message: `${e.error.code}: ${e.error.message.split('\n')[0]}` });
        break;
      case 'spawn-error':
        this.report('error', { message: `cannot start ${e.role}: ${e.error.message}` });
        break;
    }
  }

  /** Stop tapping and stop the processes this network started; bindings stay on the broker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unsubscribe.splice(0)) off();
    this.coordinator.setIipGate(undefined);
    this.coordinator.setBoundGate(undefined);
    await this.syncing.catch(() => {});
    for (const tap of this.taps.values()) {
      await tap.pending;
      await tap.subscription?.cancel().catch(() => {});
    }
    this.taps.clear();
    const roles = [...this.launched.keys()];
    this.launched.clear();
    await Promise.all([...this.roleOps.values()]);
    if (this.launcher) await Promise.all(roles.map((r) => this.launcher!.stop(r)));
  }
}

/** What a participant's error outport said, as one line. */
function describeFailure(data: unknown): string {
  if (data && typeof data === 'object') {
    const d = data as { message?: unknown; code?: unknown };
    if (typeof d.message === 'string') return typeof d.code === 'string' ? `${d.code}: ${d.message}` : d.message;
  }
  return typeof data === 'string' ? data : JSON.stringify(data) ?? String(data);
}
