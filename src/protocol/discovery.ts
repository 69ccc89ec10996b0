import { newAjv, type ErrorObject, type ValidateFunction } from '../util/ajv.js';
import { DiscoveryInvalidError } from '../errors.js';

/** One port as announced in a discovery message (msgflo 0.12 shape). */
export interface PortDefinition {
  id: string;
  type?: string;
  /** Queue/topic of the port; absent for hidden ports (msgflo-nodejs omits those). */
  queue?: string;
  hidden?: boolean;
  description?: string;
  schema?: unknown;
  options?: Record<string, unknown>;
}

/** The payload of a discovery message. */
export interface ParticipantInfo {
  id: string;
  role: string;
  component: string;
  label?: string;
  icon?: string;
  inports: PortDefinition[];
  outports: PortDefinition[];
  /** msgflo-ts: seconds between heartbeats (msgflo-era participants omit it: 27 s is assumed). */
  heartbeat?: number;
  /** msgflo-ts: `msgflo-ts@<version>`; tells the coordinator the participant follows MQTT binding records. */
  library?: string;
  /** msgflo-ts: sent once by a participant that stops gracefully. */
  leaving?: boolean;
  [extra: string]: unknown;
}

export interface DiscoveryMessage {
  protocol: 'discovery';
  command: 'participant';
  payload: ParticipantInfo;
}

const portSchema = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1 },
    type: { type: 'string' },
    queue: { type: 'string', minLength: 1 },
    hidden: { type: 'boolean' },
    description: { type: 'string' },
    options: { type: 'object' },
  },
} as const;

export const discoverySchema = {
  type: 'object',
  required: ['protocol', 'command', 'payload'],
  properties: {
    protocol: { const: 'discovery' },
    command: { const: 'participant' },
    payload: {
      type: 'object',
      required: ['id', 'role', 'component', 'inports', 'outports'],
      properties: {
        id: { type: 'string', minLength: 1 },
        role: { type: 'string', minLength: 1 },
        component: { type: 'string', minLength: 1 },
        label: { type: 'string' },
        icon: { type: 'string' },
        inports: { type: 'array', items: portSchema },
        outports: { type: 'array', items: portSchema },
        heartbeat: { type: 'number', exclusiveMinimum: 0 },
        library: { type: 'string' },
        leaving: { type: 'boolean' },
      },
    },
  },
} as const;

let compiled: ValidateFunction | undefined;
/** The discovery schema's validator, compiled on first use. */
function validator(): ValidateFunction {
  return (compiled ??= newAjv().compile(discoverySchema));
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '(message)';
  if (e.keyword === 'required') return `${at} is missing '${(e.params as { missingProperty: string }).missingProperty}'`;
  if (e.keyword === 'const') return `${at} must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  return `${at} ${e.message ?? 'is invalid'}`;
}

/** Check an untrusted discovery message; throws DiscoveryInvalidError listing every problem. */
export function parseDiscovery(message: unknown): DiscoveryMessage {
  const validate = validator();
  if (!validate(message)) {
    throw new DiscoveryInvalidError((validate.errors ?? []).map(describe));
  }
  return message as unknown as DiscoveryMessage;
}

export function discoveryMessage(payload: ParticipantInfo): DiscoveryMessage {
  return { protocol: 'discovery', command: 'participant', payload };
}
