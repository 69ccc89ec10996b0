import path from 'node:path';
import { joinCommand } from '../coordinator/command.js';
import { loadLibrary } from '../coordinator/library.js';
import { iipsForRole, loadGraph, participantNodes } from '../graph/index.js';
import { loadSettings } from '../settings.js';
import { listOption, parseCli, reportError } from './common.js';
import { type CliIO, EXIT } from './io.js';

const COMMAND = 'msgflo-procfile';

const USAGE = `Usage: ${COMMAND} GRAPH [--library FILE] [--componentdir DIR] [--ignore ROLE]... [--include LINE]...

Print a Heroku/foreman Procfile for GRAPH (.fbp or .json): a line "role: command" for every
participant node (msgflo/RoundRobin and msgflo/PubSub nodes are broker routing, not processes).
Commands come from the component library and are quoted for the shell; #IIPS gets the node's IIPs.

Options:
  --library FILE      component library (default: package.json, config at top level or under "msgflo")
  --componentdir DIR  directory of participant files (default: participants; --components is the same)
  --ignore ROLE       leave out node ROLE (repeatable, or comma-separated)
  --include LINE      append LINE as it is (repeatable)
  -h, --help          show this help

Example:
  ${COMMAND} graphs/main.fbp --ignore api --include "web: npm start" > Procfile`;

interface Values {
  library?: string;
  componentdir?: string;
  components?: string;
  ignore?: string[];
  include?: string[];
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCli<Values>(
    argv,
    {
      library: { type: 'string' },
      componentdir: { type: 'string' },
      components: { type: 'string' },
      ignore: { type: 'string', multiple: true },
      include: { type: 'string', multiple: true },
    },
    USAGE,
    io,
    COMMAND,
  );
  if (typeof parsed === 'number') return parsed;
  const [graphFile, ...extra] = parsed.positionals;
  if (!graphFile || extra.length) {
    io.stderr.write(`${COMMAND}: give exactly one GRAPH file\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const { values } = parsed;
  if (values.componentdir !== undefined && values.components !== undefined && values.componentdir !== values.components) {
    io.stderr.write(`${COMMAND}: --componentdir and --components name the same option; give one\n\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const ignore = new Set(listOption(values.ignore));

  try {
    // It reads no setting, but checks them all at start as every command does.
    loadSettings(io.env);
    const graph = await loadGraph(path.resolve(io.cwd, graphFile));
    const componentDir = values.componentdir ?? values.components;
    const library = await loadLibrary({
      cwd: io.cwd,
      ...(values.library !== undefined ? { file: values.library } : {}),
      ...(componentDir !== undefined ? { componentDir } : {}),
    });
    const ids = new Set(graph.nodes.map((n) => n.id));
    for (const role of ignore) {
      if (!ids.has(role)) io.stderr.write(`${COMMAND}: warning: --ignore ${role}: the graph has no node '${role}'\n`);
    }
    const lines: string[] = [];
    for (const node of participantNodes(graph)) {
      if (ignore.has(node.id)) continue;
      const argv = library.commandFor(node.component, node.id, iipsForRole(graph, node.id));
      lines.push(`${node.id}: ${joinCommand(argv)}`);
    }
    lines.push(...(values.include ?? []));
    io.stdout.write(lines.length ? `${lines.join('\n')}\n` : '');
    return EXIT.OK;
  } catch (err) {
    return reportError(err, io, COMMAND);
  }
}
