import assert from 'node:assert/strict';
import { settledWithin, within } from '../../src/util/within.js';

describe('util: within', () => {
  it("gives the promise's value when it comes in time, the fallback otherwise", async () => {
    assert.equal(await within(1000, Promise.resolve(7), 'late'), 7);
    assert.equal(await within(10, new Promise(() => {}), 'late'), 'late');
  });

  it("leaves a rejection to the caller, and settledWithin counts it as settled", async () => {
    await assert.rejects(within(1000, Promise.reject(new Error('no')), 'late'), /no/);
    assert.equal(await settledWithin(1000, Promise.reject(new Error('no'))), true);
    assert.equal(await settledWithin(10, new Promise(() => {})), false);
  });
});
