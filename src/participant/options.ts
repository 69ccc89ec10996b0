/**
 * What a Participant is given (options), what it tells (events), and the one heartbeat rule: MSGFLO_HEARTBEAT (or
 * --heartbeat), else MSGFLO_DISCOVERY_PERIOD/2.2 as msgflo, else 5 s.
 */
import type { MsgfloError } from '../errors.js';
import { heartbeatForPeriod } from '../protocol/naming.js';
import { DEFAULT_HEARTBEAT_SECONDS, type Env, type Settings, readSetting } from '../settings.js';
import type { Clock } from '../util/clock.js';

export const LIBRARY_ID = 'msgflo-ts@0.1.0';

export { DEFAULT_HEARTBEAT_SECONDS };

export interface ParticipantOptions {
  role: string;
  /** Participant id (default `<role>-<uuid>`, as msgflo). */
  id?: string;
  /** Seconds between heartbeats (discovery re-sends). Default, from `env`: MSGFLO_HEARTBEAT, else MSGFLO_DISCOVERY_PERIOD/2.2, else 5. */
  heartbeat?: number;
  /** Inputs in flight per inport (AMQP prefetch). Default 50. */
  prefetch?: number;
  /** An input whose handler has not finished after this many ms is dead-lettered. Default 60000. */
  handlerTimeoutMs?: number;
  /** How long stop() waits for in-flight inputs. Default 10000 ms. */
  drainTimeoutMs?: number;
  clock?: Clock;
  /** Where MSGFLO_HEARTBEAT, MSGFLO_DISCOVERY_PERIOD, MSGFLO_SPY and MSGFLO_TRACE are read (default process.env). */
  env?: Env;
  /**
   * Spy/trace on the snoop channel from the start (default: MSGFLO_SPY / MSGFLO_TRACE, else off). Watchers
   * (msgflo-trace, the runtime's trace:start) can switch them on at run time anyway.
   */
  snoop?: { spy?: boolean; trace?: boolean };
  /**
   * How long what is sent outside broker inputs (sources) is held, after the announcement, when no coordinator says
   * the edges are bound (see StartGate). Default: MSGFLO_START_WAIT (seconds), else 5000. 0: never held.
   */
  startWaitMs?: number;
}

/** The heartbeat the settings ask for: MSGFLO_HEARTBEAT (or --heartbeat), else MSGFLO_DISCOVERY_PERIOD/2.2, else 5. */
export function heartbeatOf(settings: Pick<Settings, 'heartbeat' | 'discoveryPeriod'>): number {
  if (settings.heartbeat !== undefined) return settings.heartbeat;
  if (settings.discoveryPeriod !== undefined) return heartbeatForPeriod(settings.discoveryPeriod);
  return DEFAULT_HEARTBEAT_SECONDS;
}

/** `options.heartbeat` when it is a number of seconds > 0, else what the settings in `options.env` ask for. */
export function heartbeatSeconds(options: { heartbeat?: number; env?: Env }): number {
  if (options.heartbeat && options.heartbeat > 0) return options.heartbeat;
  const env = options.env ?? process.env;
  return heartbeatOf({ heartbeat: readSetting(env, 'heartbeat'), discoveryPeriod: readSetting(env, 'discoveryPeriod') });
}

export interface ParticipantEvents {
  /** Every output, also those of hidden ports. */
  data: [port: string, data: unknown];
  /** An input that failed (it was dead-lettered). */
  failed: [port: string, error: MsgfloError];
  /** Problems outside any input (heartbeat failed, late sends failed…). */
  error: [error: Error];
}

