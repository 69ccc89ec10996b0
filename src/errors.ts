/**
 * Every error a user can cause, with a stable `MSGFLO_ERR_*` code and a message that says how to fix it.
 * The "Errors" table in docs/errors.md lists every code; `spec/errors.spec.ts` keeps the two in sync.
 */

export const ErrorCodes = {
  GRAPH_PARSE: 'MSGFLO_ERR_GRAPH_PARSE',
  GRAPH_INVALID: 'MSGFLO_ERR_GRAPH_INVALID',
  GRAPH_NOT_FOUND: 'MSGFLO_ERR_GRAPH_NOT_FOUND',
  UNKNOWN_COMPONENT: 'MSGFLO_ERR_UNKNOWN_COMPONENT',
  LIBRARY_INVALID: 'MSGFLO_ERR_LIBRARY_INVALID',
  DISCOVERY_INVALID: 'MSGFLO_ERR_DISCOVERY_INVALID',
  BAD_JSON: 'MSGFLO_ERR_BAD_JSON',
  BAD_ENCODING: 'MSGFLO_ERR_BAD_ENCODING',
  SCHEMA: 'MSGFLO_ERR_SCHEMA',
  QUEUE_NOT_FOUND: 'MSGFLO_ERR_QUEUE_NOT_FOUND',
  BROKER_UNREACHABLE: 'MSGFLO_ERR_BROKER_UNREACHABLE',
  BROKER_AUTH: 'MSGFLO_ERR_BROKER_AUTH',
  BROKER_URL: 'MSGFLO_ERR_BROKER_URL',
  TRANSPORT_CLOSED: 'MSGFLO_ERR_TRANSPORT_CLOSED',
  INSTANCE_CONFLICT: 'MSGFLO_ERR_INSTANCE_CONFLICT',
  PARTICIPANT_TIMEOUT: 'MSGFLO_ERR_PARTICIPANT_TIMEOUT',
  PARTICIPANT_DEFINITION: 'MSGFLO_ERR_PARTICIPANT_DEFINITION',
  PROCESS_FAILED: 'MSGFLO_ERR_PROCESS_FAILED',
  HANDLER: 'MSGFLO_ERR_HANDLER',
  UNKNOWN_PORT: 'MSGFLO_ERR_UNKNOWN_PORT',
  USAGE: 'MSGFLO_ERR_USAGE',
  TIMEOUT: 'MSGFLO_ERR_TIMEOUT',
  DECRYPT: 'MSGFLO_ERR_DECRYPT',
  KEY: 'MSGFLO_ERR_KEY',
  PROTOCOL: 'MSGFLO_ERR_PROTOCOL',
  RUNTIME_SECRET: 'MSGFLO_ERR_RUNTIME_SECRET',
  RUNTIME_LISTEN: 'MSGFLO_ERR_RUNTIME_LISTEN',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base of all msgflo-ts errors: carries a stable code and, optionally, a hint on how to fix it. */
export class MsgfloError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(options?.hint ? `${message}\n  → ${options.hint}` : message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }
  /** `code: message`, the form printed by CLIs and put in dead-letter headers. */
  toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export interface SourceLocation {
  file?: string | undefined;
  line: number;
  column: number;
}

export class GraphParseError extends MsgfloError {
  readonly location: SourceLocation;
  constructor(location: SourceLocation, detail: string, options?: { cause?: unknown }) {
    const where = `${location.file ?? '<graph>'}:${location.line}:${location.column}`;
    super(ErrorCodes.GRAPH_PARSE, `${where}: ${detail}`, {
      ...options,
      hint: 'Fix the graph syntax at that position (see https://flowbased.github.io/fbp/ for the .fbp language).',
    });
    this.location = location;
  }
}

export class GraphInvalidError extends MsgfloError {
  readonly problems: string[];
  constructor(file: string | undefined, problems: string[]) {
    super(ErrorCodes.GRAPH_INVALID, `${file ?? '<graph>'}: invalid graph:\n  - ${problems.join('\n  - ')}`, {
      hint: 'Every edge, IIP and exported port must name a node that the graph declares.',
    });
    this.problems = problems;
  }
}

export class GraphNotFoundError extends MsgfloError {
  constructor(file: string, options?: { cause?: unknown }) {
    super(ErrorCodes.GRAPH_NOT_FOUND, `Cannot read graph file '${file}'`, {
      ...options,
      hint: 'Check the path; graphs are .fbp or .json (fbp-graph) files.',
    });
  }
}

export class UnknownComponentError extends MsgfloError {
  readonly component: string;
  readonly known: string[];
  constructor(component: string, role: string | undefined, known: string[]) {
    const forRole = role ? ` (used by node '${role}')` : '';
    super(ErrorCodes.UNKNOWN_COMPONENT, `Unknown component '${component}'${forRole}. Known components: ${known.length ? known.join(', ') : '(none)'}`, {
      hint: 'Add it to "msgflo.components" in package.json (or --library FILE), put a participant file in participants/, or --ignore the node.',
    });
    this.component = component;
    this.known = known;
  }
}

export class LibraryInvalidError extends MsgfloError {
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super(ErrorCodes.LIBRARY_INVALID, `Component library '${file}': ${detail}`, {
      ...options,
      hint: 'The library is a JSON file with a "msgflo" key: {"components": {name: command}, "handlers": {".ext": command}, "variables": {...}}.',
    });
  }
}

