import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { graphBindings, iipsForRole, parseFbp, parseJsonGraph, participantNodes } from '../../src/graph/index.js';
import type { GraphBinding } from '../../src/graph/index.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'graphs');

/** msgflo-setup's PUBSUB/ROUNDROBIN lines, with ports as in the graph. */
function show(bindings: GraphBinding[]): string[] {
  const ep = (e: { node: string; port: string }) => `${e.node}.${e.port}`;
  return bindings.map((b) => `${b.type}: ${ep(b.src)} -> ${ep(b.tgt)}${b.deadletter ? ` dead: ${ep(b.deadletter)}` : ''}`);
}

describe('graph bindings', () => {
  it('maps the pipeline fixture: RoundRobin with deadletter, PubSub fan-out, plain edge', () => {
    const g = parseFbp(readFileSync(path.join(fixtures, 'pipeline.fbp'), 'utf8'));
    assert.deepEqual(show(graphBindings(g)), [
      'roundrobin: source.out -> worker.in dead: failed.in',
      'pubsub: worker.out -> store.in',
      'pubsub: worker.out -> log.in',
      'pubsub: worker.out -> audit.in',
    ]);
    assert.deepEqual(graphBindings(g)[0], {
      type: 'roundrobin',
      src: { node: 'source', port: 'out' },
      tgt: { node: 'worker', port: 'in' },
      deadletter: { node: 'failed', port: 'in' },
    });
  });

  it('gives the same bindings for the JSON version', () => {
    const fbp = parseFbp(readFileSync(path.join(fixtures, 'pipeline.fbp'), 'utf8'));
    const json = parseJsonGraph(readFileSync(path.join(fixtures, 'pipeline.json'), 'utf8'));
    assert.deepEqual(graphBindings(json), graphBindings(fbp));
  });

  it('makes every edge between participants a pubsub binding and ignores IIPs', () => {
    const g = parseFbp("'x' -> IN a(A) OUT -> IN b(B)\na OUT -> IN c(C)\nb ERROR -> IN c");
    assert.deepEqual(show(graphBindings(g)), ['pubsub: a.out -> b.in', 'pubsub: a.out -> c.in', 'pubsub: b.error -> c.in']);
  });

  it('makes a RoundRobin without deadletter a plain roundrobin binding (the msgflo reference graph)', () => {
    const g = parseFbp(
      'rrsrc(Repeat) OUT -> IN rrjobs(msgflo/RoundRobin) OUT -> IN rrwork(ErrorIf)\nrrjobs DEADLETTER -> IN rrdead(Print)\nrrwork OUT -> IN rrok(Print)',
    );
    assert.deepEqual(show(graphBindings(g)), ['roundrobin: rrsrc.out -> rrwork.in dead: rrdead.in', 'pubsub: rrwork.out -> rrok.in']);
    const plain = parseFbp('s(S) OUT -> IN rr(msgflo/RoundRobin) OUT -> IN w(W)');
    assert.deepEqual(graphBindings(plain), [{ type: 'roundrobin', src: { node: 's', port: 'out' }, tgt: { node: 'w', port: 'in' } }]);
  });

  it('crosses every source and target of a routing node', () => {
    const g = parseFbp(
      ['a(A) OUT -> IN rr(msgflo/RoundRobin) OUT -> IN x(X)', 'b(B) OUT -> IN rr', 'rr OUT -> IN y(Y)', 'rr DEADLETTER -> IN d(D)'].join('\n'),
    );
    assert.deepEqual(show(graphBindings(g)), [
      'roundrobin: a.out -> x.in dead: d.in',
      'roundrobin: a.out -> y.in dead: d.in',
      'roundrobin: b.out -> x.in dead: d.in',
      'roundrobin: b.out -> y.in dead: d.in',
    ]);
  });

  it('follows chains of PubSub nodes and drops duplicates', () => {
    const g = parseFbp(
      ['a(A) OUT -> IN p1(msgflo/PubSub) OUT -> IN p2(msgflo/PubSub) OUT -> IN x(X)', 'p1 OUT -> IN y(Y)', 'p2 OUT -> IN p1', 'a OUT -> IN x'].join(
        '\n',
      ),
    );
    assert.deepEqual(show(graphBindings(g)), ['pubsub: a.out -> x.in', 'pubsub: a.out -> y.in']);
  });

  it('gives no binding for incomplete routing nodes or undeclared nodes', () => {
    const g = parseFbp('a(A) OUT -> IN rr(msgflo/RoundRobin)\nrr OUT -> IN ps(msgflo/PubSub)\na OUT -> IN ghost');
    assert.deepEqual(graphBindings(g), []);
  });

  it('lists participant nodes: every node but msgflo/RoundRobin and msgflo/PubSub', () => {
    const g = parseFbp(readFileSync(path.join(fixtures, 'pipeline.fbp'), 'utf8'));
    assert.deepEqual(
      participantNodes(g).map((n) => n.id),
      ['source', 'worker', 'failed', 'store', 'log', 'audit'],
    );
  });

  it('collects the IIPs of a role as {port: data}', () => {
    const g = parseFbp(readFileSync(path.join(fixtures, 'pipeline.fbp'), 'utf8'));
    assert.deepEqual(iipsForRole(g, 'worker'), { limit: { limit: 5, tags: ['a b'] } });
    assert.deepEqual(iipsForRole(g, 'source'), { config: '{"jobs": 3}' });
    assert.deepEqual(iipsForRole(g, 'log'), {});
  });
});
