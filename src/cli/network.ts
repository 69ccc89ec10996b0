/**
 * What `msgflo` and `msgflo-setup` share: pick the broker (or start the embedded one), load the graph, run the
 * coordinator, launch and supervise participants, and report what happens.
 */
import { type EmbeddedBroker, startEmbeddedBroker } from '../broker/index.js';
import { Coordinator, type CoordinatorEvent, type ResolvedBinding } from '../coordinator/coordinator.js';
import { Launcher, type LauncherEvent } from '../coordinator/launcher.js';
import { type ComponentLibrary, loadLibrary } from '../coordinator/library.js';
import { UnknownComponentError, maskUrl, reasonOf } from '../errors.js';
import { iipsForRole, loadGraph, participantNodes, validateGraph } from '../graph/index.js';
import type { Graph } from '../graph/types.js';
import { connectTransport } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import { connectWithRetry } from './common.js';
import type { CliIO } from './io.js';

export interface NetworkOptions {
  graphFile: string | undefined;
  /** The configured broker (settings: --broker, else MSGFLO_BROKER); undefined: start the embedded one. */
  broker: string | undefined;
  library: string | undefined;
  /** Launch participant processes for graph nodes. */
  launch: boolean;
  /** launch === true: components missing from the library are an error (setup) or only a warning (msgflo). */
  strictComponents: boolean;
  only: string[];
  ignore: string[];
  forward: { stdout: boolean; stderr: boolean };
  /** Take queue names only from discovery. */
  discover: boolean;
  /** Long-running: retry the broker connection instead of failing. */
  retryConnect: boolean;
  command: string;
  /**
   * The FBP runtime (msgflo) puts the graph into action itself: the graph is loaded and checked, the launcher
   * is made, but no participant is started and the coordinator gets no graph here.
   */
  runtimeManaged?: boolean;
}

export interface RunningNetwork {
  broker: string;
  embedded: EmbeddedBroker | undefined;
  transport: Transport;
  coordinator: Coordinator;
  launcher: Launcher | undefined;
  graph: Graph | undefined;
  library: ComponentLibrary;
  /** Roles this network launched. */
  launched: string[];
  stop(): Promise<void>;
}

export function describeBinding(b: ResolvedBinding): string[] {
  const lines = [`${b.type.toUpperCase()}: ${b.src} -> ${b.tgt}${b.bridge ? ' (bridged in this process)' : ''}`];
  if (b.deadletter) lines.push(`DEADLETTER: dead-${b.tgt} -> ${b.deadletter}`);
  return lines;
}

export function describeEvent(e: CoordinatorEvent): string | undefined {
  switch (e.type) {
    case 'participant-added':
      return `+ participant ${e.participant.role} (${e.participant.component}) ${e.participant.id}`;
    case 'participant-expired':
      return `- participant ${e.participant.role} expired: no heartbeat since ${new Date(e.lastSeen).toISOString()} (${e.participant.id})`;
    case 'participant-left':
      return `- participant ${e.participant.role} stopped (${e.participant.id})`;
    case 'binding-added':
      return describeBinding(e.binding).map((l) => `bound ${l}`).join('\n');
    case 'binding-removed':
      return describeBinding(e.binding).map((l) => `unbound ${l}`).join('\n');
    case 'iip-sent':
      return `IIP -> ${e.queue}: ${JSON.stringify(e.data)}`;
    case 'invalid-discovery':
      return `ignored an invalid discovery message: ${reasonOf(e.error)}`;
    case 'problem':
      return `problem: ${e.message}`;
    case 'error':
      return `error: ${reasonOf(e.error)}`;
    default:
      return undefined;
  }
}

