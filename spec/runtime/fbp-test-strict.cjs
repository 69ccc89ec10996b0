/**
 * Preload (mocha --require) for the public fbp-protocol suite that makes its schema check real, as the
 * reference's FBP_STRICT_SCHEMA runs did: fbp-protocol 0.9.8 looks schemas up without the leading '/' (tv4 then
 * calls the schema missing and the message valid) and checks component:component against a schema that does
 * not exist. Here every received message is checked against `/<protocol>/output/<command>`, and a message
 * without a schema fails.
 */
const path = require('node:path');

const tv4 = require(path.resolve(__dirname, '../../node_modules/fbp-protocol/schema/index.js'));
const original = tv4.validateMultiple.bind(tv4);

tv4.validateMultiple = (data, schema) => {
  if (typeof schema !== 'string') return original(data, schema);
  let id = schema.startsWith('/') ? schema : `/${schema}`;
  if (id === '/component/output/list' && data && typeof data.protocol === 'string' && typeof data.command === 'string') {
    id = `/${data.protocol}/output/${data.command}`;
  }
  if (!tv4.getSchema(id)) return { valid: false, errors: [{ message: `no schema ${id}` }], missing: [id] };
  const result = original(data, id);
  if (result.missing.length) {
    return { ...result, valid: false, errors: [...result.errors, ...result.missing.map((m) => ({ message: `missing schema ${m}` }))] };
  }
  return result;
};
