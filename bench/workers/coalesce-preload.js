// Experiment (npm run bench -- --experiment coalesce): loaded with `node --import` into msgflo-ts participants to
// measure what write coalescing in the transports would give, without changing them. Every TCP socket the process
// opens gets TCP_NODELAY, and the writes made during one event-loop turn leave as one (cork, uncork on
// setImmediate) — see setSocketMode in common.js.
import net from 'node:net';
import { setSocketMode } from './common.js';

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function coalescingConnect(...args) {
  const result = connect.apply(this, args);
  // After connect(): it resets an own `write` property (Socket.prototype.connect undoes end()'s write-after-end guard).
  setSocketMode(this, 'coalesce');
  return result;
};
