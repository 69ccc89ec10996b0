/**
 * Opening one MQTT connection: client ids, the mqtt.js options, one attempt without retries, and the coded error
 * when it fails. A clean session ends with the connection; a kept one (stable client id, `sessionExpirySeconds`)
 * stays on the broker and is resumed by the next connection with that id.
 */
import { randomBytes } from 'node:crypto';
import type { IClientOptions, MqttClient } from 'mqtt';
import { BrokerAuthError, BrokerUnreachableError, type MsgfloError } from '../../errors.js';
import { requireCjs } from '../../util/cjs.js';
import { debugEnabled } from '../../util/logger.js';
import { CONNECT_TIMEOUT_MS } from '../defaults.js';
import { gatherWrites } from './gather.js';
import { socketOf } from './internals.js';

const mqtt = requireCjs('mqtt') as typeof import('mqtt');

export type ProtocolVersion = 4 | 5;

/** What a connection is opened with. */
export interface OpenOptions {
  /** Broker URL, credentials included (never logged). */
  url: string;
  /**
   * Keep the session after the connection ends: `clean: false`, and on MQTT 5 a Session Expiry Interval of this many
   * seconds. Undefined: a clean session that ends with the connection.
   */
  sessionExpirySeconds?: number;
  /** MQTT 5 Receive Maximum: QoS 1 messages the broker may have in flight (unacknowledged) to this client. */
  receiveMaximum?: number;
}

/** CONNACK codes meaning "wrong or missing credentials" (3.1.1: 4, 5; MQTT 5: 0x86, 0x87, 0x8A, 0x8C). */
const AUTH_CODES = new Set([4, 5, 134, 135, 138, 140]);
/** CONNACK codes meaning "this broker does not speak the protocol version asked for". */
const VERSION_CODES = new Set([1, 132]);

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || 'msgflo';
}

/** A client id made of parts (e.g. role and instance), with characters every broker accepts. */
export function stableClientId(...parts: string[]): string {
  return parts.map(sanitize).join('-');
}

/** A fresh client id for a connection of `name` (a random suffix). */
export function randomClientId(name: string): string {
  return `${sanitize(name)}-${randomBytes(4).toString('hex')}`;
}

/** Whether a failed attempt says the broker does not speak that protocol version (then try the next one). */
export function versionRefused(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && VERSION_CODES.has(code);
}

const noLog = (): void => {};

/**
 * One connection attempt, without retries. `hook` is called synchronously with the client, before the connection
 * can deliver anything (a kept session's messages come right after CONNACK and must meet the link's handlers).
 * Resolves with what `hook` returned once the broker accepted the connection.
 */
export function connectOnce<T>(options: OpenOptions, clientId: string, version: ProtocolVersion, hook: (client: MqttClient) => T): Promise<T> {
  const keep = options.sessionExpirySeconds !== undefined;
  const properties: NonNullable<IClientOptions['properties']> = {};
  if (version === 5 && keep) properties.sessionExpiryInterval = options.sessionExpirySeconds!;
  if (version === 5 && options.receiveMaximum !== undefined) properties.receiveMaximum = options.receiveMaximum;
  const clientOptions: IClientOptions = {
    clientId,
    protocolVersion: version,
    clean: !keep,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // mqtt.js logs several times per message; even switched off, each call costs (its arguments are collected).
    ...(debugEnabled('mqttjs:client') ? {} : { log: noLog }),
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
    ...credentials(options.url),
  };
  return new Promise<T>((resolve, reject) => {
    let client: MqttClient;
    let hooked: T;
    try {
      client = mqtt.connect(options.url, clientOptions);
      // Each packet as one buffer (see gather.ts); the socket exists already, its first packet (CONNECT) is written.
      const socket = socketOf(client);
      if (socket) gatherWrites(socket);
      hooked = hook(client);
    } catch (err) {
      reject(err);
      return;
    }
    const settle = (err: Error | undefined) => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (!err) return resolve(hooked);
      client.on('error', () => {});
      client.end(true);
      reject(err);
    };
    const onConnect = () => settle(undefined);
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(new Error('connection closed before the broker answered'));
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
}

/** User and password from the URL, percent-decoded (mqtt.js would pass them on encoded). */
function credentials(url: string): Pick<IClientOptions, 'username' | 'password'> {
  try {
    const u = new URL(url);
    const out: Pick<IClientOptions, 'username' | 'password'> = {};
    if (u.username) out.username = decodeURIComponent(u.username);
    if (u.password) out.password = decodeURIComponent(u.password);
    return out;
  } catch {
    return {};
  }
}

/** The coded error for a connection that failed: refused credentials, or unreachable. */
export function connectError(url: string, err: unknown): MsgfloError {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number' && AUTH_CODES.has(code)) return new BrokerAuthError(url, { cause: err });
  return new BrokerUnreachableError(url, { cause: err });
}
