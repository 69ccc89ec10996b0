/**
 * Settings: every `MSGFLO_*` environment variable, the command-line flag that sets the same thing, what it
 * accepts, its default, what it means and which commands read it — one table, `SETTINGS`. docs/configuration.md
 * shows the same table to users; spec/settings.spec.ts keeps the two in sync.
 *
 * - Read once, at start: a command calls `loadSettings(env, flags)` before it does anything else and uses the
 *   frozen result. Library code that takes an `env` (a Participant, a transport) reads the one setting it needs
 *   with `readSetting(env, key)`. Both are pure: the environment is passed in.
 * - Precedence: a flag beats the environment, the environment beats the default.
 * - An empty value (or only whitespace) counts as unset, in a flag as in the environment; surrounding whitespace
 *   is ignored. Everything else must be accepted: a value that is not is a SettingError (MSGFLO_ERR_USAGE, exit
 *   code 2 in a command) naming the variable or flag and what it accepts. Nothing falls back silently.
 * - `settingsEnv(values)` is the other direction: the variables that hand settings to a child process.
 */
import { SettingError, maskUrl } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Every setting, parsed. `undefined`: not set, and no default (the reader decides, e.g. an embedded broker). */
export interface Settings {
  readonly broker: string | undefined;
  /** Seconds between heartbeats, as set; unset, a participant derives it from `discoveryPeriod`. */
  readonly heartbeat: number | undefined;
  readonly discoveryPeriod: number | undefined;
  readonly spy: boolean;
  readonly trace: boolean;
  /** Network keys, the current one first. Each is checked when a transport is made (MSGFLO_ERR_KEY). */
  readonly key: readonly string[] | undefined;
  readonly keyFile: string | undefined;
  readonly mqttSessionExpiry: number;
  readonly startWait: number;
  readonly instance: string | undefined;
  readonly parentPid: number | undefined;
  readonly runtimeId: string | undefined;
  readonly runtimeSecret: string | undefined;
}

export type SettingKey = keyof Settings;

/** Marks a text a setting does not accept. */
const INVALID: unique symbol = Symbol('invalid');

export interface SettingSpec<T> {
  readonly variable: `MSGFLO_${string}`;
  /** The command-line flag that sets the same thing, where a command has one. */
  readonly flag?: `--${string}`;
  /** What it accepts, as the end of "<variable> must be …". */
  readonly accepts: string;
  /** The default, for people. */
  readonly defaultText: string;
  readonly description: string;
  /** The commands (and library entry points) that read it. */
  readonly readBy: readonly string[];
  /** Set by msgflo-ts itself for the processes it starts; users rarely set it. */
  readonly internal?: boolean;
  /** The value of a (trimmed, non-empty) text, or INVALID. */
  parse(text: string): T | typeof INVALID;
  /** The value when unset. */
  readonly fallback: T;
  /** Formats a value for a child's environment (default String). */
  format?(value: NonNullable<T>): string;
  /** How a refused value is shown in the error (default: as given). */
  show?(text: string): string;
}

/** Default seconds between heartbeats of msgflo-ts participants. */
export const DEFAULT_HEARTBEAT_SECONDS = 5;
/** Seconds an MQTT broker keeps an instance's session after its connection ends, by default. */
export const DEFAULT_MQTT_SESSION_EXPIRY_S = 3600;
/** Seconds a participant holds its sources' sends when no coordinator says their edges are bound. */
export const DEFAULT_START_WAIT_SECONDS = 5;
/** The largest MQTT 5 session expiry interval (a four-byte integer; this one means "never"). */
const MAX_SESSION_EXPIRY_S = 0xffff_ffff;

/** The words a boolean setting or flag accepts. */
export const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = {
  true: true,
  yes: true,
  on: true,
  '1': true,
  false: false,
  no: false,
  off: false,
  '0': false,
};

const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/;
const INSTANCE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function positiveSeconds(text: string): number | typeof INVALID {
  const n = Number(text);
  return DECIMAL.test(text) && n > 0 && Number.isFinite(n) ? n : INVALID;
}

function boolean(text: string): boolean | typeof INVALID {
  return BOOLEAN_WORDS[text.toLowerCase()] ?? INVALID;
}

function matching(pattern: RegExp): (text: string) => string | typeof INVALID {
  return (text) => (pattern.test(text) ? text : INVALID);
}


const hidden = (): string => '(not shown)';

/**
 * The table. Its order is the order of docs/configuration.md. `satisfies` keeps each entry's own type while
 * checking that every key of Settings has exactly one entry of the right value type.
 */
