/**
 * A keyed network: any transport, with port payloads and snoop lines encrypted (AES-256-GCM) and discovery
 * messages authenticated with the network key (src/protocol/crypto.ts).
 *
 * - What is sent is sealed; what arrives is opened before anyone sees it. A message that does not open (no key,
 *   another key, altered, or plain) is dead-lettered once with MSGFLO_ERR_DECRYPT — never requeued, never handed
 *   to a handler — and reported as a transport 'error' event (an InputDecryptError naming the queue).
 * - Discovery messages are signed; unsigned or wrongly signed ones are dropped (and reported), so a participant
 *   without the key cannot join.
 * - The key comes from MSGFLO_KEY (comma-separated: the current key first, then previous keys still accepted
 *   during a rotation) or from the file MSGFLO_KEY_FILE (one key per line, same order; `#` comments).
 */
import { readFileSync } from 'node:fs';
import { DecryptError, ErrorCodes, reasonOf } from '../errors.js';
import { KeyError, Keyring, type Purpose } from '../protocol/crypto.js';
import { decodeBody, encodeBody } from '../protocol/envelope.js';
import type { SnoopChannel } from '../protocol/snoop.js';
import { type Env, readSetting } from '../settings.js';
import { logger } from '../util/logger.js';
import { Listeners } from './listeners.js';
import type {
  Binding,
  BindingOptions,
  Delivery,
  DeliveryHandler,
  InMessage,
  MessageHandler,
  QueueKind,
  QueueOptions,
  SendOptions,
  SnoopFilter,
  SnoopHandler,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportEvent,
} from './types.js';

const log = logger('keyed');

/** A message that arrived on `queue` and could not be opened with the network key (it was dead-lettered). */
export class InputDecryptError extends DecryptError {
  readonly queue: string;
  constructor(queue: string, cause: unknown) {
    super(`on '${queue}': ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`);
    this.queue = queue;
  }
}

/**
 * The network key from the environment: MSGFLO_KEY, else MSGFLO_KEY_FILE; undefined when neither is set (an
 * unkeyed network, as msgflo's). Throws KeyError (MSGFLO_ERR_KEY) when a key is malformed or the file unreadable.
 */
export function keyringFromEnv(env: Env): Keyring | undefined {
  const keys = readSetting(env, 'key');
  if (keys) return Keyring.fromSecrets(keys);
  const file = readSetting(env, 'keyFile');
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KeyError(`cannot read the key file '${file}': ${(err as Error).message}`, { cause: err });
    }
    const lines = text
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter((l) => l !== '');
    if (lines.length === 0) throw new KeyError(`the key file '${file}' holds no key`);
    return Keyring.fromSecrets(lines);
  }
  return undefined;
}

export class KeyedTransport implements Transport {
  readonly url: string;
  readonly scheme: Transport['scheme'];
  readonly brokerBindings: boolean;
  readonly keyring: Keyring;
  private readonly inner: Transport;
  private readonly listeners = new Listeners<TransportEvent>(log);

  constructor(inner: Transport, keyring: Keyring) {
    this.inner = inner;
    this.keyring = keyring;
    this.url = inner.url;
    this.scheme = inner.scheme;
    this.brokerBindings = inner.brokerBindings;
  }

  /** The transport underneath (what the broker sees). */
  get unkeyed(): Transport {
    return this.inner;
  }

