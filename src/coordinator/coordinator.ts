import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DiscoveryInvalidError, ParticipantTimeoutError, reasonOf } from '../errors.js';
import { graphBindings } from '../graph/index.js';
import type { Graph, PortRef } from '../graph/types.js';
import { isRoutingComponent } from '../graph/types.js';
import { parseDiscovery } from '../protocol/discovery.js';
import { queueName } from '../protocol/naming.js';
import { bindingKey } from '../transport/bindings.js';
import type { Binding, InMessage, Subscription, Transport } from '../transport/types.js';
import { type Clock, systemClock } from '../util/clock.js';
import { lifetime } from '../util/dispose.js';
import { logger } from '../util/logger.js';
import { type BoundGate, BoundNotices } from './bound-notices.js';
import { type ParticipantEntry, ParticipantRegistry } from './registry.js';
import type { CoordinatorEvent, CoordinatorOptions, IipGate, ResolvedBinding } from './types.js';

export type { CoordinatorEvent, CoordinatorOptions, IipGate, ResolvedBinding };

const log = logger('coordinator');

/**
 * The message an IIP becomes: .fbp IIPs are strings, and one that holds JSON ('{"a": 1}', '42', 'true') is sent
 * as that JSON value, since msgflo bodies are JSON; any other string is sent as a string.
 */