export class DiscoveryInvalidError extends MsgfloError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(ErrorCodes.DISCOVERY_INVALID, `Invalid discovery message: ${problems.join('; ')}`, {
      hint: 'A discovery message is {"protocol":"discovery","command":"participant","payload":{id, role, component, inports, outports}}.',
    });
    this.problems = problems;
  }
}

export class BadJsonError extends MsgfloError {
  constructor(what: string, options?: { cause?: unknown }) {
    const detail = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(ErrorCodes.BAD_JSON, `${what} is not valid JSON${detail}`, {
      ...options,
      hint: "Quote JSON for the shell, e.g. --json '{\"a\": 1}'.",
    });
  }
}

/** A body that is not valid UTF-8: passed on as it is to nobody (it would be altered by decoding), dead-lettered. */
export class BadEncodingError extends MsgfloError {
  constructor(queue: string) {
    super(ErrorCodes.BAD_ENCODING, `A message on '${queue}' is not valid UTF-8 text (so not JSON either)`, {
      hint: 'Send JSON or UTF-8 text; to carry bytes, encode them (e.g. base64 in a JSON string). The message is kept, unaltered, in the dead-letter queue.',
    });
  }
}

export class SchemaError extends MsgfloError {
  readonly problems: string[];
  constructor(what: string, problems: string[]) {
    super(ErrorCodes.SCHEMA, `${what} does not match its schema: ${problems.join('; ')}`, {
      hint: 'Send data of the type the port declares.',
    });
    this.problems = problems;
  }
}

export class QueueNotFoundError extends MsgfloError {
  readonly queue: string;
  constructor(queue: string, options?: { cause?: unknown }) {
    super(ErrorCodes.QUEUE_NOT_FOUND, `Queue '${queue}' does not exist on the broker`, {
      ...options,
      hint: 'Start the participant that owns it first, or check the name: queues are <role>.<PORT> (e.g. repeat.IN).',
    });
    this.queue = queue;
  }
}

