import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphInvalidError, GraphParseError, ErrorCodes } from '../../src/errors.js';
import { parseFbp, parseJsonGraph } from '../../src/graph/index.js';
import type { Graph } from '../../src/graph/index.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'graphs');
const fixture = (name: string) => readFileSync(path.join(fixtures, name), 'utf8');

function withoutFile(g: Graph): Omit<Graph, 'file'> {
  const { file: _file, ...rest } = g;
  return rest;
}

describe('graph parsing', () => {
  describe('parseFbp', () => {
    const graph = parseFbp(fixture('pipeline.fbp'), 'pipeline.fbp');

    it('reads the name and runtime annotations into name and properties', () => {
      assert.equal(graph.name, 'pipeline');
      assert.deepEqual(graph.properties, { environment: { type: 'msgflo' } });
      assert.equal(graph.file, 'pipeline.fbp');
    });

    it('declares every node with its component and metadata, in order', () => {
      assert.deepEqual(
        graph.nodes.map((n) => [n.id, n.component]),
        [
          ['source', 'Repeat'],
          ['worker', 'Worker'],
          ['jobs', 'msgflo/RoundRobin'],
          ['failed', 'Print'],
          ['results', 'msgflo/PubSub'],
          ['store', 'Store'],
          ['log', 'Print'],
          ['audit', 'Print'],
        ],
      );
      assert.deepEqual(graph.nodes[0]!.metadata, { x: 10, y: 20 });
      assert.deepEqual(graph.nodes[1]!.metadata, { role: 'worker' });
      assert.deepEqual(graph.nodes[2]!.metadata, {});
    });

    it('lower-cases port names like msgflo (fbp default options) and keeps array indexes', () => {
      assert.deepEqual(graph.edges[0], { src: { node: 'source', port: 'out' }, tgt: { node: 'jobs', port: 'in' }, metadata: {} });
      assert.deepEqual(graph.edges.at(-1), {
        src: { node: 'worker', port: 'out', index: 1 },
        tgt: { node: 'audit', port: 'in', index: 0 },
        metadata: {},
      });
      assert.equal(graph.edges.length, 7);
    });

    it('keeps the RoundRobin deadletter edge and the PubSub fan-out', () => {
      const names = graph.edges.map((e) => `${e.src.node}.${e.src.port}->${e.tgt.node}.${e.tgt.port}`);
      assert.ok(names.includes('jobs.deadletter->failed.in'));
      assert.ok(names.includes('results.out->store.in'));
      assert.ok(names.includes('results.out->log.in'));
    });

    it('reads quoted IIPs as strings and JSON-literal IIPs as values', () => {
      assert.deepEqual(graph.iips, [
        { data: '{"jobs": 3}', tgt: { node: 'source', port: 'config' }, metadata: {} },
        { data: { limit: 5, tags: ['a b'] }, tgt: { node: 'worker', port: 'limit' }, metadata: {} },
      ]);
    });

    it('reads INPORT=/OUTPORT= as exported ports with lower-cased names (msgflo ignored them)', () => {
      assert.deepEqual(graph.inports, [{ public: 'jobs', node: 'source', port: 'in', metadata: {} }]);
      assert.deepEqual(graph.outports, [{ public: 'stored', node: 'store', port: 'out', metadata: {} }]);
    });

    it('trims the @name annotation', () => {
      assert.equal(parseFbp('# @name spaced  \na(A) OUT -> IN b(B)').name, 'spaced');
    });

    it('names a graph without @name after its file, else "main"', () => {
      assert.equal(parseFbp(fixture('two.fbp'), 'graphs/two.fbp').name, 'two');
      const g = parseFbp('a(A) OUT -> IN b(B)');
      assert.equal(g.name, 'main');
      assert.equal('file' in g, false);
    });

    it('accepts a byte-order mark and CRLF line ends', () => {
      const g = parseFbp('\uFEFFa(A) OUT -> IN b(B)\r\nb OUT -> IN c(C)\r\n');
      assert.equal(g.edges.length, 2);
    });

    it('reports a syntax error with the parser line and column', () => {
      assert.throws(
        () => parseFbp(fixture('malformed.fbp'), 'malformed.fbp'),
        (err: unknown) => {
          assert.ok(err instanceof GraphParseError);
          assert.equal(err.code, ErrorCodes.GRAPH_PARSE);
          // line 3 is "sink OUT -> -> IN other(Print)"; the second arrow starts at column 13
          assert.deepEqual(err.location, { file: 'malformed.fbp', line: 3, column: 13 });
          assert.match(err.message, /^malformed\.fbp:3:13: Expected .* but "-" found/);
          return true;
        },
      );
    });

    it('reports an unclosed component at the end of its line', () => {
      assert.throws(
        () => parseFbp('a(Repeat) OUT -> IN b(Print\n'),
        (err: unknown) => err instanceof GraphParseError && err.location.line === 1 && err.location.column === 28,
      );
    });
  });

  describe('parseJsonGraph', () => {
    it('gives the same model as the .fbp version of the graph', () => {
      const fromFbp = parseFbp(fixture('pipeline.fbp'), 'pipeline.fbp');
      const fromJson = parseJsonGraph(fixture('pipeline.json'), 'pipeline.json');
      assert.equal(fromJson.file, 'pipeline.json');
      assert.deepEqual(withoutFile(fromJson), withoutFile(fromFbp));
    });

    it('accepts an object as well as text', () => {
      const obj = JSON.parse(fixture('pipeline.json'));
      assert.deepEqual(parseJsonGraph(obj), parseJsonGraph(fixture('pipeline.json')));
    });

    it('keeps port names as written (msgflo did not lower-case JSON graphs)', () => {
      const g = parseJsonGraph({
        processes: { a: { component: 'A' }, b: { component: 'B' } },
        connections: [{ src: { process: 'a', port: 'OUT' }, tgt: { process: 'b', port: 'IN' } }],
      });
      assert.deepEqual(g.edges[0]!.src, { node: 'a', port: 'OUT' });
    });

    it('treats any data key as an IIP, including falsy data (msgflo 0.12 took 0/false for edges)', () => {
      const g = parseJsonGraph({
        processes: { a: { component: 'A' } },
        connections: [
          { data: 0, tgt: { process: 'a', port: 'in' } },
          { data: false, tgt: { process: 'a', port: 'in' } },
          { data: '', tgt: { process: 'a', port: 'in' } },
          { data: null, tgt: { process: 'a', port: 'in' } },
        ],
      });
      assert.deepEqual(
        g.iips.map((i) => i.data),
        [0, false, '', null],
      );
      assert.equal(g.edges.length, 0);
    });

    it('accepts the empty inports/outports arrays msgflo 0.12 wrote, and missing sections', () => {
      const g = parseJsonGraph({ properties: { name: 'x' }, processes: {}, connections: [], inports: [], outports: [] });
      assert.deepEqual(g, { name: 'x', properties: {}, nodes: [], edges: [], iips: [], inports: [], outports: [] });
      assert.equal(parseJsonGraph('{}', 'graphs/empty.json').name, 'empty');
    });

    it('keeps exported port and edge metadata', () => {
      const g = parseJsonGraph({
        processes: { a: { component: 'A' }, b: { component: 'B' } },
        connections: [{ src: { process: 'a', port: 'out' }, tgt: { process: 'b', port: 'in' }, metadata: { route: 1 } }],
        inports: { input: { process: 'a', port: 'in', metadata: { x: 1 } } },
      });
      assert.deepEqual(g.edges[0]!.metadata, { route: 1 });
      assert.deepEqual(g.inports, [{ public: 'input', node: 'a', port: 'in', metadata: { x: 1 } }]);
    });

    it('reports malformed JSON with line and column', () => {
      assert.throws(
        () => parseJsonGraph(fixture('malformed.json'), 'malformed.json'),
        (err: unknown) => {
          assert.ok(err instanceof GraphParseError);
          // line 6 is '  "connections": []' right after the object missing its comma
          assert.deepEqual(err.location, { file: 'malformed.json', line: 6, column: 3 });
          assert.match(err.message, /^malformed\.json:6:3: invalid JSON: unexpected '"', expected ',' or '\}'/);
          return true;
        },
      );
    });

    it('reports truncated JSON at its end, and locates errors after a byte-order mark', () => {
      assert.throws(
        () => parseJsonGraph('{\n  "processes": {', 'cut.json'),
        (err: unknown) => err instanceof GraphParseError && err.location.line === 2 && err.location.column === 17,
      );
      assert.throws(
        () => parseJsonGraph('\uFEFF{"a": }'),
        (err: unknown) => err instanceof GraphParseError && err.location.line === 1 && err.location.column === 7,
      );
    });

    it('lists every shape problem of a JSON value that is not a graph', () => {
      assert.throws(
        () =>
          parseJsonGraph(
            {
              processes: { a: { component: 3 }, b: 'B' },
              connections: [{ src: { process: 'a' }, tgt: { process: 'b', port: 'in' } }, { tgt: { process: 'a', port: 'in' } }, 'x'],
              inports: { input: { process: 'a' } },
            },
            'shape.json',
          ),
        (err: unknown) => {
          assert.ok(err instanceof GraphInvalidError);
          assert.deepEqual(err.problems, [
            'processes.a.component must be a string',
            'processes.b must be an object {component, metadata}',
            'connections[0].src.port must be a non-empty string',
            'connections[1].src must be an object {process, port}',
            'connections[2] must be an object {src, tgt} or {data, tgt}',
            'inports.input.port must be a non-empty string',
          ]);
          return true;
        },
      );
      assert.throws(() => parseJsonGraph('[]'), GraphInvalidError);
    });
  });
});
