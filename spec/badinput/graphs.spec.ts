/**
 * Bad input: mutated graphs. Thousands of seeded mutations of real .fbp and fbp-graph JSON files go through the
 * graph loader in-process (parse, validate, derive bindings), and a sample through the real `msgflo-setup` process.
 * Each is either a graph or refused with MSGFLO_ERR_GRAPH_PARSE (with file:line:column) / MSGFLO_ERR_GRAPH_INVALID:
 * never another exception, never a crash.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ErrorCodes, MsgfloError } from '../../src/errors.js';
import { graphBindings, graphToJson, parseFbp, parseGraph, participantNodes, validateGraph } from '../../src/graph/index.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { Rng, SEED, announceSeed, mutateText, tally } from './generate.js';

const FBP_COUNT = 1500;
const JSON_COUNT = 1000;
const CLI_SAMPLE = 50;
const CLI_CONCURRENCY = 4;

const fbpFiles = [
  'graphs/demo.fbp',
  'graphs/fanout.fbp',
  'graphs/pipeline.fbp',
  'graphs/roundrobin.fbp',
  'spec/fixtures/graphs/pipeline.fbp',
  'spec/fixtures/graphs/two.fbp',
  'spec/fixtures/library/graphs/app.fbp',
];

/** One graph using most of the language: annotations, exports, IIPs, metadata, array ports, routing nodes. */
const RICH = `# @name Rich
# @runtime msgflo
INPORT=first.IN:IN
OUTPORT=last.OUT:OUT
'{"a":1}' -> IN first(Repeat:debug=true)
'42' -> INTERVAL tick(Ticker)
tick OUT -> IN first
first OUT -> IN split(msgflo/RoundRobin)
split OUT -> IN work(Uppercase)
split DEADLETTER -> IN failed(Print)
work OUT -> IN fan(msgflo/PubSub)
fan OUT -> IN last(Print)
fan OUT -> IN[1] other(Print)
`;

const fbpCorpus = [...fbpFiles.map((f) => ({ name: path.basename(f), text: readFileSync(path.join(REPO_ROOT, f), 'utf8') })), { name: 'rich.fbp', text: RICH }];
const jsonCorpus = [
  { name: 'pipeline.json', text: readFileSync(path.join(REPO_ROOT, 'spec/fixtures/graphs/pipeline.json'), 'utf8') },
  ...fbpCorpus.map((g) => ({ name: g.name.replace(/\.fbp$/, '.json'), text: JSON.stringify(graphToJson(parseFbp(g.text, g.name)), null, 2) })),
];

type Outcome = 'graph' | typeof ErrorCodes.GRAPH_PARSE | typeof ErrorCodes.GRAPH_INVALID;

/** Load `text` as the CLI would (parse, validate, bindings); throws an assertion error on any uncoded failure. */
function load(text: string, file: string): Outcome {
  try {
    const graph = parseGraph(text, file);
    validateGraph(graph);
    graphBindings(graph);
    participantNodes(graph);
    return 'graph';
  } catch (err) {
    if (!(err instanceof MsgfloError)) {
      assert.fail(`${file}: ${(err as Error)?.stack ?? String(err)}\n--- input (JSON-quoted):\n${JSON.stringify(text)}`);
    }
    if (err.code === ErrorCodes.GRAPH_PARSE) {
      assert.match(err.message, /:\d+:\d+: /, `${file}: a parse error without line:column: ${err.message}`);
      return err.code;
    }
    if (err.code === ErrorCodes.GRAPH_INVALID) return err.code;
    return assert.fail(`${file}: refused with ${err.code}, expected GRAPH_PARSE or GRAPH_INVALID: ${err.message}\n--- input:\n${JSON.stringify(text)}`);
  }
}

describe('bad input: mutated graphs', function () {
  this.timeout(60_000);
  before(() => announceSeed());

  it(`${FBP_COUNT} mutated .fbp files: each a graph or refused with GRAPH_PARSE (line:column) / GRAPH_INVALID`, () => {
    const rng = new Rng(SEED, 'fbp');
    const outcomes: Outcome[] = [];
    for (let i = 0; i < FBP_COUNT; i++) {
      const base = rng.pick(fbpCorpus);
      outcomes.push(load(mutateText(rng, base.text), `m${i}-${base.name}`));
    }
    const counts = tally(outcomes);
    process.stdout.write(`      .fbp outcomes: ${JSON.stringify(counts)}\n`);
    // The mutations must really break graphs, not only shuffle blanks.
    assert.ok((counts[ErrorCodes.GRAPH_PARSE] ?? 0) >= FBP_COUNT / 4, `too few parse errors: ${JSON.stringify(counts)}`);
  });

  it(`${JSON_COUNT} mutated fbp-graph JSON files: each a graph or refused with GRAPH_PARSE / GRAPH_INVALID`, () => {
    const rng = new Rng(SEED, 'json');
    const outcomes: Outcome[] = [];
    for (let i = 0; i < JSON_COUNT; i++) {
      const base = rng.pick(jsonCorpus);
      outcomes.push(load(mutateText(rng, base.text), `m${i}-${base.name}`));
    }
    const counts = tally(outcomes);
    process.stdout.write(`      JSON outcomes: ${JSON.stringify(counts)}\n`);
    assert.ok((counts[ErrorCodes.GRAPH_PARSE] ?? 0) >= JSON_COUNT / 4, `too few parse errors: ${JSON.stringify(counts)}`);
  });

  it(`${CLI_SAMPLE} mutated graphs through the real msgflo-setup process: exit 0, or exit 1 with the graph's coded error`, async () => {
    const rng = new Rng(SEED, 'cli');
    const dir = mkdtempSync(path.join(tmpdir(), 'msgflo-badinput-graphs-'));
    const cases: Array<{ file: string; expected: Outcome }> = [];
    // Refusals first: every sampled mutation is one the loader refuses, half .fbp and half JSON, so the CLI's
    // error path is what gets exercised; a few valid mutations check that those still go through.
    for (let i = 0; cases.length < CLI_SAMPLE; i++) {
      const json = i % 2 === 1;
      const base = rng.pick(json ? jsonCorpus : fbpCorpus);
      const text = mutateText(rng, base.text);
      const file = path.join(dir, `m${i}-${base.name}`);
      const expected = load(text, file);
      if (expected === 'graph' && cases.filter((c) => c.expected === 'graph').length >= CLI_SAMPLE / 10) continue;
      writeFileSync(file, text);
      cases.push({ file, expected });
    }
    const failures: string[] = [];
    const queue = [...cases];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        // direct:// keeps a valid graph's setup in this one process (no broker needed, nothing left behind).
        const r = await runCli('msgflo-setup', [c.file, '--broker', 'direct://badinput'], { timeoutMs: 20_000, env: { MSGFLO_BROKER: undefined } });
        const name = path.basename(c.file);
        if (c.expected === 'graph') {
          if (r.code !== 0) failures.push(`${name}: valid graph, exit ${r.code ?? r.signal}: ${r.stderr}`);
        } else if (r.code !== 1 || !r.stderr.includes(`${c.expected}:`) || /\n\s+at /.test(r.stderr)) {
          failures.push(`${name}: expected exit 1 with ${c.expected}, got ${r.code ?? r.signal}: ${r.stderr.slice(0, 800)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CLI_CONCURRENCY }, worker));
    process.stdout.write(`      CLI sample: ${JSON.stringify(tally(cases.map((c) => c.expected)))}\n`);
    assert.deepEqual(failures, [], `seed ${SEED}; inputs in ${dir}`);
  });
});