/** Hide the password of a broker URL so that it can be logged. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}

export class BrokerUnreachableError extends MsgfloError {
  constructor(url: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? ` (${options.cause.message})` : '';
    super(ErrorCodes.BROKER_UNREACHABLE, `Cannot connect to broker ${maskUrl(url)}${reason}`, {
      ...options,
      hint: 'Check that the broker runs and that the URL (--broker or MSGFLO_BROKER) is right.',
    });
  }
}

export class BrokerAuthError extends MsgfloError {
  constructor(url: string, options?: { cause?: unknown }) {
    super(ErrorCodes.BROKER_AUTH, `Broker ${maskUrl(url)} refused the credentials`, {
      ...options,
      hint: 'Put the right user and password in the URL, e.g. amqp://user:password@host:5672.',
    });
  }
}

export class BrokerUrlError extends MsgfloError {
  constructor(url: string, detail: string) {
    super(ErrorCodes.BROKER_URL, `Unsupported broker URL '${maskUrl(url)}': ${detail}`, {
      hint: 'Use amqp://, amqps://, mqtt://, mqtts://, ws://, wss:// or direct://NAME.',
    });
  }
}

export class TransportClosedError extends MsgfloError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(ErrorCodes.TRANSPORT_CLOSED, `Cannot ${what}: the broker connection is closed`, {
      ...options,
      hint: 'The connection was closed or lost; reconnect (long-running processes do this themselves).',
    });
  }
}

/**
 * MQTT: another connection took this one's session (same client id: same role and instance id). The broker
 * disconnected us; reconnecting would only take it back and start a tug of war, so we stop.
 */
export class InstanceConflictError extends MsgfloError {
  readonly clientId: string;
  constructor(clientId: string, options?: { cause?: unknown }) {
    super(ErrorCodes.INSTANCE_CONFLICT, `Another process connected to the broker as '${clientId}' and took over this one's session`, {
      ...options,
      hint: 'Give every instance of a role its own instance id (--instance N / MSGFLO_INSTANCE), or stop the other process.',
    });
    this.clientId = clientId;
  }
}

export class ParticipantTimeoutError extends MsgfloError {
  readonly roles: string[];
  constructor(roles: string[], seconds: number) {
    super(ErrorCodes.PARTICIPANT_TIMEOUT, `No discovery message from ${roles.map((r) => `'${r}'`).join(', ')} within ${seconds} s`, {
      hint: 'Start those participants (or use --participants), check that they use the same broker, or raise --timeout.',
    });
    this.roles = roles;
  }
}

export class ParticipantDefinitionError extends MsgfloError {
  constructor(detail: string, options?: { cause?: unknown; hint?: string }) {
    super(ErrorCodes.PARTICIPANT_DEFINITION, `Invalid participant definition: ${detail}`, {
      ...options,
      hint: options?.hint ?? 'A participant module exports (default) defineParticipant({component, inports, outports, process}).',
    });
  }
}

export class TimeoutError extends MsgfloError {
  constructor(what: string, seconds: number, hint: string) {
    super(ErrorCodes.TIMEOUT, `timed out after ${seconds} s: ${what}`, { hint });
  }
}

export class ProcessFailedError extends MsgfloError {
  constructor(role: string, detail: string) {
    super(ErrorCodes.PROCESS_FAILED, `Participant process '${role}' ${detail}`, {
      hint: "Look at the participant's output (prefixed with its role) for the cause.",
    });
  }
}

export class HandlerError extends MsgfloError {
  constructor(role: string, port: string, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    super(ErrorCodes.HANDLER, `Participant '${role}' failed processing a message on '${port}': ${reason}`, options);
  }
}

export class UnknownPortError extends MsgfloError {
  constructor(role: string, port: string, known: string[], direction: 'inport' | 'outport') {
    super(ErrorCodes.UNKNOWN_PORT, `'${role}' has no ${direction} '${port}'. Known: ${known.join(', ') || '(none)'}`, {
      hint: 'Use one of the port names the participant declares (discovery message or definition).',
    });
  }
}

export class UsageError extends MsgfloError {
  constructor(detail: string, command?: string, hint?: string) {
    super(ErrorCodes.USAGE, detail, { hint: hint ?? `Run '${command ?? 'msgflo'} --help' for usage.` });
  }
}

/**
 * A setting (an MSGFLO_* variable, or the flag that sets the same thing) with a value it does not accept
 * (src/settings.ts). A usage error: commands exit with code 2.
 */
