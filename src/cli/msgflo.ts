import { randomBytes, randomUUID } from 'node:crypto';
import type { Network } from '../coordinator/network.js';
import { UsageError, maskUrl } from '../errors.js';
import { FbpRuntime } from '../runtime/runtime.js';
import { DEFAULT_RUNTIME_PORT, RuntimeServer, flowhubUrl } from '../runtime/server.js';
import { loadSettings, settingsEnv } from '../settings.js';
import { listOption, parseCli, reportError } from './common.js';
import { type CliIO, EXIT } from './io.js';
import { startCliNetwork, untilSignalled } from './network.js';

const USAGE = `Usage: msgflo [options]

The msgflo-ts coordinator: discovers participants on the broker (and expires silent ones), starts the
participants GRAPH needs, and keeps the broker's bindings and IIPs converged to GRAPH. It is also an FBP
runtime: Flowhub and fbp-spec connect over WebSocket to build, run, watch and test the network.

Options:
  --graph FILE       graph to run (.fbp or .json); started at once
  --broker URL       broker: amqp://, amqps://, mqtt://, mqtts://, ws:// (default: MSGFLO_BROKER; else an
                     embedded MQTT broker on 127.0.0.1 and a free port, handed to the participants)
  --library FILE     component library (default: package.json, key "msgflo")
  --ignore a,b       roles not to start (external participants)
  --forward LIST     child output to forward: stdout,stderr (default both; '' for none)

FBP runtime protocol (WebSocket, sub-protocol noflo):
  --port N           port (default ${DEFAULT_RUNTIME_PORT}, or a free one when that is taken; 0: any free port)
  --host HOST        address to bind (default 127.0.0.1; 0.0.0.0 for every interface)
  --secret S         secret clients must send (default: MSGFLO_RUNTIME_SECRET; else a random one, printed in
                     the Flowhub URL)
  --runtime-id ID    runtime id, a UUID (default: MSGFLO_RUNTIME_ID; else a random one)
  --ide URL          IDE of the printed live URL (default https://app.flowhub.io)
  --role-prefix P    prefix of every role the runtime's graphs use (node a runs as role Pa), so that several
                     runtimes can share a broker
  -h, --help         show this help

Stop with Ctrl-C (SIGINT) or SIGTERM: participants it started are stopped; bindings stay on the broker.

Example:
  msgflo --graph graphs/demo.fbp
  msgflo --graph graphs/pipeline.fbp --broker amqp://guest:guest@localhost
  msgflo --port 3569 --secret s3cret          # then open the printed URL in Flowhub`;

interface Values {
  graph?: string;
  broker?: string;
  library?: string;
  ignore?: string[];
  forward?: string;
  port?: string;
  host?: string;
  secret?: string;
  'runtime-id'?: string;
  ide?: string;
  'role-prefix'?: string;
}

const ROLE_PREFIX = /^[^\s+#/]*$/;

function ignoreBrokenPipe(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
}

function portOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (value.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a port number 0-65535 (0: any free port), got '${value}'`, 'msgflo');
  }
  return port;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<Values>(
    argv,
    {
      graph: { type: 'string' },
      broker: { type: 'string' },
      library: { type: 'string' },
      ignore: { type: 'string', multiple: true },
      forward: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      secret: { type: 'string' },
      'runtime-id': { type: 'string' },
      ide: { type: 'string' },
      'role-prefix': { type: 'string' },
    },
    USAGE,
    io,
    'msgflo',
  );
  if (typeof parsed === 'number') return parsed;
  if (parsed.positionals.length) {
    io.stderr.write(`msgflo: unexpected argument '${parsed.positionals[0]}' (the graph is given with --graph)\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const v = parsed.values;
  // A reader that goes away (fbp-test closes our stdout before it stops us) must not crash the coordinator: its
  // participants would be left without their graceful stop.
  for (const stream of [process.stdout, process.stderr]) {
    if (io.stdout === stream || io.stderr === stream) stream.on('error', ignoreBrokenPipe);
  }
  const forward = listOption(v.forward ?? 'stdout,stderr');
  let network: Network | undefined;
  let server: RuntimeServer | undefined;
  let runtime: FbpRuntime | undefined;
  const stopAll = async () => {
    // Every child gets its SIGTERM first, whatever happens next.
    const children = network?.stopProcesses();
    await server?.close().catch(() => {});
    await runtime?.close().catch(() => {});
    await children?.catch(() => {});
    await network?.stop();
  };
  try {
    const settings = loadSettings(io.env, { broker: v.broker, runtimeSecret: v.secret, runtimeId: v['runtime-id'] });
    const port = portOption(v.port);
    const rolePrefix = v['role-prefix'] ?? '';
    if (!ROLE_PREFIX.test(rolePrefix)) throw new UsageError(`--role-prefix must not contain whitespace, '+', '#' or '/', got '${rolePrefix}'`, 'msgflo');
    const secret = settings.runtimeSecret ?? randomBytes(18).toString('base64url');
    const id = settings.runtimeId ?? randomUUID();

    // Listen first: clients may connect at once (their frames wait until the network is up).
    server = new RuntimeServer();
    const address = await server.listen({ host: v.host ?? '127.0.0.1', port: port ?? DEFAULT_RUNTIME_PORT, fallbackToFreePort: port === undefined });
    if (port === undefined && address.port !== DEFAULT_RUNTIME_PORT) {
      io.stdout.write(`msgflo: port ${DEFAULT_RUNTIME_PORT} is taken; the FBP runtime uses port ${address.port}\n`);
    }
    const live = flowhubUrl({ address: address.url, id, secret, ...(v.ide ? { ide: v.ide } : {}) });
    server.homepage = `msgflo-ts FBP runtime on ${address.url} (sub-protocol noflo). Open it in Flowhub: ${flowhubUrl({ address: address.url, id, ...(v.ide ? { ide: v.ide } : {}) })} (with the secret)\n`;
    io.stdout.write(`msgflo: FBP runtime on ${address.url}\nOpen in Flowhub: ${live}\n`);

    const started = await startCliNetwork(
      {
        graphFile: v.graph,
        broker: settings.broker,
        library: v.library,
        launch: true,
        strictComponents: false,
        only: [],
        ignore: listOption(v.ignore),
        forward: { stdout: forward.includes('stdout'), stderr: forward.includes('stderr') },
        discover: true,
        retryConnect: true,
        command: 'msgflo',
        runtimeManaged: true,
      },
      // The participants it starts stop by themselves should it be killed before it can stop them.
      { ...io, env: { ...io.env, ...settingsEnv({ parentPid: process.pid }) } },
    );
    network = started.network;
    runtime = new FbpRuntime({
      network,
      secret,
      id,
      label: `msgflo-ts on ${maskUrl(network.broker)}`,
      rolePrefix,
      ignore: listOption(v.ignore),
      address: address.url,
    });
    if (started.graph) runtime.loadGraph(started.graph, { start: true });
    server.attach(runtime);
    io.stdout.write(`msgflo running${v.graph ? ` ${v.graph}` : ''} on ${network.transport.url}; stop with Ctrl-C\n`);
    await untilSignalled(io);
    io.stdout.write('msgflo: stopping\n');
    await stopAll();
    return EXIT.OK;
  } catch (err) {
    await stopAll().catch(() => {});
    if (io.signal.aborted) return EXIT.OK;
    return reportError(err, io, 'msgflo');
  }
}
