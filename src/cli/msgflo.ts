import { listOption, parseCli, reportError } from './common.js';
import { type CliIO, EXIT } from './io.js';
import { startNetwork, untilSignalled, type RunningNetwork } from './network.js';

const USAGE = `Usage: msgflo [options]

The msgflo-ts coordinator: discovers participants on the broker (and expires silent ones), starts the
participants GRAPH needs, and keeps the broker's bindings and IIPs converged to GRAPH.

Options:
  --graph FILE       graph to run (.fbp or .json)
  --broker URL       broker: amqp://, amqps://, mqtt://, mqtts://, ws:// (default: MSGFLO_BROKER; else an
                     embedded MQTT broker on 127.0.0.1 and a free port, handed to the participants)
  --library FILE     component library (default: package.json, key "msgflo")
  --ignore a,b       roles not to start (external participants)
  --forward LIST     child output to forward: stdout,stderr (default both; '' for none)
  -h, --help         show this help

Stop with Ctrl-C (SIGINT) or SIGTERM: participants it started are stopped; bindings stay on the broker.

Example:
  msgflo --graph graphs/demo.fbp
  msgflo --graph graphs/pipeline.fbp --broker amqp://guest:guest@localhost`;

interface Values {
  graph?: string;
  broker?: string;
  library?: string;
  ignore?: string[];
  forward?: string;
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
  const forward = listOption(v.forward ?? 'stdout,stderr');
  let network: RunningNetwork | undefined;
  try {
    network = await startNetwork(
      {
        graphFile: v.graph,
        broker: v.broker,
        library: v.library,
        launch: true,
        strictComponents: false,
        only: [],
        ignore: listOption(v.ignore),
        forward: { stdout: forward.includes('stdout'), stderr: forward.includes('stderr') },
        discover: true,
        retryConnect: true,
        command: 'msgflo',
      },
      io,
    );
    io.stdout.write(`msgflo running${v.graph ? ` ${v.graph}` : ''} on ${network.transport.url}; stop with Ctrl-C\n`);
    await untilSignalled(io);
    io.stdout.write('msgflo: stopping\n');
    await network.stop();
    return EXIT.OK;
  } catch (err) {
    await network?.stop();
    if (io.signal.aborted) return EXIT.OK;
    return reportError(err, io, 'msgflo');
  }
}
