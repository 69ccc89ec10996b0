import { setup, type AnyStateMachine } from 'xstate';

/** The spy that miros's networked-instrumentation document shows for `start_at(producer_outer)` then `B`. */
export const SEED_SPY_START_B = [
  'START',
  'SEARCH_FOR_SUPER_SIGNAL:producer_outer',
  'ENTRY_SIGNAL:producer_outer',
  'INIT_SIGNAL:producer_outer',
  'SEARCH_FOR_SUPER_SIGNAL:c1',
  'ENTRY_SIGNAL:c1',
  'INIT_SIGNAL:c1',
  '<- Queued:(0) Deferred:(0)',
  'B:c1',
  'B:producer_outer',
  'EXIT_SIGNAL:c1',
  'EXIT_SIGNAL:producer_outer',
  'ENTRY_SIGNAL:producer_outer',
  'INIT_SIGNAL:producer_outer',
  'SEARCH_FOR_SUPER_SIGNAL:c1',
  'ENTRY_SIGNAL:c1',
  'INIT_SIGNAL:c1',
  '<- Queued:(0) Deferred:(0)',
];

export function seedMachine(): AnyStateMachine {
  return setup({}).createMachine({
    id: 'producer',
    initial: 'producer_outer',
    states: {
      producer_outer: {
        initial: 'c1',
        on: { B: { target: 'producer_outer', reenter: true }, H: {} },
        states: { c1: { on: { A: 'c2' } }, c2: { on: { A: 'c1' } } },
      },
    },
  });
}
