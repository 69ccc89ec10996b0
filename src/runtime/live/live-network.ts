/**
 * The live network: the one graph of the runtime that runs on the broker. It keeps three things converged to
 * that graph, again on every graph change, discovery, expiry and client (dis)connection:
 *
 * - **processes**: a participant process for every node whose component the library can run, through the
 *   Network (which starts, supervises and stops them);
 * - **the coordinator's graph**: nodes always; edges and IIPs only while the network is started (projection.ts).
 *   So a network that is not started has its participants up but nothing flows between them; network:start
 *   binds the edges and sends the IIPs (again); network:stop removes the edges (participants stay up);
 * - **data taps** (taps.ts), whose packets become protocol messages (reports.ts). An IIP waits until the taps
 *   downstream of its target are in place (the IIP gate), so a client sees every packet the IIP causes.
 *
 * Everything the network reports is emitted as ready-to-send protocol messages (`message` events).
 */
import { EventEmitter } from 'node:events';
import type { CoordinatorEvent } from '../../coordinator/coordinator.js';
import type { Network } from '../../coordinator/network.js';
import { type NetworkEvent, type ProcessEvent, isProcessEvent } from '../../coordinator/network-events.js';
import { reasonOf } from '../../errors.js';
import type { PortRef } from '../../graph/types.js';
import { queueName } from '../../protocol/naming.js';
import { logger } from '../../util/logger.js';
import { type GraphDocument, refPayload } from '../graph-doc.js';
import { edgeKey, iipId, sameNodePort } from './ids.js';
import { RoleNames, brokerGraph, downstream, isParticipant } from './projection.js';
import { type LiveMessage, boundChanges, boundEdges, packetMessages, participantMessages, processMessage, report } from './reports.js';
import { type TapWants, Taps, tapRefs } from './taps.js';

const log = logger('runtime');

export interface LiveNetworkOptions {
  network: Network;
  /** Prefix of every role: node `a` runs as role `<prefix>a`. Default ''. */
  rolePrefix?: string;
  /** Node ids whose processes are not started here (external participants). */
  ignore?: string[];
}

export class LiveNetwork extends EventEmitter<{ message: [LiveMessage]; progress: [] }> {
  private readonly network: Network;
  private readonly names: RoleNames;
  private readonly ignore: string[];
  private readonly taps: Taps;

  private doc: GraphDocument | undefined;
  private started = false;
  private startedAt = 0;
  private readonly wants: TapWants;
  /** Edges selected with network:edges (by edge key); undefined = every edge. */
  private selected: Set<string> | undefined;
  /** IIP targets (role.port) the gate let through since the network was started: sent, or being sent. */
  private released = new Set<string>();
  private bound = new Map<string, Record<string, unknown>>();

  private syncing: Promise<void> = Promise.resolve();
  private syncPending = false;
  private closed = false;
  private readonly onNetworkEvent: (e: NetworkEvent) => void;

  constructor(options: LiveNetworkOptions) {
    super();
    this.network = options.network;
    this.names = new RoleNames(options.rolePrefix ?? '');
    this.ignore = options.ignore ?? [];
    this.wants = { data: false, tracing: false, debug: false, selected: (e) => this.selected === undefined || this.selected.has(edgeKey(e)) };
    this.taps = new Taps(this.network.transport, (queue, data) => this.onTapped(queue, data));
    this.onNetworkEvent = (e) => (isProcessEvent(e) ? this.onProcessEvent(e) : this.onCoordinatorEvent(e as CoordinatorEvent));
    this.network.on('event', this.onNetworkEvent);
    this.network.coordinator.setIipGate((tgt, data) => this.iipGate(tgt, data));
    this.network.coordinator.setBoundGate((role) => this.boundGate(role));
  }

  get rolePrefix(): string {
    return this.names.prefix;
  }

  role(node: string): string {
    return this.names.role(node);
  }

  /** The live graph's node that runs as `role`, if any. */
  nodeOfRole(role: string): string | undefined {
    return this.names.nodeOf(this.doc, role);
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
    this.wants.debug = false;
    this.selected = undefined;
    this.bound = new Map();
    this.released = new Set();
    this.changed();
  }

  /** The live graph changed (a graph command was applied to it). */
  changed(): void {
    // Processes first and at once: a participant takes a while to start, nothing else should delay that.
    if (!this.closed) this.launch();
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
    const pending = this.network.coordinator
      .pendingIips()
      .some((t) => this.nodeOfRole(t.node) !== undefined && !this.released.has(`${t.node}.${t.port.toLowerCase()}`));
    return pending || this.network.launchedRoles().some((role) => !this.network.isCurrent(role));
  }

  get debugging(): boolean {
    return this.wants.debug;
  }

  setDebug(enable: boolean): void {
    this.wants.debug = enable;
    this.changed();
  }

  /** Whether clients want network:data and runtime:packet (at least one is connected). */
  setWantData(want: boolean): void {
    if (want === this.wants.data) return;
    this.wants.data = want;
    this.changed();
  }

  /** Whether the live graph is being traced (every edge is then tapped). */
  setTracing(tracing: boolean): void {
    if (tracing === this.wants.tracing) return;
    this.wants.tracing = tracing;
    this.changed();
  }

  /** network:edges: report packets of these edges only (undefined: every edge). */
  selectEdges(edges: Array<{ src: PortRef; tgt: PortRef }> | undefined): void {
    this.selected = edges ? new Set(edges.map(edgeKey)) : undefined;
    this.changed();
  }

  // ── sync ──────────────────────────────────────────────────────────────────────────────────────────────────

