import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { gatherWrites } from '../../../src/transport/mqtt/gather.js';

/** A socket stand-in that records what reaches it, write by write (writev batches as one entry per chunk). */
class RecordingSocket extends Writable {
  readonly received: Buffer[][] = [];
  constructor(highWaterMark = 16 * 1024) {
    super({ highWaterMark });
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.received.push(chunks.map((c) => c.chunk));
    setImmediate(cb);
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.received.push([chunk]);
    setImmediate(cb);
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('MQTT socket write gathering', () => {
  it('hands the socket what was written while corked as one buffer, in order, strings encoded', async () => {
    const socket = new RecordingSocket();
    gatherWrites(socket as never);
    socket.cork();
    socket.write(Buffer.from([0x30]));
    socket.write('tópic');
    socket.cork(); // nested, as mqtt-packet does per packet
    socket.write(Buffer.from('payload'));
    socket.uncork();
    assert.equal(socket.received.length, 0, 'nothing leaves before the last uncork');
    socket.uncork();
    await tick();
    assert.equal(socket.received.length, 1);
    assert.equal(socket.received[0]!.length, 1, 'one chunk');
    assert.deepEqual(socket.received[0]![0], Buffer.concat([Buffer.from([0x30]), Buffer.from('tópic'), Buffer.from('payload')]));
  });

  it('passes writes through while not corked, and calls every callback once the gathered buffer is written', async () => {
    const socket = new RecordingSocket();
    gatherWrites(socket as never);
    socket.write(Buffer.from('a'));
    await tick();
    assert.deepEqual(socket.received, [[Buffer.from('a')]]);
    const called: string[] = [];
    socket.cork();
    socket.write(Buffer.from('b'), () => called.push('b'));
    socket.write('c', 'utf8', () => called.push('c'));
    socket.uncork();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(called, ['b', 'c']);
  });

  it('releases a cork the socket had before gathering was installed (mqtt.js writes CONNECT at once)', async () => {
    const socket = new RecordingSocket();
    socket.cork();
    socket.write(Buffer.from('connect'));
    gatherWrites(socket as never);
    socket.uncork(); // mqtt-packet's pending uncork
    await tick();
    assert.deepEqual(socket.received, [[Buffer.from('connect')]]);
  });

  it('says false once what is gathered would fill the socket, and a drain follows', async () => {
    const socket = new RecordingSocket(8);
    gatherWrites(socket as never);
    socket.cork();
    assert.equal(socket.write(Buffer.from('0123')), true, 'below the high-water mark');
    assert.equal(socket.write(Buffer.from('4567')), false, 'what is gathered reaches it');
    socket.uncork();
    assert.equal(socket.writableNeedDrain, true, 'the socket itself said false at the flush');
    await new Promise((resolve) => socket.once('drain', resolve));
    socket.cork();
    assert.equal(socket.write(Buffer.from('x')), true);
    socket.uncork();
    await tick();
    assert.deepEqual(socket.received.map((chunks) => Buffer.concat(chunks).toString()), ['01234567', 'x']);
  });

  it('fails the callbacks of what was gathered when the socket is destroyed before the flush', () => {
    const socket = new RecordingSocket();
    gatherWrites(socket as never);
    const errors: unknown[] = [];
    socket.cork();
    socket.write(Buffer.from('late'), (err) => errors.push(err));
    socket.destroy();
    socket.uncork();
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof Error);
    assert.equal(socket.received.length, 0);
  });
});
