import assert from 'node:assert/strict';
import { HEADER } from '../../../src/protocol/envelope.js';
import { deadLetter, toInMessage } from '../../../src/transport/mqtt/message.js';
import {
  bindingRecordTopic,
  bindingRecordsFilter,
  encodeMarker,
  encodeRecord,
  filtersOverlap,
  markerTopic,
  matchingFilter,
  parseBindingRecordTopic,
  parseRecordMessage,
  sharedFilter,
  topicMatches,
  validTopicName,
  ALL_BINDINGS_FILTER,
} from '../../../src/transport/mqtt/topics.js';

describe('MQTT topics', () => {
  it('matches topics against filters with + and #', () => {
    assert.equal(topicMatches('a/b', 'a/b'), true);
    assert.equal(topicMatches('a/+', 'a/b'), true);
    assert.equal(topicMatches('a/+', 'a/b/c'), false);
    assert.equal(topicMatches('a/#', 'a'), true);
    assert.equal(topicMatches('a/#', 'a/b/c'), true);
    assert.equal(topicMatches('#', '$SYS/x'), false);
    assert.equal(topicMatches('+/x', '$SYS/x'), false);
    assert.equal(topicMatches('a/b', 'a/c'), false);
    assert.equal(topicMatches('a.IN', 'a.IN'), true);
  });

  it('tells which filters can match the same topic', () => {
    assert.equal(filtersOverlap('q', 'q'), true);
    assert.equal(filtersOverlap('q', '$share/g/q'), true);
    assert.equal(filtersOverlap('$share/g/q', '$share/h/q'), true);
    assert.equal(filtersOverlap('q', 'r'), false);
    assert.equal(filtersOverlap(ALL_BINDINGS_FILTER, bindingRecordsFilter('x.IN')), true);
    assert.equal(filtersOverlap(bindingRecordsFilter('x.IN'), bindingRecordsFilter('y.IN')), false);
    assert.equal(filtersOverlap('a/+', 'a/b/c'), false);
    assert.equal(filtersOverlap('a/+/c', 'a/b/+'), true);
    assert.equal(matchingFilter(sharedFilter('role', 'role.IN')), 'role.IN');
  });

  it('names binding records so that any queue name is one topic level', () => {
    const topic = bindingRecordTopic('b/IN#', 'a+OUT');
    assert.equal(topic, 'msgflo/bindings/b%2FIN%23/a%2BOUT');
    assert.deepEqual(parseBindingRecordTopic(topic), { tgt: 'b/IN#', src: 'a+OUT' });
    assert.equal(topicMatches(bindingRecordsFilter('b/IN#'), topic), true);
    assert.equal(topicMatches(bindingRecordsFilter('b'), topic), false);
    assert.equal(parseBindingRecordTopic('msgflo/bindings/x'), undefined);
  });

  it('reads records, deletions, markers and junk', () => {
    const topic = bindingRecordTopic('b.IN', 'a.OUT');
    assert.deepEqual(parseRecordMessage(topic, encodeRecord({ type: 'pubsub', src: 'a.OUT', tgt: 'b.IN' })), {
      kind: 'set',
      tgt: 'b.IN',
      src: 'a.OUT',
      record: { type: 'pubsub', src: 'a.OUT', tgt: 'b.IN' },
    });
    assert.deepEqual(parseRecordMessage(topic, Buffer.alloc(0)), { kind: 'delete', tgt: 'b.IN', src: 'a.OUT' });
    const marker = markerTopic(bindingRecordsFilter('b.IN'), 'tok');
    assert.equal(topicMatches(bindingRecordsFilter('b.IN'), marker), true);
    assert.equal(topicMatches(ALL_BINDINGS_FILTER, markerTopic(ALL_BINDINGS_FILTER, 'tok')), true);
    assert.deepEqual(parseRecordMessage(marker, encodeMarker('tok')), { kind: 'marker', token: 'tok' });
    assert.equal(parseRecordMessage(topic, Buffer.from('nope')).kind, 'invalid');
    assert.equal(parseRecordMessage(topic, Buffer.from('{"src":"x","tgt":"b.IN"}')).kind, 'invalid', 'record must match its topic');
  });

  it('accepts only valid topic names as queues', () => {
    assert.equal(validTopicName('role.IN'), true);
    assert.equal(validTopicName('a/b'), true);
    assert.equal(validTopicName(''), false);
    assert.equal(validTopicName('a/+'), false);
    assert.equal(validTopicName('#'), false);
  });
});

describe('MQTT dead letters', () => {
  const received = {
    topic: 'q',
    payload: Buffer.from('{"x":1}'),
    packet: { cmd: 'publish', qos: 1, dup: false, retain: false, topic: 'q', payload: '', properties: { userProperties: { [HEADER.id]: 'm1', h: 'v' } } },
  } as const;

  it('carries the reason in user properties on MQTT 5, keeping body, id and headers', () => {
    const message = toInMessage('q', received as never);
    assert.deepEqual(message.headers, { h: 'v' });
    assert.equal(message.id, 'm1');
    const dead = deadLetter(message, 'bad', 'MSGFLO_ERR_SCHEMA', true);
    assert.equal(dead.payload.toString(), '{"x":1}');
    assert.deepEqual(dead.headers, {
      h: 'v',
      [HEADER.reason]: 'bad',
      [HEADER.code]: 'MSGFLO_ERR_SCHEMA',
      [HEADER.originalQueue]: 'q',
      [HEADER.id]: 'm1',
    });
  });

  it('wraps the message in JSON on MQTT 3.1.1', () => {
    const dead = deadLetter(toInMessage('q', received as never), 'bad', undefined, false);
    assert.deepEqual(JSON.parse(dead.payload.toString()), { [HEADER.reason]: 'bad', [HEADER.originalQueue]: 'q', data: { x: 1 } });
  });
});
