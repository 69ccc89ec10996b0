/**
 * A network: the broker connection (or the embedded broker when none is given), the coordinator that keeps the
 * broker converged to a graph, and the participant processes that graph needs, launched and supervised here.
 * `msgflo`, `msgflo-setup` and the FBP runtime all run their graphs through one; a library user runs one the
 * same way:
 *
 * ```ts
 * await using network = await startNetwork({ broker: 'amqp://localhost' });
 * await network.run(await loadGraph('graphs/demo.fbp'));
 * ```
 *
 * Everything it does is reported as one typed event stream (`event`; see network-events.ts for the words).
 */
import { EventEmitter } from 'node:events';
import type { EmbeddedBroker, EmbeddedBrokerOptions } from '../broker/index.js';
import { UnknownComponentError } from '../errors.js';
import { iipsForRole, participantNodes } from '../graph/bindings.js';
import type { Graph } from '../graph/types.js';
import { connectTransport } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { lifetime } from '../util/dispose.js';
import { Coordinator } from './coordinator.js';
import { Launcher, type LauncherOptions } from './launcher.js';
import { type ComponentLibrary, loadLibrary } from './library.js';
import type { NetworkEvent } from './network-events.js';
import { type ProcessWish, Processes } from './processes.js';

/** How participant processes are started: the Launcher's options, except the broker (the network's). */
export type LaunchOptions = Omit<LauncherOptions, 'broker' | 'cwd'>;

export interface NetworkOptions {
  /** Broker URL. Without it (and without `transport`), the embedded MQTT broker is started on 127.0.0.1. */
  broker?: string;
  /** A connection made by the caller; the network uses it and leaves it open when it stops. */
  transport?: Transport;
  /** How to connect to `broker` (default: connectTransport, once). */
  connect?: (url: string) => Promise<Transport>;
  /** Options of the embedded broker (default: MQTT over WebSocket too, on a free port). */
  embedded?: EmbeddedBrokerOptions;
  /**
   * How to start the embedded broker (default: startEmbeddedBroker, whose module is loaded only then). A program
   * that must come up fast (msgflo serves clients while its network starts) passes it, so the broker's module
   * loads with the program instead.
   */
  startBroker?: (options: EmbeddedBrokerOptions) => Promise<EmbeddedBroker>;
  /** Folder of the component library and of launched processes (default: the current directory). */
  cwd?: string;
  /** The component library (default: loaded from `libraryFile`, else `<cwd>/package.json`, with the built-ins). */
  library?: ComponentLibrary;
  libraryFile?: string;
  /** Start participant processes for graph nodes (default false: participants are started by others). */
  launch?: boolean | LaunchOptions;
  /** Take queue names only from discovery (default true); see CoordinatorOptions. */
  discover?: boolean;
  clock?: Clock;
  missedHeartbeats?: number;
  /** Told about every event from the start (also those of the start itself: the broker, the connection). */
  onEvent?: (event: NetworkEvent) => void;
}

/** Which nodes of a graph get a process, and as which role. */
export interface LaunchGraphOptions {
  /** The role of a node (default: its id). */
  role?: (node: string) => string;
  /** Only these node ids (default: every participant node). */
  only?: readonly string[];
  /** Not these node ids (external participants). */
  ignore?: readonly string[];
  /** A node whose component the library cannot run is an error (default: an `unlaunchable` event, once). */
  strict?: boolean;
}

interface Parts {
  url: string;
  embedded: EmbeddedBroker | undefined;
  transport: Transport;
  ownsTransport: boolean;
  coordinator: Coordinator;
  library: ComponentLibrary;
  launcher: Launcher | undefined;
}

/** Start a network: library, broker (or the embedded one), connection, coordinator, launcher. */
export async function startNetwork(options: NetworkOptions = {}): Promise<Network> {
  let network: Network | undefined;
  // Until the network exists, events go to onEvent; from then on through the network (onEvent is its listener).
  const emit = (e: NetworkEvent) => (network ? network.emit('event', e) : options.onEvent?.(e));
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const cwd = options.cwd ?? process.cwd();
    const library = options.library ?? (await loadLibrary({ cwd, builtins: true, ...(options.libraryFile ? { file: options.libraryFile } : {}) }));
    let url = options.transport?.url ?? options.broker;
    let embedded: EmbeddedBroker | undefined;
    if (!url) {
      // Loaded only when needed: a program that never starts it does not load the broker (aedes, ws).
      const start = options.startBroker ?? (await import('../broker/index.js')).startEmbeddedBroker;
      const broker = await start(options.embedded ?? { wsPort: 0 });
      embedded = broker;
      cleanups.push(() => broker.close());
      url = broker.url;
      emit({ type: 'embedded-broker', url: broker.url, wsUrl: broker.wsUrl });
    }
    const brokerUrl = url;
    let transport = options.transport;
    if (!transport) {
      const connected = await (options.connect ?? ((u: string) => connectTransport(u, { name: 'msgflo' })))(brokerUrl);
      transport = connected;
      cleanups.push(() => connected.close());
      emit({ type: 'connected', url: brokerUrl });
    }
    const coordinator = new Coordinator({
      transport,
      ...(options.discover !== undefined ? { discover: options.discover } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.missedHeartbeats !== undefined ? { missedHeartbeats: options.missedHeartbeats } : {}),
    });
    coordinator.on('event', emit);
    await coordinator.start();
    cleanups.push(() => coordinator.stop());
    const launch = options.launch === true ? {} : options.launch || undefined;
    const launcher = launch ? new Launcher({ ...launch, broker: brokerUrl, cwd }) : undefined;
    const parts: Parts = { url: brokerUrl, embedded, transport, ownsTransport: !options.transport, coordinator, library, launcher };
    network = new Network(parts, options.onEvent);
    return network;
  } catch (err) {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
    throw err;
  }
}