export const SETTINGS = {
  broker: {
    variable: 'MSGFLO_BROKER',
    flag: '--broker',
    accepts: 'a broker URL: amqp://, amqps://, mqtt://, mqtts://, ws://, wss:// or direct://NAME',
    defaultText: 'none: msgflo and msgflo-setup start an embedded MQTT broker, the other commands refuse to start',
    description: 'The broker every participant and command of a network connects to. The scheme is checked when connecting (MSGFLO_ERR_BROKER_URL).',
    readBy: ['msgflo', 'msgflo-setup', 'msgflo-participant', 'msgflo-send-message', 'msgflo-dump-message', 'msgflo-register', 'msgflo-trace'],
    parse: (text) => (URL.canParse(text) ? text : INVALID),
    fallback: undefined,
    show: maskUrl,
  },
  heartbeat: {
    variable: 'MSGFLO_HEARTBEAT',
    flag: '--heartbeat',
    accepts: 'a number of seconds greater than 0',
    defaultText: `MSGFLO_DISCOVERY_PERIOD / 2.2, else ${DEFAULT_HEARTBEAT_SECONDS}`,
    description: 'Seconds between the discovery messages (heartbeats) a participant sends; the coordinator forgets a participant that misses three.',
    readBy: ['msgflo-participant', 'Participant (library)'],
    parse: positiveSeconds,
    fallback: undefined,
  },
  discoveryPeriod: {
    variable: 'MSGFLO_DISCOVERY_PERIOD',
    accepts: 'a number of seconds greater than 0',
    defaultText: 'unset',
    description: "msgflo's discovery period: a participant without MSGFLO_HEARTBEAT sends a heartbeat every period / 2.2 seconds, as msgflo-era participants do.",
    readBy: ['msgflo-participant', 'Participant (library)'],
    parse: positiveSeconds,
    fallback: undefined,
  },
  spy: {
    variable: 'MSGFLO_SPY',
    flag: '--spy',
    accepts: 'true or false (also 1/0, yes/no, on/off)',
    defaultText: 'false',
    description: "Publish the chart's spy lines on the snoop channel from the start (watchers such as msgflo-trace switch them on at run time anyway).",
    readBy: ['msgflo-participant', 'Participant (library)'],
    parse: boolean,
    fallback: false,
    format: String,
  },
  trace: {
    variable: 'MSGFLO_TRACE',
    flag: '--trace',
    accepts: 'true or false (also 1/0, yes/no, on/off)',
    defaultText: 'false',
    description: "Publish the chart's trace lines on the snoop channel from the start.",
    readBy: ['msgflo-participant', 'Participant (library)'],
    parse: boolean,
    fallback: false,
    format: String,
  },
  key: {
    variable: 'MSGFLO_KEY',
    accepts: 'network keys separated by commas, the current one first (each 32 bytes as base64 or 64 hex digits)',
    defaultText: 'unset: MSGFLO_KEY_FILE, else an unkeyed network',
    description:
      'The network key: message bodies and snoop lines encrypted, discovery messages signed. Earlier keys after the first are still accepted during a rotation. Wins over MSGFLO_KEY_FILE. A malformed key is MSGFLO_ERR_KEY.',
    readBy: ['every command that connects', 'connectTransport (library)'],
    parse: (text) => {
      const keys = text.split(',').map((k) => k.trim());
      return keys.every((k) => k !== '') ? Object.freeze(keys) : INVALID;
    },
    fallback: undefined,
    format: (keys) => keys.join(','),
    show: hidden,
  },
  keyFile: {
    variable: 'MSGFLO_KEY_FILE',
    accepts: 'the path of a file with one network key per line, the current one first (# starts a comment)',
    defaultText: 'unset: an unkeyed network',
    description: 'Where to read the network keys when MSGFLO_KEY is unset. An unreadable or empty file is MSGFLO_ERR_KEY.',
    readBy: ['every command that connects', 'connectTransport (library)'],
    parse: (text) => text,
    fallback: undefined,
  },
  mqttSessionExpiry: {
    variable: 'MSGFLO_MQTT_SESSION_EXPIRY',
    accepts: `a whole number of seconds from 0 to ${MAX_SESSION_EXPIRY_S}`,
    defaultText: String(DEFAULT_MQTT_SESSION_EXPIRY_S),
    description:
      'MQTT, a participant with an instance id: how long the broker keeps its session (and what arrives for it) after it disconnects. 0: the session ends with the connection.',
    readBy: ['msgflo-participant', 'MqttTransport (library)'],
    parse: (text) => {
      const n = Number(text);
      return /^\d+$/.test(text) && n <= MAX_SESSION_EXPIRY_S ? n : INVALID;
    },
    fallback: DEFAULT_MQTT_SESSION_EXPIRY_S,
    format: String,
  },
  startWait: {
    variable: 'MSGFLO_START_WAIT',
    accepts: 'a number of seconds ≥ 0 (0: sources send at once)',
    defaultText: String(DEFAULT_START_WAIT_SECONDS),
    description:
      "A participant's sources hold what they send until a coordinator says their edges are bound, an input arrives, or this many seconds pass (no coordinator).",
    readBy: ['msgflo-participant', 'Participant (library)'],
    parse: (text) => {
      const n = Number(text);
      return Number.isFinite(n) && n >= 0 ? n : INVALID;
    },
    fallback: DEFAULT_START_WAIT_SECONDS,
    format: String,
  },
  instance: {
    variable: 'MSGFLO_INSTANCE',
    flag: '--instance',
    accepts: "1-64 letters, digits, '_', '.' or '-'",
    defaultText: 'unset: a clean MQTT session that ends with the connection',
    description:
      'Which instance of its role a participant is, the same across its restarts. On MQTT the broker keeps its session (MSGFLO_MQTT_SESSION_EXPIRY). msgflo and msgflo-setup set it (0) for what they start.',
    readBy: ['msgflo-participant'],
    parse: matching(INSTANCE_ID),
    fallback: undefined,
  },
  parentPid: {
    variable: 'MSGFLO_PARENT_PID',
    accepts: 'a process id (a whole number greater than 0)',
    defaultText: 'unset',
    description: 'Set by msgflo on the processes it starts: its pid. Such a process stops when that msgflo is gone, so no orphan keeps running.',
    readBy: ['every command'],
    internal: true,
    parse: (text) => (/^\d+$/.test(text) && Number(text) > 0 && Number.isSafeInteger(Number(text)) ? Number(text) : INVALID),
    fallback: undefined,
    format: String,
  },
  runtimeId: {
    variable: 'MSGFLO_RUNTIME_ID',
    flag: '--runtime-id',
    accepts: 'a UUID (8-4-4-4-12 hex digits)',
    defaultText: 'a random UUID',
    description: 'The id of the FBP runtime, as Flowhub shows and stores it.',
    readBy: ['msgflo'],
    parse: matching(UUID),
    fallback: undefined,
  },
  runtimeSecret: {
    variable: 'MSGFLO_RUNTIME_SECRET',
    flag: '--secret',
    accepts: 'any text',
    defaultText: 'a random secret, printed in the Flowhub URL',
    description: 'The secret every FBP runtime protocol client (Flowhub, fbp-spec) must send.',
    readBy: ['msgflo'],
    parse: (text) => text,
    fallback: undefined,
    show: hidden,
  },
} as const satisfies { readonly [K in SettingKey]: SettingSpec<Settings[K]> };

