/**
 * The rules every transport shares about bodies and dead letters (protocol/envelope.ts, protocol/deadletter.ts):
 * one decoding rule (JSON, else text, never an altered string for bytes that are not UTF-8) and one dead-letter
 * field rule (reason, code, original queue; long reasons cut the same way everywhere).
 */
import assert from 'node:assert/strict';
import { ErrorCodes, MsgfloError } from '../../src/errors.js';
import { MAX_REASON_LENGTH, deadLetterFields } from '../../src/protocol/deadletter.js';
import { decodeBody } from '../../src/protocol/envelope.js';

describe('protocol: body decoding', () => {
  it('parses JSON bodies, and gives other UTF-8 text as the string with the parse error', () => {
    assert.deepEqual(decodeBody(Buffer.from('{"a":[1,"é"]}')), { data: { a: [1, 'é'] }, jsonError: undefined });
    const text = decodeBody(Buffer.from('hello wörld'));
    assert.equal(text.data, 'hello wörld');
    assert.ok(text.jsonError instanceof SyntaxError);
  });

  it('never alters a body that is not UTF-8: its bytes, and a coded error naming the queue', () => {
    for (const bytes of [[0xff, 0x00, 0xfe, 0x80], [0x22, 0xff, 0x22] /* a JSON string once decoded with U+FFFD */, [0xc3, 0x28]]) {
      const raw = Buffer.from(bytes);
      const { data, jsonError } = decodeBody(raw, 'role.IN');
      assert.ok(Buffer.isBuffer(data), 'the bytes themselves');
      assert.deepEqual([...(data as Buffer)], bytes);
      assert.ok(jsonError instanceof MsgfloError);
      assert.equal(jsonError.code, ErrorCodes.BAD_ENCODING);
      assert.match(jsonError.message, /role\.IN/);
    }
  });
});

describe('protocol: dead-letter fields', () => {
  it('carry the reason, the original queue and the code when there is one', () => {
    assert.deepEqual(deadLetterFields('a.IN', 'boom', 'MSGFLO_ERR_HANDLER'), {
      'x-msgflo-reason': 'boom',
      'x-msgflo-queue': 'a.IN',
      'x-msgflo-code': 'MSGFLO_ERR_HANDLER',
    });
    assert.deepEqual(deadLetterFields('a.IN', 'boom', undefined), { 'x-msgflo-reason': 'boom', 'x-msgflo-queue': 'a.IN' });
  });

  it('cut a reason longer than the limit, marking the cut', () => {
    const exact = 'r'.repeat(MAX_REASON_LENGTH);
    assert.equal(deadLetterFields('q', exact, undefined)['x-msgflo-reason'], exact);
    const cut = deadLetterFields('q', 'r'.repeat(MAX_REASON_LENGTH * 3), undefined)['x-msgflo-reason'];
    assert.equal(cut, `${exact}…`);
  });
});
