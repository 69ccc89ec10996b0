import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { graph as fbpGraph } from 'fbp-graph';
import { graphToJson, locateJsonError, parseFbp, parseJsonGraph } from '../../src/graph/index.js';
import type { Graph } from '../../src/graph/index.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'graphs');
const pipeline = (): Graph => parseFbp(readFileSync(path.join(fixtures, 'pipeline.fbp'), 'utf8'));

describe('graphToJson', () => {
  it('round-trips through parseJsonGraph, IIPs and exported ports included (msgflo#126)', () => {
    const g = pipeline();
    const json = graphToJson(g);
    assert.equal(json.connections!.filter((c) => 'data' in c).length, 2);
    assert.deepEqual(json.inports, { jobs: { process: 'source', port: 'in' } });
    assert.deepEqual(json.outports, { stored: { process: 'store', port: 'out' } });
    assert.deepEqual(parseJsonGraph(json), g);
    // and through text
    assert.deepEqual(parseJsonGraph(JSON.stringify(json, null, 2)), g);
  });

  it('writes the fbp-graph format: name in properties, index only when set, metadata only when set', () => {
    const json = graphToJson(pipeline());
    assert.deepEqual(json.properties, { name: 'pipeline', environment: { type: 'msgflo' } });
    assert.equal(json.caseSensitive, false);
    assert.deepEqual(json.processes!.source, { component: 'Repeat', metadata: { x: 10, y: 20 } });
    assert.deepEqual(json.connections![0], { src: { process: 'source', port: 'out' }, tgt: { process: 'jobs', port: 'in' } });
    assert.deepEqual(json.connections![6], {
      src: { process: 'worker', port: 'out', index: 1 },
      tgt: { process: 'audit', port: 'in', index: 0 },
    });
  });

  it('does not share objects with the graph', () => {
    const g = pipeline();
    const json = graphToJson(g);
    (json.connections![8]!.data as { limit: number }).limit = 99;
    json.processes!.source!.metadata!.x = 0;
    assert.deepEqual(g.iips[1]!.data, { limit: 5, tags: ['a b'] });
    assert.equal(g.nodes[0]!.metadata.x, 10);
  });

  it('marks the graph caseSensitive when a port has upper-case letters, so fbp-graph keeps them', async () => {
    const g = parseJsonGraph({
      processes: { a: { component: 'A' }, b: { component: 'B' } },
      connections: [{ src: { process: 'a', port: 'OUT' }, tgt: { process: 'b', port: 'IN' } }],
    });
    const json = graphToJson(g);
    assert.equal(json.caseSensitive, true);
    const loaded = await fbpGraph.loadJSON(json);
    assert.equal(loaded.edges[0]!.from.port, 'OUT');
  });

  it('is loaded by fbp-graph (Flowhub, noflo) and comes back unchanged', async () => {
    const g = pipeline();
    const loaded = await fbpGraph.loadJSON(graphToJson(g));
    assert.equal(loaded.nodes.length, 8);
    assert.equal(loaded.initializers.length, 2);
    assert.deepEqual(parseJsonGraph(loaded.toJSON()), g);
  });
});

describe('locateJsonError', () => {
  it('returns undefined for valid JSON and the position of the first error otherwise', () => {
    assert.equal(locateJsonError('{"a": [1, 2.5e3, true, null, "x\\n"]}'), undefined);
    assert.deepEqual(locateJsonError('{"a": }'), { offset: 6, line: 1, column: 7, detail: "unexpected '}', expected a value" });
    assert.equal(locateJsonError('[1,2,]')!.column, 6);
    assert.equal(locateJsonError('{"a":1}x')!.detail, "unexpected 'x', expected end of input");
    assert.deepEqual(locateJsonError('{\r\n"a" 1}'), { offset: 7, line: 2, column: 5, detail: "unexpected '1', expected ':'" });
  });

  it('agrees with JSON.parse on what is valid', () => {
    const pieces = ['{', '}', '[', ']', ',', ':', '"a"', '1', '-', '.', 'e', 'true', 'null', ' ', '\n', '"', '\\', '0'];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let k = 0; k < 20000; k++) {
      let s = '';
      for (let j = rand(9); j > 0; j--) s += pieces[rand(pieces.length)];
      let valid = true;
      try {
        JSON.parse(s);
      } catch {
        valid = false;
      }
      assert.equal(locateJsonError(s) === undefined, valid, JSON.stringify(s));
    }
  });

  it('does not overflow on deep nesting', () => {
    assert.equal(locateJsonError('['.repeat(200000))!.detail, 'unexpected end of input, expected a value');
  });
});