export class SettingError extends UsageError {
  /** The variable of the setting, e.g. MSGFLO_HEARTBEAT. */
  readonly variable: string;
  /** What held the refused value: the variable, or the flag (e.g. --heartbeat). */
  readonly source: string;
  readonly accepts: string;
  constructor(setting: { variable: string; flag?: string | undefined; accepts: string }, source: string, shown: string) {
    const fix =
      source === setting.variable
        ? `Set ${setting.variable} to an accepted value or unset it${setting.flag ? ` (${setting.flag} overrides it)` : ''}`
        : `${source} sets what ${setting.variable} sets`;
    super(`${source} must be ${setting.accepts}, got '${shown}'`, undefined, `${fix}; docs/configuration.md lists every setting.`);
    this.variable = setting.variable;
    this.source = source;
    this.accepts = setting.accepts;
  }
}

/**
 * An argument or option of the library API that cannot work (e.g. a queue name that is no MQTT topic, a port the
 * embedded broker must not take). The same code as command-line usage errors: both are the caller's to fix.
 */
export class InvalidArgumentError extends MsgfloError {
  constructor(detail: string, hint: string, options?: { cause?: unknown }) {
    super(ErrorCodes.USAGE, detail, { ...options, hint });
  }
}

/** The broker refused a subscription (MQTT SUBACK failure code), usually because its access control forbids it. */
export class SubscriptionRefusedError extends MsgfloError {
  readonly filter: string;
  readonly reasonCode: number;
  constructor(filter: string, reasonCode: number) {
    super(ErrorCodes.BROKER_AUTH, `Broker refused the subscription to '${filter}' (code ${reasonCode})`, {
      hint: "Allow the URL's user to subscribe to that topic in the broker's access control (ACL), or use a user who may.",
    });
    this.filter = filter;
    this.reasonCode = reasonCode;
  }
}

export class DecryptError extends MsgfloError {
  constructor(detail: string) {
    super(ErrorCodes.DECRYPT, `Message could not be decrypted: ${detail}`, {
      hint: 'Every participant of a keyed network needs the same MSGFLO_KEY.',
    });
  }
}

/** A FBP runtime protocol message the runtime cannot accept (not JSON, not valid, unknown, not supported). */
export class ProtocolError extends MsgfloError {
  constructor(detail: string, hint?: string) {
    super(ErrorCodes.PROTOCOL, detail, {
      hint: hint ?? 'Send {protocol, command, payload} as the FBP runtime protocol 0.8 schemas (npm fbp-protocol) define it.',
    });
  }
}

/** A runtime protocol message without the runtime's secret. */
export class RuntimeSecretError extends MsgfloError {
  constructor() {
    super(ErrorCodes.RUNTIME_SECRET, 'Wrong or missing secret: nothing was done', {
      hint: "Use the secret msgflo printed (the Flowhub URL's secret=…), or the one given with --secret / MSGFLO_RUNTIME_SECRET.",
    });
  }
}

/** The runtime's WebSocket server cannot listen. */
export class RuntimeListenError extends MsgfloError {
  constructor(host: string, port: number, options?: { cause?: unknown }) {
    const reason = options?.cause instanceof Error ? ` (${options.cause.message})` : '';
    super(ErrorCodes.RUNTIME_LISTEN, `Cannot listen for the FBP runtime protocol on ${host}:${port}${reason}`, {
      ...options,
      hint: 'Pick another --port (0: any free port), or stop what uses that port.',
    });
  }
}

/** Turn anything thrown into a one-line reason for logs and dead-letter headers. */
export function reasonOf(err: unknown): string {
  if (err instanceof MsgfloError) return `${err.code}: ${err.message.split('\n')[0]}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Stable code of anything thrown (MSGFLO_ERR_HANDLER for foreign errors). */
export function codeOf(err: unknown): ErrorCode {
  return err instanceof MsgfloError ? err.code : ErrorCodes.HANDLER;
}
