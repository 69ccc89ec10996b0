import { AMQP_URL, MQTT_URL, requireBroker, uniqueName } from '../helpers/brokers.js';
import { transportConformance } from './conformance.js';

transportConformance({
  name: 'direct (in-memory)',
  url: async () => `direct://${uniqueName('conf')}`,
  caps: { amqpTopology: true, sharedGroups: true },
});

let embedded: { url: string; close(): Promise<void> } | undefined;
transportConformance({
  name: 'embedded MQTT broker',
  url: async () => {
    const { startEmbeddedBroker } = await import('../../src/broker/index.js');
    embedded = await startEmbeddedBroker();
    return embedded.url;
  },
  teardown: async () => {
    await embedded?.close();
  },
  caps: { amqpTopology: false, sharedGroups: true },
});

let embeddedWs: { wsUrl: string | undefined; close(): Promise<void> } | undefined;
transportConformance({
  name: 'embedded MQTT broker over WebSocket (ws:)',
  url: async () => {
    const { startEmbeddedBroker } = await import('../../src/broker/index.js');
    embeddedWs = await startEmbeddedBroker({ wsPort: 0 });
    return embeddedWs.wsUrl!;
  },
  teardown: async () => {
    await embeddedWs?.close();
  },
  caps: { amqpTopology: false, sharedGroups: true },
});

transportConformance({
  name: 'Mosquitto @broker',
  url: async () => MQTT_URL,
  precondition: (ctx) => requireBroker(ctx, MQTT_URL),
  caps: { amqpTopology: false, sharedGroups: true },
});

transportConformance({
  name: 'RabbitMQ @broker',
  url: async () => AMQP_URL,
  precondition: (ctx) => requireBroker(ctx, AMQP_URL),
  caps: { amqpTopology: true, sharedGroups: true },
});
