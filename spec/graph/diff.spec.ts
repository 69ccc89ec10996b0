import assert from 'node:assert/strict';
import { canonicalJson, diffGraphs, isEmptyDiff, parseFbp } from '../../src/graph/index.js';
import type { Graph } from '../../src/graph/index.js';

const base = `# @name g
INPORT=a.IN:INPUT
OUTPORT=c.OUT:OUTPUT
'one' -> CONFIG a(Repeat:x=1)
a OUT -> IN b(Print) OUT -> IN c(Store)
`;

const clone = (g: Graph): Graph => structuredClone(g);

describe('diffGraphs', () => {
  it('finds nothing between equal graphs (parsed twice)', () => {
    const d = diffGraphs(parseFbp(base), parseFbp(base));
    assert.ok(isEmptyDiff(d));
    assert.deepEqual(d.nodes, { added: [], removed: [], changed: [] });
  });

  it('reports nodes added, removed and changed (component vs metadata)', () => {
    const a = parseFbp(base);
    const b = clone(a);
    b.nodes = b.nodes.filter((n) => n.id !== 'b');
    b.nodes.push({ id: 'd', component: 'Print', metadata: {} });
    b.nodes[0]!.metadata = { x: 2 };
    b.nodes[1]!.component = 'Archive';
    const d = diffGraphs(a, b);
    assert.deepEqual(
      d.nodes.added.map((n) => n.id),
      ['d'],
    );
    assert.deepEqual(
      d.nodes.removed.map((n) => n.id),
      ['b'],
    );
    assert.deepEqual(
      d.nodes.changed.map((c) => [c.id, c.component, c.metadata]),
      [
        ['a', false, true],
        ['c', true, false],
      ],
    );
    assert.equal(d.nodes.changed[1]!.before.component, 'Store');
    assert.equal(d.nodes.changed[1]!.after.component, 'Archive');
    assert.ok(!isEmptyDiff(d));
  });

  it('reports edges added and removed, and metadata-only edge changes', () => {
    const a = parseFbp(base);
    const b = parseFbp(`${base}a OUT -> IN c\n`);
    b.edges[0]!.metadata = { route: 3 };
    b.edges.splice(1, 1); // b OUT -> IN c
    const d = diffGraphs(a, b);
    assert.deepEqual(d.edges.added, [{ src: { node: 'a', port: 'out' }, tgt: { node: 'c', port: 'in' }, metadata: {} }]);
    assert.deepEqual(d.edges.removed, [{ src: { node: 'b', port: 'out' }, tgt: { node: 'c', port: 'in' }, metadata: {} }]);
    assert.equal(d.edges.changed.length, 1);
    assert.deepEqual(d.edges.changed[0]!.after.metadata, { route: 3 });
  });

  it('compares edge ports case-insensitively and array indexes exactly', () => {
    const a = parseFbp(base);
    const b = clone(a);
    b.edges[0]!.src.port = 'OUT';
    assert.ok(isEmptyDiff(diffGraphs(a, b)));
    b.edges[0]!.src.index = 1;
    const d = diffGraphs(a, b);
    assert.equal(d.edges.added.length, 1);
    assert.equal(d.edges.removed.length, 1);
  });

  it('reports IIPs by target and deep data, counting duplicates', () => {
    const a = parseFbp(base);
    const b = clone(a);
    b.iips.push({ data: { x: [1, { y: 2 }], z: 1 }, tgt: { node: 'b', port: 'in' }, metadata: {} });
    b.iips.push({ data: 'one', tgt: { node: 'a', port: 'config' }, metadata: {} });
    let d = diffGraphs(a, b);
    assert.equal(d.iips.added.length, 2);
    assert.deepEqual(d.iips.removed, []);

    const c = clone(b);
    c.iips[1]!.data = { z: 1, x: [1, { y: 2 }] };
    d = diffGraphs(b, c);
    assert.ok(isEmptyDiff(d), 'same data with other key order is the same IIP');

    c.iips[0]!.data = 'two';
    d = diffGraphs(b, c);
    assert.deepEqual(
      d.iips.added.map((i) => i.data),
      ['two'],
    );
    assert.deepEqual(
      d.iips.removed.map((i) => i.data),
      ['one'],
    );
  });

  it('reports exported ports added, removed and re-targeted', () => {
    const a = parseFbp(base);
    const b = parseFbp(base.replace('INPORT=a.IN:INPUT', 'INPORT=b.IN:INPUT').replace('OUTPORT=c.OUT:OUTPUT\n', ''));
    b.outports.push({ public: 'result', node: 'b', port: 'out', metadata: {} });
    const d = diffGraphs(a, b);
    assert.deepEqual(d.inports.removed, [{ public: 'input', node: 'a', port: 'in', metadata: {} }]);
    assert.deepEqual(d.inports.added, [{ public: 'input', node: 'b', port: 'in', metadata: {} }]);
    assert.deepEqual(
      d.outports.removed.map((p) => p.public),
      ['output'],
    );
    assert.deepEqual(
      d.outports.added.map((p) => p.public),
      ['result'],
    );
  });

  it('reports a change of name or properties', () => {
    const a = parseFbp(base);
    const b = clone(a);
    b.properties = { environment: { type: 'msgflo' } };
    assert.equal(diffGraphs(a, b).properties, true);
    const c = clone(a);
    c.name = 'other';
    assert.equal(diffGraphs(a, c).properties, true);
    assert.equal(isEmptyDiff(diffGraphs(a, c)), false);
  });
});

describe('canonicalJson', () => {
  it('sorts keys and drops undefined properties, like JSON', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 1, c: undefined }] }), '{"a":[{"d":1}],"b":1}');
    assert.notEqual(canonicalJson('1'), canonicalJson(1));
    assert.equal(canonicalJson(undefined), 'undefined');
  });
});
