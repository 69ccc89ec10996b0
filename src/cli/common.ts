import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BrokerAuthError, BrokerUrlError, MsgfloError, UsageError, maskUrl } from '../errors.js';
import { BOOLEAN_WORDS, type Settings } from '../settings.js';
import { connectTransport, type TransportOptions } from '../transport/index.js';
import type { Transport } from '../transport/types.js';
import { Backoff, delay } from '../util/backoff.js';
import { type CliIO, EXIT } from './io.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<V> {
  values: V;
  positionals: string[];
}

/**
 * Parse argv strictly. Returns the exit code to return instead when --help was asked (0) or usage is wrong (2,
 * after printing the problem and the usage).
 */
export function parseCli<V>(
  argv: string[],
  options: Options,
  usage: string,
  io: CliIO,
  command: string,
): Parsed<V> | number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr.write(`${command}: ${(err as Error).message}\n\n${usage}\n`);
    return EXIT.USAGE;
  }
  if ((parsed.values as { help?: boolean }).help) {
    io.stdout.write(`${usage}\n`);
    return EXIT.OK;
  }
  return { values: parsed.values as V, positionals: parsed.positionals };
}

/**
 * Print an error the way every CLI does: `CODE: message` plus the hint; returns the exit code for it (2 for a
 * usage error, such as a setting that is not accepted; 1 otherwise).
 */
export function reportError(err: unknown, io: CliIO, command: string): number {
  if (err instanceof MsgfloError) {
    io.stderr.write(`${command}: ${err.code}: ${err.message}\n`);
    return err instanceof UsageError ? EXIT.USAGE : EXIT.FAIL;
  }
  const e = err as Error;
  io.stderr.write(`${command}: ${e?.stack ?? String(err)}\n`);
  return EXIT.FAIL;
}

/** A list option given as `--x a,b --x c` → ['a','b','c']. */
export function listOption(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/**
 * Rewrite `--forever` (alone), `--forever VALUE` and `--no-forever` as `--forever=VALUE`, so that a flag that
 * may or may not carry a value parses strictly.
 */
export function normalizeBooleanFlag(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (arg === `--no-${name}`) {
      out.push(`--${name}=false`);
    } else if (arg === `--${name}`) {
      const next = argv[i + 1];
      if (next !== undefined && next.toLowerCase() in BOOLEAN_WORDS) {
        out.push(`--${name}=${next}`);
        i++;
      } else {
        out.push(`--${name}=true`);
      }
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** A boolean option's value (true/false/yes/no/on/off/1/0); anything else is a usage error. */
export function booleanOption(value: string | undefined, option: string, fallback: boolean, command: string): boolean {
  if (value === undefined) return fallback;
  const b = BOOLEAN_WORDS[value.toLowerCase()];
  if (b === undefined) throw new UsageError(`${option} must be true or false, got '${value}'`, command);
  return b;
}

/** The broker for one-shot commands: they need a configured broker (--broker or MSGFLO_BROKER). */
export function requireBroker(settings: Pick<Settings, 'broker'>, command: string): string {
  if (!settings.broker) {
    throw new UsageError(
      'No broker: give --broker URL or set MSGFLO_BROKER (a running msgflo on its embedded broker prints the URL to use)',
      command,
    );
  }
  return settings.broker;
}

/**
 * Connect, retrying with backoff while the broker is unreachable (long-running processes). Refused credentials,
 * bad URLs, bad keys and settings the transport does not accept (a UsageError) are not retried: they need the user.
 */
export async function connectWithRetry(
  url: string,
  options: TransportOptions & { signal?: AbortSignal; onRetry?: (err: Error, inMs: number) => void },
): Promise<Transport> {
  const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
  for (;;) {
    try {
      return await connectTransport(url, options);
    } catch (err) {
      if (err instanceof BrokerAuthError || err instanceof BrokerUrlError || err instanceof UsageError || (err as MsgfloError)?.code === 'MSGFLO_ERR_KEY' || options.signal?.aborted) {
        throw err;
      }
      const inMs = backoff.next();
      options.onRetry?.(err as Error, inMs);
      await delay(inMs, options.signal);
    }
  }
}

export { maskUrl };