  connect(): Promise<void> {
    return this.inner.connect();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  closed(): Promise<Error | undefined> {
    return this.inner.closed();
  }

  on(listener: (event: TransportEvent) => void): () => void {
    const remove = this.listeners.add(listener);
    const off = this.inner.on(listener);
    return () => {
      remove();
      off();
    };
  }

  private report(error: Error): void {
    log('%s', error.message);
    this.listeners.emit({ type: 'error', error });
  }

  private seal(data: unknown, purpose: Purpose): unknown {
    return this.keyring.seal(encodeBody(data), purpose);
  }

  /** The decrypted fields of a received message; throws DecryptError. */
  private opened(m: InMessage, purpose: Purpose): Pick<InMessage, 'data' | 'raw' | 'jsonError'> {
    const raw = this.keyring.open(m.data, purpose);
    const { data, jsonError } = decodeBody(raw, m.queue);
    return { data, raw, jsonError };
  }

  createQueue(kind: QueueKind, name: string, options?: QueueOptions): Promise<void> {
    return this.inner.createQueue(kind, name, options);
  }

  removeQueue(kind: QueueKind, name: string): Promise<void> {
    return this.inner.removeQueue(kind, name);
  }

  queueExists(kind: QueueKind, name: string): Promise<boolean> {
    return this.inner.queueExists(kind, name);
  }

  send(kind: QueueKind, name: string, data: unknown, options?: SendOptions): Promise<void> {
    return this.inner.send(kind, name, this.seal(data, 'data'), options);
  }

  subscribe(queue: string, handler: DeliveryHandler, options?: SubscribeOptions): Promise<Subscription> {
    return this.inner.subscribe(
      queue,
      (d) => {
        let fields: Pick<InMessage, 'data' | 'raw' | 'jsonError'>;
        try {
          fields = this.opened(d, 'data');
        } catch (err) {
          const error = new InputDecryptError(queue, err);
          void d.nack(reasonOf(error), ErrorCodes.DECRYPT).catch((e: unknown) => log('cannot dead-letter: %s', reasonOf(e)));
          this.report(error);
          return;
        }
        const opened: Delivery = {
          queue: d.queue,
          ...fields,
          headers: d.headers,
          id: d.id,
          redelivered: d.redelivered,
          get settled() {
            return d.settled;
          },
          ack: () => d.ack(),
          nack: (reason: string, code?: string) => d.nack(reason, code),
        };
        handler(opened);
      },
      options,
    );
  }

  tap(kind: QueueKind, name: string, handler: MessageHandler): Promise<Subscription> {
    return this.inner.tap(kind, name, (m) => {
      try {
        handler({ ...m, ...this.opened(m, 'data') });
      } catch (err) {
        if (err instanceof DecryptError) this.report(new InputDecryptError(name, err));
        else throw err;
      }
    });
  }

  addBinding(binding: Binding, options?: BindingOptions): Promise<void> {
    return this.inner.addBinding(binding, options);
  }

  removeBinding(binding: Binding): Promise<void> {
    return this.inner.removeBinding(binding);
  }

  listBindings(): Promise<Binding[]> {
    return this.inner.listBindings();
  }

  announce(message: unknown, options?: { ttlMs?: number }): Promise<void> {
    const signed = typeof message === 'object' && message !== null ? this.keyring.sign(message) : message;
    return this.inner.announce(signed, options);
  }

  onDiscovery(handler: MessageHandler): Promise<Subscription> {
    return this.inner.onDiscovery((m) => {
      let verified: Record<string, unknown>;
      try {
        verified = this.keyring.verify(m.data);
      } catch (err) {
        const role = (m.data as { payload?: { role?: unknown } } | null)?.payload?.role;
        this.report(new DecryptError(`discovery message${typeof role === 'string' ? ` of '${role}'` : ''} ignored: ${(err as Error).message.split('\n')[0]}`));
        return;
      }
      handler({ ...m, data: verified });
    });
  }

  async publishSnoop(channel: SnoopChannel, role: string, data: unknown): Promise<void> {
    await this.inner.publishSnoop(channel, role, this.seal(data, 'snoop'));
  }

  subscribeSnoop(filter: SnoopFilter, handler: SnoopHandler): Promise<Subscription> {
    return this.inner.subscribeSnoop(filter, (m) => {
      let fields: Pick<InMessage, 'data' | 'raw' | 'jsonError'>;
      try {
        fields = this.opened(m as unknown as InMessage, 'snoop');
      } catch (err) {
        this.report(new DecryptError(`${m.channel} line of '${m.role}' dropped: ${(err as Error).message.split('\n')[0]}`));
        return;
      }
      handler({ ...m, ...fields });
    });
  }
}