  private launch(): void {
    this.network.launch(this.doc?.toGraph(), { role: (node) => this.names.role(node), ignore: this.ignore });
  }

  private scheduleSync(): void {
    if (this.syncPending || this.closed) return;
    this.syncPending = true;
    this.syncing = this.syncing.then(async () => {
      this.syncPending = false;
      await this.syncNow().catch((err: unknown) => {
        log('live network sync failed: %s', reasonOf(err));
        this.send(this.doc && report(this.doc, 'error', reasonOf(err)));
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
    this.launch();
    const wanted = new Set<string>();
    for (const ref of tapRefs(this.doc, this.wants)) {
      const queue = this.tapQueue(ref);
      if (queue) wanted.add(queue);
    }
    // IIPs waiting for new taps may go now.
    if (await this.taps.sync(wanted)) void this.network.coordinator.reconcile();
    await this.network.coordinator.setGraph(brokerGraph(this.doc, this.names, this.started));
    this.updateBound();
  }

  /** The broker queue behind a node's port, once known (from discovery). */
  queueOf(ref: PortRef, direction: 'inport' | 'outport'): string | undefined {
    return this.network.coordinator.queueFor(this.names.ref(ref), direction);
  }

  /**
   * The queue to tap for a node's outport: the announced one; before the announcement, for a process started
   * here, the `role.PORT` queue msgflo-ts participants use (so the tap is in place when the first packet comes;
   * where that outport does not exist yet, e.g. on AMQP, the tap is made after the announcement).
   */
  private tapQueue(ref: PortRef): string | undefined {
    const role = this.names.role(ref.node);
    return this.queueOf(ref, 'outport') ?? (this.network.launches(role) ? queueName(role, ref.port) : undefined);
  }

  // ── the IIP gate and readiness ────────────────────────────────────────────────────────────────────────────

  /** Every tap that packets from `node` onwards need is in place. */
  private tapsReady(node: string): boolean {
    for (const ref of tapRefs(this.doc, this.wants, node)) {
      const queue = this.tapQueue(ref);
      if (!queue || !this.taps.active(queue)) return false;
    }
    return true;
  }

  /**
   * Whether every participant on the path of packets sent to `node` is up (current): on MQTT a packet for a
   * participant that is not subscribed yet is lost, and a binding may still point at the queue of one that is gone.
   */
  private pathUp(node: string): boolean {
    for (const id of downstream(this.doc, node)) {
      if (isParticipant(this.doc, id) && !this.network.isCurrent(this.names.role(id))) return false;
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
    this.emit('message', { protocol: 'network', command: 'data', payload: { id: iipId(ref), graph: this.doc.id, tgt: refPayload(ref), data }, toClients: true });
    return true;
  }

  /** A role of the live graph hears "bound" once the network is started and what it sends is seen (as an IIP's). */
  private boundGate(role: string): boolean {
    const node = this.nodeOfRole(role);
    return node === undefined || (this.started && this.pathUp(node) && this.tapsReady(node));
  }

  /** Whether a packet sent to `node` now is seen all the way: participant up, bindings made, taps in place. */
  isReady(node: string): boolean {
    return this.pathUp(node) && this.network.coordinator.isReady(this.names.role(node)) && this.tapsReady(node);
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
        this.network.coordinator.off('event', check);
      };
      this.on('progress', check);
      this.network.coordinator.on('event', check);
    });
  }

  // ── what the network reports ──────────────────────────────────────────────────────────────────────────────

  private send(...messages: Array<LiveMessage | undefined>): void {
    for (const m of messages) if (m) this.emit('message', m);
  }

  /** A packet seen on a tapped outport queue. */
  private onTapped(queue: string, data: unknown): void {
    if (!this.doc || this.closed) return;
    this.send(...packetMessages(this.doc, queue, data, this.wants, (ref) => this.tapQueue(ref)));
  }

  /** Which edges of the started graph are bound on the broker now; connect/disconnect for the changes. */
  private updateBound(): void {
    const now = this.doc && this.started ? boundEdges(this.doc, this.network.coordinator.bindings(), (ref, dir) => this.queueOf(ref, dir)) : new Map();
    this.send(...boundChanges(this.bound, now));
    this.bound = now;
  }

  private onCoordinatorEvent(e: CoordinatorEvent): void {
    switch (e.type) {
      case 'participant-added':
      case 'participant-expired':
      case 'participant-left': {
        const node = this.nodeOfRole(e.participant.role);
        if (node !== undefined) this.send(...participantMessages(this.doc!, node, e));
        this.changed();
        break;
      }
      case 'participant-changed':
        this.changed();
        break;
      case 'binding-added':
      case 'binding-removed':
        this.updateBound();
        this.emit('progress');
        break;
      case 'problem':
        this.send(this.doc && report(this.doc, 'error', e.message));
        break;
      case 'error':
        this.send(this.doc && report(this.doc, 'error', reasonOf(e.error)));
        break;
      default:
        break;
    }
  }

  private onProcessEvent(e: ProcessEvent): void {
    if (!this.doc) return;
    // Only processes of the live graph that are still wanted (a stopped or replaced one is not news); a failure
    // to start or stop one always is.
    const node = this.nodeOfRole(e.role);
    if (e.type !== 'process-error' && (node === undefined || !this.network.launches(e.role))) return;
    this.send(processMessage(this.doc, e, node));
  }

  /** Stop tapping and stop the processes this network started; bindings stay on the broker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.network.off('event', this.onNetworkEvent);
    this.network.coordinator.setIipGate(undefined);
    this.network.coordinator.setBoundGate(undefined);
    await this.syncing.catch(() => {});
    await this.taps.close();
    await this.network.stopProcesses();
  }
}
