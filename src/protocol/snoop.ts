/**
 * The snoop channel: participants publish their spy lines and trace records on it, watchers (msgflo-trace, the
 * runtime's `trace:*`) read them and switch them on and off. Message shapes and their validation; no I/O.
 *
 * Channels are `spy`, `trace` and `control`, each per role:
 * - AMQP: topic exchange `msgflo.snoop`, routing key `<channel>.<role>`; every watcher binds its own exclusive
 *   queue, so every watcher sees every line.
 * - MQTT: topic `msgflo/snoop/<channel>/<role>` (QoS 0, not retained).
 * Control messages for every role use the role `_all`.
 */

export type SnoopChannel = 'spy' | 'trace' | 'control';

export const SNOOP_CHANNELS: readonly SnoopChannel[] = ['spy', 'trace', 'control'];

/** AMQP topic exchange of the snoop channel. */
export const SNOOP_EXCHANGE = 'msgflo.snoop';
/** MQTT topic root of the snoop channel. */
export const SNOOP_TOPIC_ROOT = 'msgflo/snoop';
/** The role control messages for every participant are sent to. */
export const ALL_ROLES = '_all';

/** Spy lines of one run-to-completion step. */
export interface SpyMessage {
  v: 1;
  role: string;
  /** Participant id (several instances may share a role). */
  id: string;
  /** Per participant, increasing: gaps mean lines were dropped. */
  seq: number;
  lines: string[];
  /** Lines this participant dropped since its last message (its publishing fell behind). */
  dropped?: number;
}

export interface TraceEntry {
  /** Microseconds since the epoch. */
  t: number;
  signal: string;
  from: string;
  to: string;
  /** The miros-format line, `[…] [role] e->B() c1->c1`. */
  line: string;
}

export interface TraceMessage {
  v: 1;
  role: string;
  id: string;
  seq: number;
  records: TraceEntry[];
  dropped?: number;
}

/**
 * Switch spy/trace on or off. A watcher holds a *lease*: participants keep what it asked for `leaseMs` and the
 * watcher renews it (every third of that) while it runs, so a watcher that dies switches nothing on forever,
 * and several watchers do not switch each other off. `spy: false, trace: false` ends the sender's lease.
 * `query`: a participant that just started asks the watchers to send their leases again now.
 */
export type ControlMessage =
  | { v: 1; command: 'snoop'; from: string; spy: boolean; trace: boolean; leaseMs: number; roles?: string[] }
  | { v: 1; command: 'query'; from: string; role: string }
  | BoundNotice;

/**
 * From a coordinator to the participants of `role` (sent to that role): `bound: true`, the edges of the graph are
 * bound, so what the role's sources send now arrives; `bound: false`, the role is in the coordinator's graph but
 * its edges are not all bound yet: hold what the sources send (said again on every heartbeat while so).
 */
export interface BoundNotice {
  v: 1;
  command: 'bound';
  from: string;
  role: string;
  bound: boolean;
}

export type SnoopMessage = SpyMessage | TraceMessage | ControlMessage;

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Check an untrusted spy message; undefined when it is not one. */
export function parseSpyMessage(data: unknown): SpyMessage | undefined {
  if (!isObj(data) || !isStr(data.role) || !isStr(data.id) || !isNum(data.seq)) return undefined;
  if (!Array.isArray(data.lines) || !data.lines.every(isStr)) return undefined;
  return data as unknown as SpyMessage;
}

export function parseTraceMessage(data: unknown): TraceMessage | undefined {
  if (!isObj(data) || !isStr(data.role) || !isStr(data.id) || !isNum(data.seq) || !Array.isArray(data.records)) return undefined;
  for (const r of data.records) {
    if (!isObj(r) || !isNum(r.t) || !isStr(r.signal) || !isStr(r.from) || !isStr(r.to) || !isStr(r.line)) return undefined;
  }
  return data as unknown as TraceMessage;
}

export function parseControlMessage(data: unknown): ControlMessage | undefined {
  if (!isObj(data) || !isStr(data.from)) return undefined;
  if (data.command === 'snoop') {
    if (typeof data.spy !== 'boolean' || typeof data.trace !== 'boolean' || !isNum(data.leaseMs)) return undefined;
    if (data.roles !== undefined && (!Array.isArray(data.roles) || !data.roles.every(isStr))) return undefined;
    return data as unknown as ControlMessage;
  }
  if (data.command === 'query' && isStr(data.role)) return data as unknown as ControlMessage;
  if (data.command === 'bound' && isStr(data.role) && typeof data.bound === 'boolean') return data as unknown as ControlMessage;
  return undefined;
}

/** MQTT topic of a channel and role (the role as one topic level). */
export function snoopTopic(channel: SnoopChannel, role: string): string {
  return `${SNOOP_TOPIC_ROOT}/${channel}/${encodeURIComponent(role)}`;
}

/** MQTT filter for a channel and some roles (`+`: all roles). */
export function snoopFilter(channel: SnoopChannel, role: string | undefined): string {
  return `${SNOOP_TOPIC_ROOT}/${channel}/${role === undefined ? '+' : encodeURIComponent(role)}`;
}

/** `{channel, role}` of an MQTT snoop topic, or undefined. */
export function parseSnoopTopic(topic: string): { channel: SnoopChannel; role: string } | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== SNOOP_TOPIC_ROOT) return undefined;
  const channel = parts[2] as SnoopChannel;
  if (!SNOOP_CHANNELS.includes(channel)) return undefined;
  try {
    return { channel, role: decodeURIComponent(parts[3]!) };
  } catch {
    return undefined;
  }
}

/** AMQP routing key of a channel and role. */
export function snoopRoutingKey(channel: SnoopChannel, role: string): string {
  return `${channel}.${role}`;
}

/** AMQP binding key for a channel and some roles (`#`: all roles). */
export function snoopBindingKey(channel: SnoopChannel, role: string | undefined): string {
  return role === undefined ? `${channel}.#` : `${channel}.${role}`;
}

/** `{channel, role}` of an AMQP snoop routing key, or undefined. */
export function parseSnoopRoutingKey(key: string): { channel: SnoopChannel; role: string } | undefined {
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  const channel = key.slice(0, dot) as SnoopChannel;
  if (!SNOOP_CHANNELS.includes(channel)) return undefined;
  return { channel, role: key.slice(dot + 1) };
}
