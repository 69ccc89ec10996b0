/**
 * Run as a child process by the runtime: `node introspect.js FILE...` imports each participant module and prints,
 * as one JSON object on stdout, the discovery payload each would announce (ports, label, icon), without
 * connecting to anything. Module code runs here, never in the runtime's own process.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkDefinition, type ParticipantDefinition } from '../participant/definition.js';
import { Participant } from '../participant/participant.js';
import type { Transport } from '../transport/types.js';

export type IntrospectResult = Record<string, { info?: unknown; error?: string }>;

async function describe(file: string): Promise<{ info?: unknown; error?: string }> {
  try {
    const mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
    const def = (mod.default ?? mod.participant) as unknown;
    checkDefinition(def);
    // info() never touches the transport: a placeholder is enough to build the discovery payload.
    const participant = new Participant(def as ParticipantDefinition, {} as Transport, { role: 'introspect', env: {} });
    return { info: participant.info() };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
}

async function main(files: string[]): Promise<void> {
  if (files.some((f) => /\.[cm]?ts$/.test(f))) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const out: IntrospectResult = {};
  for (const file of files) out[file] = await describe(file);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
