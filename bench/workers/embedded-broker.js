// The embedded MQTT broker (aedes, as `msgflo` starts it without a configured broker) in a process of its own,
// so that its CPU does not compete with the harness's event loop.
//
//   node bench/workers/embedded-broker.js ['{"sockets": "default"|"nodelay"|"coalesce"}']
//     → {type: 'ready', url} over IPC; stops on SIGTERM.
//
// `sockets` (an experiment; default: as src/broker sets them) overrides how the broker's accepted sockets are set:
// Nagle on, TCP_NODELAY, or TCP_NODELAY with writes coalesced per event-loop turn (see setSocketMode).
import net from 'node:net';
import { onStop, setSocketMode, toHarness } from './common.js';

const opts = process.argv[2] ? JSON.parse(process.argv[2]) : {};
if (opts.sockets) {
  const createServer = net.createServer;
  net.createServer = (options, listener) => {
    const onConnection = typeof options === 'function' ? options : listener;
    return createServer.call(net, (socket) => {
      setSocketMode(socket, opts.sockets);
      onConnection(socket);
    });
  };
}
const { startEmbeddedBroker } = await import('../../dist/broker/index.js');
const broker = await startEmbeddedBroker();
onStop(() => broker.close());
process.on('disconnect', () => void broker.close().finally(() => process.exit(0)));
toHarness({ type: 'ready', url: broker.url });
