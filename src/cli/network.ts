/**
 * What `msgflo` and `msgflo-setup` share on top of the coordinator's Network: the broker from --broker or
 * MSGFLO_BROKER, the graph file, retrying the connection, and every network event printed.
 */
import { startEmbeddedBroker } from '../broker/index.js';
import { type Network, startNetwork } from '../coordinator/network.js';
import { type NetworkEvent, describeNetworkEvent } from '../coordinator/network-events.js';
import { maskUrl, reasonOf } from '../errors.js';
import { loadGraph, validateGraph } from '../graph/index.js';
import type { Graph } from '../graph/types.js';
import { connectTransport } from '../transport/index.js';
import { connectWithRetry } from './common.js';
import type { CliIO } from './io.js';

export interface CliNetworkOptions {
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
   * The FBP runtime (msgflo) puts the graph into action itself: the graph is loaded and checked, but nothing is
   * launched and the coordinator gets no graph here.
   */
  runtimeManaged?: boolean;
}

/** Print a network event where the CLIs print it. */
function printEvent(e: NetworkEvent, io: CliIO, command: string): void {
  switch (e.type) {
    case 'embedded-broker':
      io.stdout.write(`No broker configured (--broker, MSGFLO_BROKER): started the embedded MQTT broker on ${e.url} (WebSocket: ${e.wsUrl})\n`);
      return;
    case 'connected':
      io.stdout.write(`${command}: connected to ${maskUrl(e.url)}\n`);
      return;
    case 'unlaunchable':
      io.stderr.write(`${command}: ${describeNetworkEvent(e)}\n`);
      return;
    default: {
      const line = describeNetworkEvent(e);
      if (line) io.stdout.write(`${line}\n`);
    }
  }
}

/**
 * Load the graph, start the network and (unless the runtime manages it) run the graph; on failure, whatever was
 * started is stopped again before the error is thrown.
 */
export async function startCliNetwork(options: CliNetworkOptions, io: CliIO): Promise<{ network: Network; graph: Graph | undefined }> {
  const graph = options.graphFile ? await loadGraph(options.graphFile) : undefined;
  if (graph) validateGraph(graph);
  const broker = options.broker;
  const network = await startNetwork({
    ...(broker ? { broker } : {}),
    // Loaded with the command, before msgflo listens for clients: not while they wait for the network.
    startBroker: startEmbeddedBroker,
    connect: (url) =>
      options.retryConnect
        ? connectWithRetry(url, {
            name: 'msgflo',
            signal: io.signal,
            onRetry: (err, inMs) => io.stderr.write(`${options.command}: ${reasonOf(err)}; retrying in ${inMs} ms\n`),
          })
        : connectTransport(url, { name: 'msgflo' }),
    cwd: io.cwd,
    ...(options.library ? { libraryFile: options.library } : {}),
    launch: options.launch && { env: io.env, stdout: io.stdout, stderr: io.stderr, forward: options.forward },
    discover: options.discover,
    onEvent: (e) => printEvent(e, io, options.command),
  });
  if (options.runtimeManaged) return { network, graph };
  try {
    await network.run(graph, { only: options.only, ignore: options.ignore, strict: options.strictComponents });
  } catch (err) {
    await network.stop();
    throw err;
  }
  return { network, graph };
}

/** Resolve when the command's signal aborts (SIGINT/SIGTERM). */
export function untilSignalled(io: CliIO): Promise<void> {
  if (io.signal.aborted) return Promise.resolve();
  return new Promise((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
}
