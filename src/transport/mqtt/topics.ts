/**
 * MQTT topic names used by msgflo-ts, and topic-filter matching. No I/O.
 *
 * - A queue (inqueue or outqueue) is the topic of the same name (as in msgflo).
 * - A binding is a retained record on `msgflo/bindings/<enc(tgt)>/<enc(src)>` whose payload is the JSON binding;
 *   an empty retained payload deletes it. `enc` is `encodeURIComponent`, so a queue name that contains `/`, `+`,
 *   `#` or `$` still makes exactly one topic level.
 * - Refused messages go to `dead-<queue>`; discovery goes to `fbp`.
 *
 * Pure functions, except that assertTopic throws.
 */
import { InvalidArgumentError } from '../../errors.js';
import type { Binding, BindingType } from '../types.js';

export const DISCOVERY_TOPIC = 'fbp';
export const BINDINGS_ROOT = 'msgflo/bindings';
/** Every binding record (what `listBindings` follows). */
export const ALL_BINDINGS_FILTER = `${BINDINGS_ROOT}/#`;
/** Marker messages are non-retained, carry this key, and are ignored by everyone but their sender. */
export const MARKER_KEY = 'x-msgflo-marker';

export function deadLetterTopic(queue: string): string {
  return `dead-${queue}`;
}

export function bindingRecordTopic(tgt: string, src: string): string {
  return `${BINDINGS_ROOT}/${encodeURIComponent(tgt)}/${encodeURIComponent(src)}`;
}

export const FOLLOWING_ROOT = 'msgflo/following';

/**
 * Where a reader of `tgt` says it now follows `src` (non-retained): lets whoever recorded the binding wait until
 * the edge really carries messages (nothing sent to `src` before that reaches `tgt` on MQTT).
 */
export function followingTopic(tgt: string, src: string): string {
  return `${FOLLOWING_ROOT}/${encodeURIComponent(tgt)}/${encodeURIComponent(src)}`;
}

export const INSTANCES_ROOT = 'msgflo/instances';

/**
 * Where a process that takes a kept session (client id `clientId`) says so (non-retained): another process still
 * using that client id learns that it lost the session and stops taking it back.
 */
export function instanceTopic(clientId: string): string {
  return `${INSTANCES_ROOT}/${encodeURIComponent(clientId)}`;
}

/** The records whose target is `tgt` (what a subscriber of `tgt` follows). */
export function bindingRecordsFilter(tgt: string): string {
  return `${BINDINGS_ROOT}/${encodeURIComponent(tgt)}/+`;
}

