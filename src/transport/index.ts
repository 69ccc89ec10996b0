import { BrokerUrlError } from '../errors.js';
import { KeyedTransport, keyringFromEnv } from './keyed.js';
import { ReconnectingTransport } from './reconnecting.js';
import type { Transport, TransportOptions } from './types.js';

export type * from './types.js';

export type TransportFactory = (url: string, options: TransportOptions) => Promise<Transport>;

/** Maps URL schemes to transport factories. A value, not a global: tests can make their own. */
export class TransportRegistry {
  private readonly factories = new Map<string, TransportFactory>();
  register(scheme: string, factory: TransportFactory): this {
    this.factories.set(scheme.replace(/:$/, ''), factory);
    return this;
  }
  schemes(): string[] {
    return [...this.factories.keys()];
  }
  /** Create (not yet connected) the transport for `url`. */
  async create(url: string, options: TransportOptions = {}): Promise<Transport> {
    let scheme: string;
    try {
      scheme = new URL(url).protocol.replace(/:$/, '');
    } catch {
      throw new BrokerUrlError(url, 'not a URL');
    }
    const factory = this.factories.get(scheme);
    if (!factory) throw new BrokerUrlError(url, `unknown scheme '${scheme}:'`);
    return factory(url, options);
  }
}

/** The registry with the built-in transports, each loaded only when its scheme is used. */
export function createTransportRegistry(): TransportRegistry {
  const amqp: TransportFactory = async (url, o) => new (await import('./amqp/index.js')).AmqpTransport(url, o);
  const mqtt: TransportFactory = async (url, o) => new (await import('./mqtt/index.js')).MqttTransport(url, o);
  const direct: TransportFactory = async (url, o) => new (await import('./direct/index.js')).DirectTransport(url, o);
  return new TransportRegistry()
    .register('amqp', amqp)
    .register('amqps', amqp)
    .register('mqtt', mqtt)
    .register('mqtts', mqtt)
    .register('ws', mqtt)
    .register('wss', mqtt)
    .register('direct', direct);
}

const defaultRegistry = createTransportRegistry();

/**
 * Create and connect the transport for a broker URL. AMQP connections are wrapped so that they reconnect and
 * resume after a loss; MQTT's link reconnects inside mqtt.js, which resumes its session. Both follow the policy of
 * reconnect.ts.
 */
export async function connectTransport(url: string, options: TransportOptions = {}, registry = defaultRegistry): Promise<Transport> {
  // A malformed key fails before anything connects (MSGFLO_ERR_KEY).
  const keyring = options.keyring === undefined ? keyringFromEnv(options.env ?? process.env) : (options.keyring ?? undefined);
  const keyed = (t: Transport): Transport => (keyring ? new KeyedTransport(t, keyring) : t);
  const transport = await registry.create(url, options);
  if (transport.scheme === 'amqp' && options.reconnect !== false) {
    const wrapped = new ReconnectingTransport(transport, () => registry.create(url, options));
    await wrapped.connect();
    return keyed(wrapped);
  }
  await transport.connect();
  return keyed(transport);
}
