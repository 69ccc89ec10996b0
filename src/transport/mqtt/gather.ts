/**
 * One buffer per flush on an MQTT connection's socket. mqtt-packet writes a packet as many small chunks (fixed
 * header, lengths, topic, each user property as five pieces, payload) inside cork/uncork; Node then hands the
 * socket a writev of every chunk, strings encoded one by one. Gathering what is written while the socket is corked
 * into one Buffer (a copy of a few hundred bytes) replaces that per-chunk work with one plain write.
 */
import type { Duplex } from 'node:stream';

type WriteCallback = (err?: Error | null) => void;

const installed = new WeakSet<object>();

export function gatherWrites(socket: Duplex): void {
  if (installed.has(socket) || typeof socket.cork !== 'function') return;
  installed.add(socket);
  const write = socket.write.bind(socket) as (chunk: Buffer, cb?: WriteCallback) => boolean;
  const uncork = socket.uncork.bind(socket);
  let depth = 0;
  let parts: Buffer[] = [];
  let bytes = 0;
  let callbacks: WriteCallback[] = [];

  const flush = (): void => {
    if (parts.length === 0) return;
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
    const waiting = callbacks;
    parts = [];
    bytes = 0;
    callbacks = [];
    if (socket.destroyed || !socket.writable) {
      const err = new Error('socket closed before the write');
      for (const cb of waiting) cb(err);
      return;
    }
    write(data, waiting.length === 0 ? undefined : (err) => {
      for (const cb of waiting) cb(err);
    });
  };

  socket.cork = () => {
    depth++;
  };
  socket.uncork = () => {
    // A cork from before this was installed (mqtt.js writes CONNECT as soon as it makes the socket): the socket's own.
    if (depth === 0) return uncork();
    if (--depth === 0) flush();
  };
  socket.write = function gatheringWrite(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, (encoding as BufferEncoding | undefined) ?? 'utf8') : (chunk as Buffer);
    if (depth === 0) return write(buf, cb as WriteCallback | undefined);
    parts.push(buf);
    bytes += buf.length;
    if (typeof cb === 'function') callbacks.push(cb as WriteCallback);
    // What the socket will say when the gathered buffer reaches it (nothing leaves it before then: the flush comes in
    // this same turn), so a caller told false gets its 'drain'.
    return !socket.writableNeedDrain && socket.writableLength + bytes < socket.writableHighWaterMark;
  } as Duplex['write'];
}
