import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BrokerUnreachableError, ErrorCodes, GraphParseError, maskUrl } from '../src/errors.js';

describe('errors', () => {
  const table = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...table.matchAll(/^\| `(MSGFLO_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]));

  it('documents every error code in the table of docs/errors.md, and no other', () => {
    const codes = new Set(Object.values(ErrorCodes));
    assert.deepEqual([...codes].filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md');
    assert.deepEqual([...documented].filter((c) => !codes.has(c as never)), [], 'docs/errors.md rows without a code');
  });

  it('masks passwords in broker URLs', () => {
    assert.equal(maskUrl('amqp://guest:secret@host:5672/vh'), 'amqp://guest:***@host:5672/vh');
    assert.equal(maskUrl('mqtt://host:1883'), 'mqtt://host:1883');
    const err = new BrokerUnreachableError('amqp://u:hunter2@nowhere:1', { cause: new Error('ECONNREFUSED') });
    assert.doesNotMatch(err.message, /hunter2/);
    assert.equal(err.code, 'MSGFLO_ERR_BROKER_UNREACHABLE');
  });

  it('gives graph errors a file:line:column and a hint', () => {
    const err = new GraphParseError({ file: 'g.fbp', line: 3, column: 7 }, 'unexpected "("');
    assert.match(err.message, /^g\.fbp:3:7: unexpected/);
    assert.match(err.message, /→ /);
    assert.equal(String(err).split(':')[0], 'MSGFLO_ERR_GRAPH_PARSE');
  });
});
