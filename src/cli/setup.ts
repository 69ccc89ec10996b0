import type { Network } from '../coordinator/network.js';
import { describeBinding } from '../coordinator/network-events.js';
import { participantNodes } from '../graph/index.js';
import { loadSettings } from '../settings.js';
import { booleanOption, listOption, normalizeBooleanFlag, parseCli, reportError } from './common.js';
import { type CliIO, EXIT } from './io.js';
import { startCliNetwork, untilSignalled } from './network.js';

const USAGE = `Usage: msgflo-setup GRAPH [options]

Set up the bindings (and send the IIPs) of GRAPH (.fbp or .json) on the broker, then exit — or keep running
with --forever / --participants.

Options:
  --broker URL          broker (default: MSGFLO_BROKER; else an embedded MQTT broker, which implies --forever)
  --participants        also start the participant processes the graph needs (implies --forever):
                        output is prefixed with the role, crashed ones are restarted with backoff, and all
                        are stopped when msgflo-setup stops
  --only a,b            start only these roles
  --ignore a,b          do not start these roles
  --library FILE        component library (default: package.json, key "msgflo")
  --forward LIST        child output to forward: stdout,stderr (default both; '' for none)
  --discover            wait until every role has announced itself and use the queue names it announced
                        (default: the <role>.<PORT> convention for roles not seen yet)
  --timeout S           seconds to wait with --discover (default 30)
  --forever[=BOOL]      keep running after setup (needed on MQTT for msgflo-era participants, whose
                        edges are forwarded by this process)
  -h, --help            show this help

Exit codes: 0 ok, 1 failed (graph, broker, timeout…), 2 usage.

Examples:
  msgflo-setup graphs/pipeline.fbp --broker amqp://localhost
  msgflo-setup graphs/pipeline.fbp --participants --broker mqtt://localhost`;

interface Values {
  broker?: string;
  participants?: boolean;
  only?: string[];
  ignore?: string[];
  library?: string;
  forward?: string;
  discover?: boolean;
  timeout?: string;
  forever?: string | boolean;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  // `--forever`, `--forever=false`, `--forever false` and `--no-forever` all work (msgflo ignored =false).
  const args = normalizeBooleanFlag(argv, 'forever');
  const parsed = parseCli<Values>(
    args,
    {
      broker: { type: 'string' },
      participants: { type: 'boolean' },
      only: { type: 'string', multiple: true },
      ignore: { type: 'string', multiple: true },
      library: { type: 'string' },
      forward: { type: 'string' },
      discover: { type: 'boolean' },
      timeout: { type: 'string' },
      forever: { type: 'string' },
    },
    USAGE,
    io,
    'msgflo-setup',
  );
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  if (parsed.positionals.length !== 1) {
    io.stderr.write(`msgflo-setup: give exactly one GRAPH file\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const timeout = v.timeout === undefined ? 30 : Number(v.timeout);
  if (!(timeout > 0)) {
    io.stderr.write(`msgflo-setup: --timeout must be a number of seconds > 0\n`);
    return EXIT.USAGE;
  }
  const forward = listOption(v.forward ?? 'stdout,stderr');
  const launch = !!v.participants;
  let network: Network | undefined;
  try {
    const settings = loadSettings(io.env, { broker: v.broker });
    let forever = booleanOption(typeof v.forever === 'string' ? v.forever : undefined, '--forever', false, 'msgflo-setup') || launch;
    const started = await startCliNetwork(
      {
        graphFile: parsed.positionals[0],
        broker: settings.broker,
        library: v.library,
        launch,
        strictComponents: true,
        only: listOption(v.only),
        ignore: listOption(v.ignore),
        forward: { stdout: forward.includes('stdout'), stderr: forward.includes('stderr') },
        discover: !!v.discover,
        retryConnect: forever,
        command: 'msgflo-setup',
      },
      io,
    );
    network = started.network;
    if (network.embedded) forever = true;
    const roles = participantNodes(started.graph!).map((n) => n.id);
    if (v.discover) {
      await network.coordinator.waitForParticipants(roles, { timeoutMs: timeout * 1000, signal: io.signal });
    }
    await network.coordinator.reconcile();
    const present = roles.filter((r) => network!.coordinator.registry.byRole(r).length > 0);
    io.stdout.write(`Set up participants [${present.map((r) => `'${r}'`).join(', ')}]\nSet up bindings:\n`);
    for (const b of network.coordinator.bindings()) for (const line of describeBinding(b)) io.stdout.write(` ${line}\n`);
    const bridged = network.coordinator.bindings().filter((b) => b.bridge);
    if (!forever) {
      const pending = network.coordinator.pendingIips();
      if (pending.length) {
        io.stderr.write(
          `msgflo-setup: warning: IIPs not sent, their participants are not running and MQTT keeps nothing for them: ${pending.map((t) => `${t.node}.${t.port}`).join(', ')}; use --discover or --participants\n`,
        );
      }
      if (bridged.length) {
        io.stderr.write(
          `msgflo-setup: warning: ${bridged.length} edge(s) lead to msgflo-era MQTT participants, which only receive while a coordinator forwards for them: use --forever or run msgflo\n`,
        );
      }
      await network.stop();
      return EXIT.OK;
    }
    io.stdout.write(`--forever: keeping the network running; stop with Ctrl-C\n`);
    await untilSignalled(io);
    await network.stop();
    return EXIT.OK;
  } catch (err) {
    await network?.stop();
    if (io.signal.aborted) return EXIT.OK;
    return reportError(err, io, 'msgflo-setup');
  }
}