export class Network extends EventEmitter<{ event: [NetworkEvent] }> {
  /** The broker URL (the embedded broker's when it was started), as participants connect to it. */
  readonly broker: string;
  readonly embedded: EmbeddedBroker | undefined;
  readonly transport: Transport;
  readonly coordinator: Coordinator;
  readonly library: ComponentLibrary;
  /** Starts the participant processes (undefined when this network launches none). */
  readonly launcher: Launcher | undefined;
  private readonly processes: Processes | undefined;
  private readonly ownsTransport: boolean;
  /** Nodes already reported as unlaunchable (node and component). */
  private readonly warned = new Set<string>();
  private readonly life = lifetime();
  private stopping: Promise<void> | undefined;

  /** @internal Use startNetwork(), which also passes the coordinator's events on to this network's. */
  constructor(parts: Parts, onEvent?: (event: NetworkEvent) => void) {
    super();
    if (onEvent) this.on('event', onEvent);
    this.broker = parts.url;
    this.embedded = parts.embedded;
    this.transport = parts.transport;
    this.ownsTransport = parts.ownsTransport;
    this.coordinator = parts.coordinator;
    this.library = parts.library;
    this.launcher = parts.launcher;
    if (this.launcher) {
      this.processes = new Processes(this.launcher, this.coordinator.registry, (role, error) => this.emit('event', { type: 'process-error', role, error }));
      this.launcher.on('event', (e) => {
        this.emit('event', e);
        // A crashed participant will come back as a new one: let its IIPs be sent again then.
        if (e.type === 'exited' && !e.expected) this.coordinator.forgetRole(e.role);
      });
    }
  }

  /**
   * Run the processes `graph` needs (when this network launches processes) and converge the broker to it: what
   * msgflo-setup does. Throws UnknownComponentError before anything starts when `strict` and a component is unknown.
   */
  async run(graph: Graph | undefined, options: LaunchGraphOptions = {}): Promise<void> {
    this.launch(graph, options);
    await this.coordinator.setGraph(graph);
  }

  /**
   * Make the running processes those of `graph`'s participant nodes whose component the library can run (none
   * for no graph): new nodes are started, removed ones stopped, a node whose component changed restarted.
   */
  launch(graph: Graph | undefined, options: LaunchGraphOptions = {}): void {
    if (!this.processes) return;
    const role = options.role ?? ((node: string) => node);
    const only = options.only ?? [];
    const ignore = new Set(options.ignore ?? []);
    const wishes: ProcessWish[] = [];
    const missing: Array<{ node: string; component: string }> = [];
    for (const node of graph ? participantNodes(graph) : []) {
      if (ignore.has(node.id) || (only.length > 0 && !only.includes(node.id))) continue;
      if (!this.library.has(node.component)) {
        missing.push({ node: node.id, component: node.component });
        continue;
      }
      const r = role(node.id);
      const iips = iipsForRole(graph!, node.id);
      wishes.push({ role: r, node: node.id, component: node.component, command: () => this.library.commandFor(node.component, r, iips) });
    }
    if (options.strict && missing.length) throw new UnknownComponentError(missing[0]!.component, missing[0]!.node, this.library.components());
    for (const m of missing) {
      const key = `${m.node}\u0000${m.component}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      this.emit('event', { type: 'unlaunchable', role: role(m.node), node: m.node, component: m.component, known: this.library.components() });
    }
    this.processes.sync(wishes);
  }

  /** Whether this network wants a process for `role` running (it started it, or is starting it). */
  launches(role: string): boolean {
    return this.processes?.has(role) ?? false;
  }

  /** Roles whose process this network wants running. */
  launchedRoles(): string[] {
    return this.processes?.roles() ?? [];
  }

  /**
   * Whether `role` has a participant that can take packets: for a role this network launched, one announced after
   * its process was started; for any other role, any live one.
   */
  isCurrent(role: string): boolean {
    return this.processes ? this.processes.isCurrent(role) : this.coordinator.registry.byRole(role).length > 0;
  }

  /** Stop the processes this network started (they drain); a later launch() starts them again. */
  async stopProcesses(): Promise<void> {
    await this.processes?.stopAll();
  }

  /**
   * Stop: the processes this network started, the coordinator, the connection it made, the embedded broker.
   * Bindings stay on the broker (a network on RabbitMQ or Mosquitto keeps running). Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.processes?.close().catch(() => {});
      await this.coordinator.stop().catch(() => {});
      if (this.ownsTransport) await this.transport.close().catch(() => {});
      await this.embedded?.close().catch(() => {});
      this.life.close();
    })();
    return this.stopping;
  }

  /** Resolves when the network has fully stopped. */
  closed(): Promise<void> {
    return this.life.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
