// Bad-input suite participant: typed and schema'd inports. Every accepted input is echoed on `out` as
// {port, data}; refused ones are dead-lettered by the runtime (MSGFLO_ERR_BAD_JSON / MSGFLO_ERR_SCHEMA) and
// reported on the `error` outport.
import { defineParticipant } from 'msgflo-ts';

export default defineParticipant({
  component: 'BadInputTyped',
  inports: [
    { id: 'num', type: 'number', description: 'typed, no schema: any JSON body' },
    {
      id: 'obj',
      type: 'object',
      description: 'typed with a JSON schema',
      schema: {
        type: 'object',
        required: ['n', 'name'],
        properties: { n: { type: 'integer', minimum: 0 }, name: { type: 'string', maxLength: 20 } },
        additionalProperties: false,
      },
    },
    { id: 'any', type: 'any', description: 'untyped: a body that is not JSON arrives as a string' },
  ],
  outports: [{ id: 'out', type: 'object' }],
  process: (port, data, send) => send('out', { port, data }),
});
