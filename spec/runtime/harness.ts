/**
 * An FBP runtime in the test process, on an in-memory broker (direct://): the real coordinator, the real
 * participants (started in-process by the test instead of by a launcher) and FbpClients that check every frame
 * against the fbp-protocol schemas.
 */
import type { Coordinator } from '../../src/coordinator/coordinator.js';
import { loadLibrary } from '../../src/coordinator/library.js';
import { startNetwork } from '../../src/coordinator/network.js';
import { defineParticipant, type ParticipantDefinition } from '../../src/participant/definition.js';
import { Participant } from '../../src/participant/participant.js';
import { ComponentCatalog } from '../../src/runtime/components.js';
import { FbpRuntime, type FbpRuntimeOptions } from '../../src/runtime/runtime.js';
import { connectTransport } from '../../src/transport/index.js';
import type { Transport } from '../../src/transport/types.js';
import type { Clock } from '../../src/util/clock.js';
import { uniqueName } from '../helpers/brokers.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { FbpClient } from './client.js';

export const SECRET = 'test-secret';

export const Repeat = defineParticipant({
  component: 'Repeat',
  label: 'Repeats in data without changes',
  icon: 'file-word-o',
  inports: [{ id: 'in', type: 'any' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data, send) => send('out', data),
});

export const Uppercase = defineParticipant({
  component: 'Uppercase',
  inports: [{ id: 'in', type: 'any' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data, send) => send('out', typeof data === 'string' ? data.toUpperCase() : data),
});

export const Drop = defineParticipant({
  component: 'Drop',
  inports: [{ id: 'in', type: 'any' }],
  outports: [],
  process: () => {},
});

/** Throws on every input: its error outport says why. */
export const Failing = defineParticipant({
  component: 'Failing',
  inports: [{ id: 'in', type: 'any' }],
  outports: [{ id: 'out', type: 'any' }],
  process: (port, data) => {
    throw new Error(`cannot handle ${JSON.stringify(data)}`);
  },
});

let sharedCatalog: Promise<ComponentCatalog> | undefined;

/** One catalog for all in-process specs: the repository's library (participants/ and the built-ins), read once. */
function catalog(): Promise<ComponentCatalog> {
  sharedCatalog ??= (async () => {
    const library = await loadLibrary({ cwd: REPO_ROOT, builtins: true });
    const c = new ComponentCatalog({ library });
    await c.refresh();
    return c;
  })();
  return sharedCatalog;
}

export interface Harness {
  url: string;
  transport: Transport;
  coordinator: Coordinator;
  runtime: FbpRuntime;
  /** A client with the secret (more with `client()`). */
  client(secret?: string): FbpClient;
  /** Start a participant in this process as `role`; resolves once the coordinator has discovered it. */
  participant(definition: ParticipantDefinition, role: string, options?: { heartbeat?: number }): Promise<Participant>;
  close(): Promise<void>;
}

export async function startHarness(options: { clock?: Clock; runtime?: Partial<FbpRuntimeOptions> } = {}): Promise<Harness> {
  const url = `direct://${uniqueName('rt')}`;
  const transport = await connectTransport(url, { name: 'coordinator' });
  const cat = await catalog();
  const network = await startNetwork({ transport, library: cat.library, ...(options.clock ? { clock: options.clock } : {}) });
  const coordinator = network.coordinator;
  const runtime = new FbpRuntime({ network, catalog: cat, secret: SECRET, packetTimeoutMs: 3000, ...options.runtime });
  const clients: FbpClient[] = [];
  const participants: Participant[] = [];
  return {
    url,
    transport,
    coordinator,
    runtime,
    client(secret = SECRET) {
      const c = FbpClient.inProcess(runtime, secret);
      clients.push(c);
      return c;
    },
    async participant(definition, role, opts = {}) {
      const t = await connectTransport(url, { name: role });
      const p = new Participant(definition, t, { role, heartbeat: opts.heartbeat ?? 1, env: {} });
      await p.start();
      participants.push(p);
      await waitFor(() => coordinator.registry.get(p.id), `discovery of ${role}`, 5000);
      return p;
    },
    async close() {
      for (const c of clients) await c.close();
      await runtime.close();
      for (const p of participants) await p.stop().catch(() => {});
      await network.stop();
      await transport.close();
    },
  };
}

/** Every schema problem the clients saw, as one assertion message (empty when none). */
export function schemaProblems(...clients: FbpClient[]): string[] {
  return clients.flatMap((c) => c.problems);
}
