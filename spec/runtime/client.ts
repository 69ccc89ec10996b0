/**
 * A test client for the FBP runtime protocol that checks every frame both ways against the schemas shipped in
 * npm `fbp-protocol`, with its own ajv (independent of the runtime's check): what it sends must be valid input,
 * what it receives valid output. `problems` lists every violation (tests assert it stays empty).
 *
 * Two ways to reach a runtime: over WebSocket (`FbpClient.connect(url)`), or in-process through
 * `FbpRuntime.connect/handle` (`FbpClient.inProcess(runtime)`).
 */
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import WebSocket from 'ws';
import type { FbpRuntime } from '../../src/runtime/runtime.js';

const require = createRequire(import.meta.url);
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface Message {
  protocol: string;
  command: string;
  payload: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  responseTo?: string;
  [key: string]: unknown;
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string') && !(k === 'properties' && v === null))
      .map(([k, v]) => [k, strip(v)]),
  );
}

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'fbp', ...(strip(require('fbp-protocol/schema/schemas.js')) as object) });

/** Schema problems of a message (`input`: client → runtime; `output`: runtime → client). */
export function validate(direction: 'input' | 'output', message: Message): string[] {
  const v = ajv.getSchema(`fbp#/${message.protocol}/${direction}/${message.command}`);
  if (!v) return [`no schema for ${direction} ${message.protocol}:${message.command}`];
  return v(message) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

export interface SendOptions {
  /** The secret to send (default: the client's); false sends none. */
  secret?: string | false;
  /** Put the secret in payload.secret instead of top-level (fbp-client does). */
  legacySecret?: boolean;
  requestId?: string;
}

export class FbpClient {
  readonly received: Message[] = [];
  readonly problems: string[] = [];
  /** Index of the first message `expect` has not consumed yet. */
  private cursor = 0;
  private listeners = new Set<() => void>();
  closed = false;

  private constructor(
    private readonly deliver: (text: string) => void,
    private readonly closeFn: () => Promise<void>,
    public secret: string,
  ) {}

  /** Connect over WebSocket with the `noflo` sub-protocol. */
  static connect(url: string, secret: string, options: { protocol?: string | null } = {}): Promise<FbpClient> {
    const protocol = options.protocol === undefined ? 'noflo' : options.protocol;
    const ws = protocol === null ? new WebSocket(url) : new WebSocket(url, protocol);
    const client = new FbpClient(
      (text) => ws.send(text),
      () =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close();
        }),
      secret,
    );
    ws.on('message', (data) => client.receive(String(data)));
    ws.on('close', () => {
      client.closed = true;
      client.notify();
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  /** A client handled in-process by `runtime` (no sockets). */
  static inProcess(runtime: FbpRuntime, secret: string): FbpClient {
    let client!: FbpClient;
    const conn = runtime.connect({ send: (text) => setImmediate(() => client.receive(text)) });
    client = new FbpClient(
      (text) => void runtime.handle(conn, text),
      async () => runtime.disconnect(conn),
      secret,
    );
    return client;
  }

  private receive(text: string): void {
    let message: Message;
    try {
      message = JSON.parse(text) as Message;
    } catch {
      this.problems.push(`runtime sent a frame that is not JSON: ${text.slice(0, 100)}`);
      return;
    }
    for (const p of validate('output', message)) this.problems.push(`received ${message.protocol}:${message.command}: ${p}`);
    if ('secret' in message || (message.payload && typeof message.payload === 'object' && 'secret' in message.payload)) {
      this.problems.push(`received ${message.protocol}:${message.command} with a secret`);
    }
    this.received.push(message);
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Send a message (checked against the input schemas unless `raw`). */
  send(protocol: string, command: string, payload: unknown = {}, options: SendOptions = {}): void {
    const secret = options.secret === undefined ? this.secret : options.secret;
    const body: Record<string, unknown> = { ...(payload as object) };
    const message: Message = { protocol, command, payload: body };
    if (secret !== false && !options.legacySecret) message.secret = secret;
    if (options.requestId) message.requestId = options.requestId;
    for (const p of validate('input', message)) this.problems.push(`sent ${protocol}:${command}: ${p}`);
    if (secret !== false && options.legacySecret) body.secret = secret;
    this.deliver(JSON.stringify(message));
  }

  /** Send a frame as it is (bad input). */
  sendRaw(text: string): void {
    this.deliver(text);
  }

  /**
   * Wait for the next message (after those already consumed) matching protocol, command and `match`; earlier
   * non-matching messages are skipped. Resolves with it and consumes everything up to it.
   */
  expect(protocol: string, command: string | string[], options: { match?: (m: Message) => boolean; timeoutMs?: number } = {}): Promise<Message> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const commands = Array.isArray(command) ? command : [command];
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (let i = this.cursor; i < this.received.length; i++) {
          const m = this.received[i]!;
          if (m.protocol === protocol && commands.includes(m.command) && (!options.match || options.match(m))) {
            this.cursor = i + 1;
            done();
            resolve(m);
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.received.slice(this.cursor).map((m) => `${m.protocol}:${m.command} ${JSON.stringify(m.payload).slice(0, 160)}`);
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${protocol}:${command}; received since:\n  ${seen.join('\n  ') || '(nothing)'}`));
      }, timeoutMs);
      const listener = () => {
        check();
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      if (!check()) this.listeners.add(listener);
    });
  }

  /**
   * Wait for a message matching protocol, command and `match` among everything received so far or later (events
   * that may have come before a reply the test waited for), or only among those from index `after` on. Does not
   * move the `expect` cursor.
   */
  find(protocol: string, command: string, options: { match?: (m: Message) => boolean; timeoutMs?: number; after?: number } = {}): Promise<Message> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const hit = (m: Message) => m.protocol === protocol && m.command === command && (!options.match || options.match(m));
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = this.received.slice(options.after ?? 0).find(hit);
        if (!m) return false;
        done();
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.received.filter((m) => m.protocol === protocol && m.command === command).map((m) => JSON.stringify(m.payload).slice(0, 160));
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for a matching ${protocol}:${command}; received:\n  ${seen.join('\n  ') || '(none)'}`));
      }, timeoutMs);
      const listener = () => {
        check();
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      if (!check()) this.listeners.add(listener);
    });
  }

  /** Send, then wait for the reply `<protocol>:<replyCommand>` (default: the same command). */
  async request(protocol: string, command: string, payload: unknown = {}, replyCommand = command, timeoutMs = 5000): Promise<Message> {
    this.send(protocol, command, payload);
    const reply = await this.expect(protocol, [replyCommand, 'error'], { timeoutMs });
    if (reply.command === 'error' && replyCommand !== 'error') throw new Error(`${protocol}:${command} failed: ${reply.payload.message}`);
    return reply;
  }

  /** Messages received so far with this protocol and command. */
  all(protocol: string, command: string): Message[] {
    return this.received.filter((m) => m.protocol === protocol && m.command === command);
  }

  /** Consume everything received so far (the next expect only looks at later messages). */
  skipAll(): void {
    this.cursor = this.received.length;
  }

  close(): Promise<void> {
    this.closed = true;
    return this.closeFn();
  }
}
