/**
 * One write per event-loop turn on the AMQP socket. amqplib writes every frame on its own, and with TCP_NODELAY
 * (needed: Nagle meeting delayed ACKs stalls request/reply at ~40 ms) each becomes a syscall and a segment —
 * about two per relayed message, 44% of an at-least-once relay's CPU in the bench profile. Corking the socket at
 * the first write of a turn and uncorking on setImmediate sends what that turn produced together, without
 * waiting for anything: no stall, and the batching Nagle used to give for free.
 */
import type { Duplex } from 'node:stream';

const installed = new WeakSet<object>();

export function coalesceWrites(socket: Duplex): void {
  if (installed.has(socket) || typeof socket.cork !== 'function') return;
  installed.add(socket);
  const write = socket.write;
  let corked = false;
  socket.write = function coalescingWrite(this: Duplex, ...args: Parameters<Duplex['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(() => {
        corked = false;
        socket.uncork();
      });
    }
    return write.apply(this, args);
  } as Duplex['write'];
}