export function iipValue(data: unknown): unknown {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

const appliedKey = (b: ResolvedBinding) => bindingKey(b) + (b.bridge ? '|bridge' : '');

/**
 * Keeps the broker converged to the graph: discovers participants (and expires silent ones), makes and removes
 * bindings, sends IIPs once the queue they need exists. Reconciles on every discovery, expiry and graph change.
 */
export class Coordinator extends EventEmitter<{ event: [CoordinatorEvent] }> {
  readonly registry: ParticipantRegistry;

  private readonly transport: Transport;
  private readonly discover: boolean;
  private graph: Graph | undefined;
  private discovery: Subscription | undefined;
  /** Bindings this coordinator made, by key. */
  private readonly applied = new Map<string, ResolvedBinding>();
  /** IIP key → queue it was sent to, for the current incarnation of its target role. */
  private readonly iipsSent = new Map<string, string>();
  private reconciling: Promise<void> = Promise.resolve();
  private pendingReconcile = false;
  private readonly problemsReported = new Set<string>();
  /** Queue each graph port last resolved to, kept when its participant goes away. */
  private readonly lastKnown = new Map<string, string>();
  private stopped = false;
  private readonly life = lifetime();
  private iipGate: IipGate | undefined;
  private boundGate: BoundGate | undefined;
  private readonly notices: BoundNotices;

  constructor(options: CoordinatorOptions) {
    super();
    this.transport = options.transport;
    this.discover = options.discover ?? true;
    this.notices = new BoundNotices(this.transport, `coordinator-${randomUUID()}`);
    const registryOptions: { clock: Clock; missed?: number } = { clock: options.clock ?? systemClock };
    if (options.missedHeartbeats !== undefined) registryOptions.missed = options.missedHeartbeats;
    this.registry = new ParticipantRegistry(registryOptions);
    this.registry.on('added', (e) => {
      this.emitEvent({ type: 'participant-added', participant: e.info });
      this.scheduleReconcile();
      this.tellBound(e, true);
    });
    this.registry.on('updated', (e, changed) => {
      this.tellBound(e, true);
      if (!changed) return;
      this.emitEvent({ type: 'participant-changed', participant: e.info });
      this.scheduleReconcile();
    });
    this.registry.on('expired', (e) => {
      this.notices.forget(e.info.id);
      log('participant %s (%s) expired: no heartbeat for %ss', e.info.id, e.info.role, Math.round((Date.now() - e.lastSeen) / 1000));
      this.emitEvent({ type: 'participant-expired', participant: e.info, lastSeen: e.lastSeen });
      this.forgetRoleIfGone(e.info.role);
      this.scheduleReconcile();
    });
    this.registry.on('left', (e) => {
      this.notices.forget(e.info.id);
      this.emitEvent({ type: 'participant-left', participant: e.info });
      this.forgetRoleIfGone(e.info.role);
      this.scheduleReconcile();
    });
  }

  private emitEvent(event: CoordinatorEvent): void {
    this.emit('event', event);
  }

  /** Start observing discovery on the broker. */
  async start(): Promise<void> {
    this.discovery = await this.transport.onDiscovery((m) => this.onDiscoveryMessage(m));
    this.registry.start();
  }

  /** Stop observing. Bindings stay on the broker: the network keeps running without a coordinator. */
  async stop(): Promise<void> {
    if (this.stopped) return this.life.closed;
    this.stopped = true;
    this.registry.stop();
    await this.discovery?.cancel().catch(() => {});
    await this.reconciling.catch(() => {});
    this.life.close();
  }

  /** Resolves when the coordinator has stopped. */
  closed(): Promise<void> {
    return this.life.closed;
  }

  /** `await using`: stops the coordinator (its transport is the caller's to close). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Handle one raw discovery message (as received on `fbp`). Invalid ones are reported and ignored. */
  onDiscoveryMessage(message: InMessage): void {
    try {
      if (message.jsonError) throw new DiscoveryInvalidError([`body is not JSON (${message.jsonError.message})`]);
      const parsed = parseDiscovery(message.data);
      if (parsed.payload.leaving === true) this.registry.leave(parsed.payload.id);
      else this.registry.update(parsed.payload);
    } catch (err) {
      const raw = message.raw.toString('utf8').slice(0, 500);
      log('ignoring invalid discovery message: %s', reasonOf(err));
      this.emitEvent({ type: 'invalid-discovery', error: err as Error, raw });
    }
  }

  /** Replace the desired network; bindings no longer wanted are removed, new ones made. */
  async setGraph(graph: Graph | undefined): Promise<void> {
    this.graph = graph;
    if (graph) {
      // IIPs that the new graph no longer has will never be resent; those it still has keep their state.
      const keep = new Set(graph.iips.map((iip, i) => this.iipKey(iip.tgt, i)));
      for (const key of this.iipsSent.keys()) if (!keep.has(key)) this.iipsSent.delete(key);
    } else {
      this.iipsSent.clear();
    }
    await this.reconcile();
  }

  getGraph(): Graph | undefined {
    return this.graph;
  }

  participants(): ParticipantEntry[] {
    return this.registry.all();
  }

  /** IIPs of the graph not sent yet (their target, or a binding downstream of it, is not there yet). */
  pendingIips(): PortRef[] {
    if (!this.graph) return [];
    return this.graph.iips.filter((iip, i) => !this.iipsSent.has(this.iipKey(iip.tgt, i))).map((iip) => iip.tgt);
  }

  /** Bindings this coordinator has made and not removed. */
  bindings(): ResolvedBinding[] {
    return [...this.applied.values()];
  }

  /** Install (or remove, with undefined) the gate IIPs pass right before they are sent (see IipGate). */
  setIipGate(gate: IipGate | undefined): void {
    this.iipGate = gate;
  }

  /** Install (or remove, with undefined) the gate a role passes before its participants hear "bound" (see BoundGate). */
  setBoundGate(gate: BoundGate | undefined): void {
    this.boundGate = gate;
  }

  /**
   * Whether what is sent to `role` now travels as the graph says: the role has a live participant, every binding
   * downstream of it can be resolved, every binding the graph asks for has been made, and on MQTT (where nothing is
   * kept for a reader that is not there) every participant downstream of it is live.
   */
  isReady(role: string): boolean {
    if (this.registry.byRole(role).length === 0) return false;
    const { bindings, blocked } = this.resolveBindings();
    if (blocked.has(role)) return false;
    return bindings.every((b) => this.applied.has(appliedKey(b)));
  }

  /** A role's process is known to be gone (it crashed): drop its participants now instead of waiting for expiry. */
  forgetRole(role: string): void {
    for (const entry of this.registry.byRole(role)) this.registry.leave(entry.info.id);
  }

  /** Forget IIP state of a role with no live participant left, so its IIPs are sent again when it comes back. */
  private forgetRoleIfGone(role: string): void {
    if (this.registry.byRole(role).length > 0 || !this.graph) return;
    this.graph.iips.forEach((iip, i) => {
      if (iip.tgt.node === role) this.iipsSent.delete(this.iipKey(iip.tgt, i));
    });
  }

  private iipKey(tgt: PortRef, index: number): string {
    return `${index}:${tgt.node}.${tgt.port}`;
  }

  /**
   * Resolve a graph port to its broker queue: from discovery; for a role that is gone, the queue it last
   * announced (its edges stay, so work queues up for it); else by convention when allowed.
   */
  queueFor(ref: PortRef, direction: 'inport' | 'outport'): string | undefined {
    const entries = this.registry.byRole(ref.node);
    const known = `${direction}:${ref.node}:${ref.port.toLowerCase()}`;
    if (entries.length > 0) {
      for (const e of entries) {
        const ports = direction === 'inport' ? e.info.inports : e.info.outports;
        const port = ports.find((p) => p.id.toLowerCase() === ref.port.toLowerCase());
        if (port?.queue) {
          this.lastKnown.set(known, port.queue);
          return port.queue;
        }
      }
      this.reportProblem(
        `'${ref.node}' (${entries[0]!.info.component}) has no ${direction} '${ref.port}'; known: ${(direction === 'inport' ? entries[0]!.info.inports : entries[0]!.info.outports).map((p) => p.id).join(', ')}`,
      );
      return undefined;
    }
    const last = this.lastKnown.get(known);
    if (last) return last;
    return this.discover ? undefined : queueName(ref.node, ref.port);
  }

  private reportProblem(message: string): void {
    if (this.problemsReported.has(message)) return;
    this.problemsReported.add(message);
    log('problem: %s', message);
    this.emitEvent({ type: 'problem', message });
  }

  /** The bindings the graph asks for that can be resolved now. */
  desiredBindings(): ResolvedBinding[] {
    return this.resolveBindings().bindings;
  }

  /** Resolvable bindings, and the nodes with an outgoing binding that cannot be resolved yet. */
  private resolveBindings(): { bindings: ResolvedBinding[]; blocked: Set<string> } {
    const out: ResolvedBinding[] = [];
    const blocked = new Set<string>();
    const downstream = new Map<string, string[]>();
    if (!this.graph) return { bindings: out, blocked };
    for (const b of graphBindings(this.graph)) {
      const src = this.queueFor(b.src, 'outport');
      const tgt = this.queueFor(b.tgt, 'inport');
      if (!src || !tgt) {
        blocked.add(b.src.node);
        continue;
      }
      downstream.set(b.src.node, [...(downstream.get(b.src.node) ?? []), b.tgt.node, ...(b.deadletter ? [b.deadletter.node] : [])]);
      const binding: ResolvedBinding = { type: b.type, src, tgt, bridge: this.needsBridge(b.tgt.node) };
      if (b.deadletter) {
        const dl = this.queueFor(b.deadletter, 'inport');
        if (dl) binding.deadletter = dl;
      }
      out.push(binding);
      // On MQTT a message reaches only who reads the topic now: one whose reader is not there is lost.
      if (!this.transport.brokerBindings && this.registry.byRole(b.tgt.node).length === 0) blocked.add(b.src.node);
    }
    // A node is blocked when any node downstream of it has an edge that cannot be bound yet (or, on MQTT, leads to no
    // live participant): what an IIP to it causes would be lost there.
    let grew = true;
    while (grew) {
      grew = false;
      for (const [node, next] of downstream) {
        if (!blocked.has(node) && next.some((n) => blocked.has(n))) {
          blocked.add(node);
          grew = true;
        }
      }
    }
    return { bindings: out, blocked };
  }

  /** Whether a live participant reads this inqueue. */
  private targetIsLive(queue: string): boolean {
    return this.registry.all().some((e) => e.info.inports.some((p) => p.queue === queue));
  }

  /** On MQTT, msgflo-era targets don't follow binding records: forward for them in this process. */
  private needsBridge(role: string): boolean {
    if (this.transport.brokerBindings) return false;
    const entries = this.registry.byRole(role);
    return entries.length > 0 && entries.every((e) => e.legacy);
  }

  private scheduleReconcile(): void {
    if (this.pendingReconcile || this.stopped) return;
    this.pendingReconcile = true;
    this.reconciling = this.reconciling.then(async () => {
      this.pendingReconcile = false;
      await this.reconcileNow();
    });
  }

  /** Converge the broker to the graph now (serialised with other reconciliations). */
  reconcile(): Promise<void> {
    this.scheduleReconcile();
    return this.reconciling;
  }

  private async reconcileNow(): Promise<void> {
    if (this.stopped) return;
    try {
      const { bindings, blocked } = this.resolveBindings();
      const desired = new Map(bindings.map((b) => [appliedKey(b), b]));
      for (const [key, b] of [...this.applied]) {
        if (desired.has(key)) continue;
        await this.transport.removeBinding(b);
        this.applied.delete(key);
        log('unbound %s', key);
        this.emitEvent({ type: 'binding-removed', binding: b });
      }
      for (const [key, b] of desired) {
        if (this.applied.has(key)) continue;
        // On MQTT, wait until a live msgflo-ts target follows the new edge, so IIPs sent next are not lost.
        const follows = !this.transport.brokerBindings && !b.bridge && this.targetIsLive(b.tgt);
        await this.transport.addBinding(b, { bridge: b.bridge, ...(follows ? { confirmMs: 3000 } : {}) });
        this.applied.set(key, b);
        log('bound %s', key);
        this.emitEvent({ type: 'binding-added', binding: b });
      }
      await this.sendIips(blocked);
      for (const entry of this.registry.all()) this.tellBound(entry, false);
    } catch (err) {
      log('reconcile failed: %s', reasonOf(err));
      this.emitEvent({ type: 'error', error: err as Error });
    }
  }

  /**
   * Send each IIP once its target queue exists and the bindings of the target's outports exist (so what it
   * answers is not lost), and again when its role comes back after being gone.
   */
  private async sendIips(blocked: Set<string>): Promise<void> {
    if (!this.graph) return;
    for (const [i, iip] of this.graph.iips.entries()) {
      const key = this.iipKey(iip.tgt, i);
      if (this.iipsSent.has(key)) continue;
      const node = this.graph.nodes.find((n) => n.id === iip.tgt.node);
      if (node && isRoutingComponent(node.component)) continue;
      if (blocked.has(iip.tgt.node)) continue;
      const queue = this.queueFor(iip.tgt, 'inport');
      if (!queue) continue;
      if (this.registry.byRole(iip.tgt.node).length === 0) {
        // Nobody reads the queue now. A broker-side queue keeps the IIP until its participant comes (msgflo-setup
        // without --discover); an MQTT topic would drop it, and a role that went away gets it when it is back.
        if (this.discover || !this.transport.brokerBindings) continue;
        if (!(await this.transport.queueExists('inqueue', queue))) await this.transport.createQueue('inqueue', queue);
      }
      const data = iipValue(iip.data);
      if (this.iipGate && !this.iipGate(iip.tgt, data)) continue;
      await this.transport.send('inqueue', queue, data);
      this.iipsSent.set(key, queue);
      log('sent IIP to %s', queue);
      this.emitEvent({ type: 'iip-sent', queue, tgt: iip.tgt, data });
    }
  }

  /** Tell a participant of the graph whether its edges are bound (isReady and the gate): see BoundNotices. */
  private tellBound(entry: ParticipantEntry, heartbeat: boolean): void {
    const role = entry.info.role;
    if (this.stopped || this.notices.isBound(entry.info.id)) return;
    if (!this.graph?.nodes.some((n) => n.id === role && !isRoutingComponent(n.component))) return;
    this.notices.tell(entry.info, this.isReady(role) && (this.boundGate?.(role) ?? true), heartbeat);
  }

  /** Resolve once every role has a live participant; rejects with ParticipantTimeoutError naming the missing. */
  waitForParticipants(roles: string[], options: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
    const missing = () => roles.filter((r) => this.registry.byRole(r).length === 0);
    if (missing().length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        clearTimeout(timer);
        this.registry.off('added', check);
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (missing().length === 0) done();
      };
      const onAbort = () => done(options.signal?.reason ?? new Error('aborted'));
      const timer = setTimeout(() => done(new ParticipantTimeoutError(missing(), options.timeoutMs / 1000)), options.timeoutMs);
      this.registry.on('added', check);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
