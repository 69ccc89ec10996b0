// Type-level test (compiled by spec/participant/types.spec.ts and by `tsc -p tsconfig.spec.json`): a port name
// that the participant does not declare is a compile error, in the statechart form as in the function form.
import { setup } from 'xstate';
import { defineParticipant, defineStatechartParticipant } from '../../../src/participant/definition.js';

export const chart = defineStatechartParticipant({
  component: 'Typed',
  inports: [{ id: 'in' }],
  outports: [{ id: 'out' }, { id: 'log' }],
  machine: ({ send, sendNow }) =>
    setup({}).createMachine({
      initial: 'idle',
      states: {
        idle: {
          entry: send('log', 'started'),
          on: {
            in: {
              actions: [
                send('out'),
                // @ts-expect-error 'outt' is not an outport
                send('outt', 1),
                () => sendNow('out', 2),
                // @ts-expect-error 'nope' is not an outport
                () => sendNow('nope', 3),
              ],
            },
          },
        },
      },
    }),
});

export const fn = defineParticipant({
  component: 'TypedFn',
  inports: [{ id: 'in' }],
  outports: [{ id: 'out' }],
  process: (port, data, send) => {
    send('out', data);
    // @ts-expect-error 'outt' is not an outport
    send('outt', data);
  },
});
