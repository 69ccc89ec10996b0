// The embedded MQTT broker (aedes, as `msgflo` starts it without a configured broker) in a process of its own,
// so that its CPU does not compete with the harness's event loop.
//
//   node bench/workers/embedded-broker.js   → {type: 'ready', url} over IPC; stops on SIGTERM.
import { startEmbeddedBroker } from '../../dist/broker/index.js';
import { onStop, toHarness } from './common.js';

const broker = await startEmbeddedBroker();
onStop(() => broker.close());
process.on('disconnect', () => void broker.close().finally(() => process.exit(0)));
toHarness({ type: 'ready', url: broker.url });