export function describeLauncherEvent(e: LauncherEvent): string | undefined {
  switch (e.type) {
    case 'started':
      return `started ${e.role} (pid ${e.pid}): ${e.command.join(' ')}`;
    case 'exited':
      return e.expected ? undefined : `${e.role} exited unexpectedly (${e.signal ?? `code ${e.code}`})`;
    case 'restarting':
      return `restarting ${e.role} in ${e.inMs} ms (restart ${e.restarts})`;
    case 'gave-up':
      return `${e.error.code}: ${e.error.message}`;
    case 'spawn-error':
      return `cannot start ${e.role}: ${e.error.message}`;
  }
}

/** Start everything; on failure, whatever was started is stopped again before the error is thrown. */
export async function startNetwork(options: NetworkOptions, io: CliIO): Promise<RunningNetwork> {
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  try {
    const graph = options.graphFile ? await loadGraph(options.graphFile) : undefined;
    if (graph) validateGraph(graph);
    const library = await loadLibrary({ cwd: io.cwd, builtins: true, ...(options.library ? { file: options.library } : {}) });

    let broker = options.broker;
    let embedded: EmbeddedBroker | undefined;
    if (!broker) {
      embedded = await startEmbeddedBroker({ wsPort: 0 });
      cleanups.push(() => embedded!.close());
      broker = embedded.url;
      io.stdout.write(
        `No broker configured (--broker, MSGFLO_BROKER): started the embedded MQTT broker on ${broker} (WebSocket: ${embedded.wsUrl})\n`,
      );
    }
    const url = broker;
    const transport = options.retryConnect
      ? await connectWithRetry(url, {
          name: 'msgflo',
          signal: io.signal,
          onRetry: (err, inMs) => io.stderr.write(`${options.command}: ${reasonOf(err)}; retrying in ${inMs} ms\n`),
        })
      : await connectTransport(url, { name: 'msgflo' });
    cleanups.push(() => transport.close());
    io.stdout.write(`${options.command}: connected to ${maskUrl(url)}\n`);

    const coordinator = new Coordinator({ transport, discover: options.discover });
    coordinator.on('event', (e) => {
      const line = describeEvent(e);
      if (line) io.stdout.write(`${line}\n`);
    });
    await coordinator.start();
    cleanups.push(() => coordinator.stop());

    let launcher: Launcher | undefined;
    const launched: string[] = [];
    if (options.launch && (graph || options.runtimeManaged)) {
      const roles = (options.runtimeManaged || !graph ? [] : participantNodes(graph)).filter(
        (n) => (options.only.length === 0 || options.only.includes(n.id)) && !options.ignore.includes(n.id),
      );
      const specs = [];
      for (const node of roles) {
        if (!library.has(node.component)) {
          if (options.strictComponents) throw new UnknownComponentError(node.component, node.id, library.components());
          io.stderr.write(
            `${options.command}: no command for component '${node.component}' (node '${node.id}') in the library; waiting for it to announce itself. Known components: ${library.components().join(', ') || '(none)'}\n`,
          );
          continue;
        }
        specs.push({ role: node.id, command: library.commandFor(node.component, node.id, iipsForRole(graph!, node.id)) });
      }
      launcher = new Launcher({
        broker: url,
        cwd: io.cwd,
        env: io.env,
        stdout: io.stdout,
        stderr: io.stderr,
        forward: options.forward,
      });
      launcher.on('event', (e) => {
        const line = describeLauncherEvent(e);
        if (line) io.stdout.write(`${line}\n`);
        // A crashed participant will come back as a new one: let its IIPs be sent again then.
        if (e.type === 'exited' && !e.expected) coordinator.forgetRole(e.role);
      });
      cleanups.push(() => launcher!.stopAll());
      for (const spec of specs) {
        launcher.start(spec);
        launched.push(spec.role);
      }
    }
    if (!options.runtimeManaged) await coordinator.setGraph(graph);
    return {
      broker: url,
      embedded,
      transport,
      coordinator,
      launcher,
      graph,
      library,
      launched,
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Resolve when the command's signal aborts (SIGINT/SIGTERM). */
export function untilSignalled(io: CliIO): Promise<void> {
  if (io.signal.aborted) return Promise.resolve();
  return new Promise((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
}
