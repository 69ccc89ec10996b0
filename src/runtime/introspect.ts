/**
 * Read participant files for the ports they define: each module is imported and its definition described with
 * `describeDefinition` (no transport, nothing started). The runtime runs this in a child process (see
 * introspect-main.ts), so module code never runs in the runtime's own process.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkDefinition } from '../participant/definition.js';
import { describeDefinition } from '../participant/ports.js';

export type IntrospectResult = Record<string, { info?: unknown; error?: string }>;

/** The ports, label and icon a participant file's definition announces (as role `introspect`), or why not. */
export async function introspectFile(file: string): Promise<{ info?: unknown; error?: string }> {
  try {
    const mod = (await import(pathToFileURL(path.resolve(file)).href)) as Record<string, unknown>;
    const def = (mod.default ?? mod.participant) as unknown;
    checkDefinition(def);
    return { info: describeDefinition(def, 'introspect') };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  }
}

/** Every file's result, by file name. TypeScript files are read through tsx. */
export async function introspectFiles(files: readonly string[]): Promise<IntrospectResult> {
  if (files.some((f) => /\.[cm]?ts$/.test(f))) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const out: IntrospectResult = {};
  for (const file of files) out[file] = await introspectFile(file);
  return out;
}