/** Keys of the settings that a flag can set too. */
export type FlagKey = { [K in SettingKey]: (typeof SETTINGS)[K] extends { flag: string } ? K : never }[SettingKey];

/** Flag values as node:util parseArgs returns them (a string, or true for a boolean flag), by setting. */
export type Flags = { readonly [K in FlagKey]?: string | boolean | undefined };

function given(value: string | boolean | undefined): value is string | boolean {
  return value !== undefined && (typeof value === 'boolean' || value.trim() !== '');
}

/** The table seen through the common shape (SETTINGS keeps each entry's literal types). */
const TABLE: { readonly [K in SettingKey]: SettingSpec<Settings[K]> } = SETTINGS;

function spec<K extends SettingKey>(key: K): SettingSpec<Settings[K]> {
  return TABLE[key];
}

function parseFrom<K extends SettingKey>(key: K, source: string, raw: string | boolean): Settings[K] {
  const s = spec(key);
  const text = String(raw).trim();
  const value = s.parse(text);
  if (value === INVALID) throw new SettingError({ variable: s.variable, flag: s.flag, accepts: s.accepts }, source, s.show ? s.show(text) : text);
  return value;
}

/** One setting: its flag if given, else its variable in `env` if set, else its default. */
export function readSetting<K extends SettingKey>(env: Env, key: K, flags: Flags = {}): Settings[K] {
  const s = spec(key);
  const flag = (flags as Partial<Record<SettingKey, string | boolean>>)[key];
  if (s.flag !== undefined && given(flag)) return parseFrom(key, s.flag, flag);
  const value = env[s.variable];
  if (given(value)) return parseFrom(key, s.variable, value);
  return s.fallback;
}

/**
 * Every setting, read and checked at once (what a command does first): a frozen object. Throws a SettingError
 * for the first value that is not accepted.
 */
export function loadSettings(env: Env, flags: Flags = {}): Settings {
  const settings: Partial<Record<SettingKey, unknown>> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) settings[key] = readSetting(env, key, flags);
  return Object.freeze(settings) as Settings;
}

/**
 * The environment that hands these settings to a child process. `null` unsets a setting the child would
 * otherwise inherit (an empty value counts as unset).
 */
export function settingsEnv(values: { readonly [K in SettingKey]?: Settings[K] | null }): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(values) as SettingKey[]) {
    const value = values[key];
    if (value === undefined) continue;
    const s = spec(key);
    env[s.variable] = value === null ? '' : s.format ? s.format(value as never) : String(value);
  }
  return env;
}
