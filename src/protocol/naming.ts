/** msgflo queue naming: `<role>.<PORT>` with the port upper-cased; dead letters in `dead-<queue>`. */
export function queueName(role: string, port: string): string {
  return `${role}.${port.toUpperCase()}`;
}

export function deadLetterName(queue: string): string {
  return `dead-${queue}`;
}

/** The queue/topic on which participants announce themselves. */
export const DISCOVERY_QUEUE = 'fbp';

/** msgflo's default discovery period (seconds); participants resend every period/2.2. */
export const LEGACY_DISCOVERY_PERIOD = 60;

/** msgflo's heartbeat rule: a participant re-announces itself every discovery period / 2.2 seconds. */
export function heartbeatForPeriod(periodSeconds: number): number {
  return periodSeconds / 2.2;
}

/** Seconds between heartbeats of a msgflo-era participant that does not state its interval (60/2.2 ≈ 27). */
export const LEGACY_HEARTBEAT_SECONDS = heartbeatForPeriod(LEGACY_DISCOVERY_PERIOD);

/** Heartbeats a participant may miss before the coordinator expires it. */
export const MISSED_HEARTBEATS_TO_EXPIRE = 3;
