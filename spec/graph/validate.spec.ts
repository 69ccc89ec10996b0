import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, GraphInvalidError, GraphNotFoundError, GraphParseError } from '../../src/errors.js';
import { graphProblems, loadGraph, parseFbp, parseJsonGraph, validateGraph } from '../../src/graph/index.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'graphs');

describe('graph validation and loading', () => {
  describe('validateGraph', () => {
    it('accepts a valid graph', async () => {
      validateGraph(await loadGraph(path.join(fixtures, 'pipeline.fbp')));
    });

    it('lists every problem of an invalid graph at once', () => {
      const g = parseFbp(
        ['INPORT=ghost.IN:INPUT', 'a(Repeat) OUT -> IN b()', 'a OUT -> IN missing', "'hello' -> IN nowhere"].join('\n'),
        'invalid.fbp',
      );
      assert.throws(
        () => validateGraph(g),
        (err: unknown) => {
          assert.ok(err instanceof GraphInvalidError);
          assert.equal(err.code, ErrorCodes.GRAPH_INVALID);
          assert.deepEqual(err.problems, [
            "node 'b' has no component",
            "edge a.out -> missing.in names node 'missing', which the graph does not declare",
            'IIP "hello" -> nowhere.in names node \'nowhere\', which the graph does not declare',
            "exported inport 'input' names node 'ghost', which the graph does not declare",
          ]);
          assert.match(err.message, /^invalid\.fbp: invalid graph:\n {2}- node 'b' has no component/);
          return true;
        },
      );
    });

    it('reports duplicate ids, bad role names, duplicate exported names and routing-node misuse', () => {
      const g = parseJsonGraph({
        processes: {
          'a b': { component: 'A' },
          rr: { component: 'msgflo/RoundRobin' },
          ps: { component: 'msgflo/PubSub' },
          c: { component: 'C' },
        },
        connections: [
          { src: { process: 'rr', port: 'out' }, tgt: { process: 'ps', port: 'in' } },
        ],
        inports: { in: { process: 'rr', port: 'in' } },
      });
      g.nodes.push({ id: 'c', component: 'C2', metadata: {} });
      g.edges.push({ src: { node: 'c', port: 'out' }, tgt: { node: 'c', port: '' }, metadata: {} });
      g.outports.push({ public: 'OUT', node: 'c', port: 'out', metadata: {} }, { public: 'out', node: 'c', port: 'x', metadata: {} });
      assert.deepEqual(graphProblems(g), [
        "node id 'a b' contains whitespace, '+' or '#', which cannot be used in queue names",
        "node 'c' is declared more than once",
        'edge rr.out -> ps.in connects two routing nodes with a msgflo/RoundRobin; connect routing nodes to participants',
        'edge c.out -> c. has an empty port name',
        "exported inport 'in' is on routing node 'rr' (msgflo/RoundRobin); export a participant's port instead",
        "exported outport 'out' is declared more than once",
      ]);
    });

    it('allows PubSub chains and incomplete routing nodes', () => {
      const g = parseFbp('a(A) OUT -> IN p1(msgflo/PubSub) OUT -> IN p2(msgflo/PubSub) OUT -> IN b(B)\nr(msgflo/RoundRobin)');
      assert.deepEqual(graphProblems(g), []);
    });
  });

  describe('loadGraph', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'msgflo-graph-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('loads .fbp and .json by extension, to the same model', async () => {
      const a = await loadGraph(path.join(fixtures, 'pipeline.fbp'));
      const b = await loadGraph(path.join(fixtures, 'pipeline.json'));
      assert.equal(a.file, path.join(fixtures, 'pipeline.fbp'));
      assert.deepEqual({ ...a, file: '' }, { ...b, file: '' });
    });

    it('sniffs other extensions: JSON when it starts with {, else .fbp', async () => {
      writeFileSync(path.join(dir, 'g.graph'), 'a(A) OUT -> IN b(B)');
      writeFileSync(path.join(dir, 'h.graph'), '  {"processes": {"a": {"component": "A"}}}');
      assert.equal((await loadGraph(path.join(dir, 'g.graph'))).edges.length, 1);
      assert.equal((await loadGraph(path.join(dir, 'h.graph'))).nodes[0]!.id, 'a');
    });

    it('throws GraphNotFoundError for a missing file', async () => {
      await assert.rejects(loadGraph(path.join(dir, 'nope.fbp')), (err: unknown) => {
        assert.ok(err instanceof GraphNotFoundError);
        assert.equal(err.code, ErrorCodes.GRAPH_NOT_FOUND);
        assert.match(err.message, /nope\.fbp/);
        return true;
      });
    });

    it('throws GraphParseError with the file for a malformed graph', async () => {
      await assert.rejects(loadGraph(path.join(fixtures, 'malformed.fbp')), (err: unknown) => {
        return err instanceof GraphParseError && err.location.file === path.join(fixtures, 'malformed.fbp') && err.location.line === 3;
      });
      await assert.rejects(loadGraph(path.join(fixtures, 'malformed.json')), GraphParseError);
    });

    it('validates unless told not to', async () => {
      const file = path.join(fixtures, 'invalid.fbp');
      await assert.rejects(loadGraph(file), GraphInvalidError);
      const g = await loadGraph(file, { validate: false });
      assert.equal(g.nodes.length, 2);
    });
  });
});
