/**
 * The component sub-protocol: `list` (every component the library and the broker know, then
 * `componentsready`), `getsource` (a participant file, a graph as fbp-graph JSON, or what an announced
 * participant declares, as msgflo-register YAML). `source` (writing code that the runtime would then run) is
 * not offered: the runtime does not advertise `component:setsource`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, UnknownComponentError } from '../../errors.js';
import { graphToJson } from '../../graph/json.js';
import type { ParticipantInfo } from '../../protocol/discovery.js';
import type { Payload, ProtocolHandlers } from '../context.js';
import { requireCjs } from '../../util/cjs.js';
import { GraphCommandError } from '../graph-doc.js';

/** `ns/Name` → {library: 'ns', name: 'Name'}; `Name` → {name: 'Name'}. */
function split(name: string): { library?: string; name: string } {
  const i = name.lastIndexOf('/');
  return i > 0 ? { library: name.slice(0, i), name: name.slice(i + 1) } : { name };
}

/** An announced participant as msgflo-register describes a foreign participant (YAML). */
function declaration(info: ParticipantInfo): string {
  const ports = (list: ParticipantInfo['inports']) =>
    Object.fromEntries(list.map((p) => [p.id, Object.fromEntries(Object.entries({ type: p.type, queue: p.queue, description: p.description }).filter(([, v]) => v !== undefined))]));
  const doc: Record<string, unknown> = { component: info.component };
  if (info.label) doc.label = info.label;
  if (info.icon) doc.icon = info.icon;
  doc.inports = ports(info.inports);
  doc.outports = ports(info.outports);
  // yaml is loaded on first use: importing msgflo-ts (every participant does) must not cost its 300 ms.
  const { stringify } = requireCjs('yaml') as typeof import('yaml');
  return stringify(doc);
}

export const componentHandlers: ProtocolHandlers = {
  async list(ctx) {
    const entries = await ctx.runtime.catalog.list();
    for (const e of entries) ctx.reply('component', e.description);
    ctx.reply('componentsready', entries.length);
  },

  async getsource(ctx, payload: Payload) {
    const name = String(payload.name);
    const rt = ctx.runtime;

    // A graph: by id, or library/id.
    const doc = rt.graphs.get(name) ?? rt.graphs.get(split(name).name);
    if (doc && (rt.graphs.has(name) || split(name).library === (doc.properties.library ?? rt.namespace))) {
      const out: Payload = { name: doc.id, language: 'json', code: JSON.stringify(graphToJson(doc.toGraph()), null, 2) };
      const library = doc.properties.library ?? rt.namespace;
      if (library) out.library = library;
      ctx.reply('source', out);
      return;
    }

    const library = rt.catalog.library;
    const key = library.resolve(name);
    const info = key !== undefined ? library.get(key) : undefined;
    if (key !== undefined && info?.file) {
      const file = path.resolve(library.cwd, info.file);
      let code: string;
      try {
        code = await readFile(file, 'utf8');
      } catch (err) {
        throw new GraphCommandError(`cannot read the source of ${key} (${info.file}): ${(err as Error).message}`, ErrorCodes.UNKNOWN_COMPONENT);
      }
      const parts = split(key);
      const out: Payload = { name: parts.name, language: info.language ?? (path.extname(file).slice(1) || 'text'), code };
      if (parts.library) out.library = parts.library;
      ctx.reply('source', out);
      return;
    }

    const announced = rt.announcedParticipant(key ?? name);
    if (announced) {
      const parts = split(announced.component);
      const out: Payload = { name: parts.name, language: 'yaml', code: declaration(announced) };
      if (parts.library) out.library = parts.library;
      ctx.reply('source', out);
      return;
    }
    if (key !== undefined) {
      throw new GraphCommandError(`${key} runs '${info?.template ?? '?'}': it has no source file`, ErrorCodes.UNKNOWN_COMPONENT);
    }
    const known = (await rt.catalog.list()).map((c) => c.description.name);
    throw new GraphCommandError(new UnknownComponentError(name, undefined, known).message.split('\n')[0]!, ErrorCodes.UNKNOWN_COMPONENT);
  },
};