/** A topic under `filter`'s level (`msgflo/bindings/<tgt>/…` or `msgflo/bindings/…`) for a sync marker. */
export function markerTopic(recordsFilter: string, token: string): string {
  const base = recordsFilter.replace(/\/[+#]$/, '');
  return base === BINDINGS_ROOT ? `${BINDINGS_ROOT}/~marker/${token}` : `${base}/~marker-${token}`;
}

/** `msgflo/bindings/<tgt>/<src>` → `{tgt, src}` (decoded), or undefined for any other topic. */
export function parseBindingRecordTopic(topic: string): { tgt: string; src: string } | undefined {
  const levels = topic.split('/');
  if (levels.length !== 4 || `${levels[0]}/${levels[1]}` !== BINDINGS_ROOT) return undefined;
  try {
    return { tgt: decodeURIComponent(levels[2]!), src: decodeURIComponent(levels[3]!) };
  } catch {
    return undefined;
  }
}

/** What is stored in a binding record: the binding, plus what MQTT followers need to know. */
export interface BindingRecord extends Binding {
  /** A bridge forwards src→tgt (added with `{bridge: true}`): MQTT 3.1.1 followers then read `tgt` only. */
  bridged?: boolean;
  /** Set on the helper record that sends `dead-<tgt>` to a roundrobin binding's deadletter queue. */
  deadletterOf?: string;
}

const BINDING_TYPES: readonly BindingType[] = ['pubsub', 'roundrobin'];

export type RecordEvent =
  | { kind: 'marker'; token: string }
  | { kind: 'set'; tgt: string; src: string; record: BindingRecord }
  | { kind: 'delete'; tgt: string; src: string }
  | { kind: 'invalid'; reason: string };

/** Interpret a message received on a binding-record topic. */
export function parseRecordMessage(topic: string, payload: Buffer): RecordEvent {
  const marker = markerToken(payload);
  if (marker !== undefined) return { kind: 'marker', token: marker };
  const where = parseBindingRecordTopic(topic);
  if (!where) return { kind: 'invalid', reason: `not a binding record topic: ${topic}` };
  if (payload.length === 0) return { kind: 'delete', ...where };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return { kind: 'invalid', reason: `record ${topic} is not JSON` };
  }
  const record = toRecord(value);
  if (!record) return { kind: 'invalid', reason: `record ${topic} is not a binding` };
  if (record.tgt !== where.tgt || record.src !== where.src) {
    return { kind: 'invalid', reason: `record ${topic} names ${record.src} -> ${record.tgt}` };
  }
  return { kind: 'set', ...where, record };
}

function toRecord(value: unknown): BindingRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.src !== 'string' || typeof v.tgt !== 'string' || !v.src || !v.tgt) return undefined;
  const type = BINDING_TYPES.includes(v.type as BindingType) ? (v.type as BindingType) : 'pubsub';
  const record: BindingRecord = { type, src: v.src, tgt: v.tgt };
  if (typeof v.deadletter === 'string' && v.deadletter) record.deadletter = v.deadletter;
  if (v.bridged === true) record.bridged = true;
  if (typeof v.deadletterOf === 'string') record.deadletterOf = v.deadletterOf;
  return record;
}

export function encodeRecord(record: BindingRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

export function encodeMarker(token: string): Buffer {
  return Buffer.from(JSON.stringify({ [MARKER_KEY]: token }));
}

function markerToken(payload: Buffer): string | undefined {
  // Cheap test first: records are small JSON objects, markers start with this exact key.
  if (payload.length === 0 || payload.length > 200 || !payload.includes(MARKER_KEY)) return undefined;
  try {
    const v = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    return typeof v[MARKER_KEY] === 'string' ? v[MARKER_KEY] : undefined;
  } catch {
    return undefined;
  }
}

/** `$share/<group>/<topic>` for a shared subscription. */
export function sharedFilter(group: string, topic: string): string {
  return `$share/${group}/${topic}`;
}

/** The filter that topics are matched against: `$share/<group>/<f>` → `f`. */
export function matchingFilter(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? filter : rest.slice(slash + 1);
}

/** Whether `topic` matches the MQTT topic filter `filter` (`+` one level, `#` the rest; wildcards skip `$` topics). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if ((f[0] === '+' || f[0] === '#') && topic.startsWith('$')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether some topic matches both filters (conservative: true when unsure). */
export function filtersOverlap(a: string, b: string): boolean {
  const x = matchingFilter(a).split('/');
  const y = matchingFilter(b).split('/');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return false;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
  return true;
}

/** MQTT forbids wildcards in topic names and empty names; a queue must be a valid topic name. */
export function validTopicName(name: string): boolean {
  return name.length > 0 && !/[+#\u0000]/.test(name) && Buffer.byteLength(name) <= 65535;
}

/** Throw InvalidArgumentError (MSGFLO_ERR_USAGE) unless `name` can be a queue: a valid MQTT topic name. */
export function assertTopic(name: string): void {
  if (!validTopicName(name)) {
    throw new InvalidArgumentError(
      `'${name}' cannot be an MQTT topic (empty, or contains + # or NUL)`,
      'Name queues (roles and ports) without the MQTT wildcards + and #.',
    );
  }
}
