/**
 * miros spy lines from what a statechart engine did. Engine-neutral and pure: an engine describes each step
 * (the active leaves before it, the transitions it took, the states it exited and entered, in order) and gets
 * the lines miros would have written for the same chart.
 *
 * miros (Samek's event processor) writes more than entries and exits: it asks states for their parents
 * (`SEARCH_FOR_SUPER_SIGNAL:s`) while it looks for the least common ancestor of a transition, and offers an
 * event to each state from the active leaf outwards (`B:c1`, `B:producer_outer`). For a transition between
 * ordinary (non-parallel) states this module replays that algorithm over the chart's tree, and uses its lines
 * when the exits and entries it predicts are exactly those the engine made; otherwise (parallel regions,
 * history, re-entering transitions miros cannot express) the lines are derived from what the engine did, with
 * the same vocabulary. A state "handles EXIT_SIGNAL" in miros terms when the chart gives it exit actions.
 */
import { SPY, hookLine, spyLine } from './format.js';

/** A state as the spy sees it. The root (the machine itself) plays miros's `top` and is never printed, except as
 * the handler of an event when the machine itself handles it. */
export interface SpyState {
  readonly name: string;
  /** undefined only for the root. */
  readonly parent: SpyState | undefined;
  /** The chart gives this state exit actions (miros: its handler handles EXIT_SIGNAL). */
  readonly handlesExit: boolean;
  /** The initial child of a compound state; undefined for atomic, parallel, final and history states. */
  readonly initial: SpyState | undefined;
}

export interface StepTransition {
  readonly source: SpyState;
  /** Empty for a transition without target (a hook). */
  readonly targets: readonly SpyState[];
}

/** One microstep of an engine. */
export interface Step {
  readonly signal: string;
  /** Active atomic states before the step, in document order. */
  readonly leaves: readonly SpyState[];
  /** Transitions taken; empty when the event was not handled. */
  readonly transitions: readonly StepTransition[];
  /** States exited and entered, in the order the engine did it. */
  readonly exited: readonly SpyState[];
  readonly entered: readonly SpyState[];
}

const isRoot = (s: SpyState) => s.parent === undefined;

function isAncestorOrSelf(ancestor: SpyState, s: SpyState | undefined): boolean {
  for (let x = s; x; x = x.parent) if (x === ancestor) return true;
  return false;
}

/** START, then SEARCH/ENTRY/INIT for each state entered (the root excluded), as miros's `start_at` writes them. */
export function startLines(entered: readonly SpyState[]): string[] {
  const lines: string[] = [SPY.start];
  for (const s of entered) {
    if (isRoot(s)) continue;
    lines.push(spyLine(SPY.search, s.name), spyLine(SPY.entry, s.name), spyLine(SPY.init, s.name));
  }
  return lines;
}

/** The lines of one step (without the queue reflection, which closes a whole run-to-completion step). */
export function stepLines(step: Step): string[] {
  const lines = bubbling(step);
  const [only] = step.transitions;
  const under = only ? step.leaves.filter((l) => isAncestorOrSelf(only.source, l)) : [];
  if (step.transitions.length === 1 && under.length === 1 && only && only.targets.length === 1) {
    // One transition from one active leaf (also inside a parallel region): replay miros.
    const sim = simulate(under[0]!, only.source, only.targets[0]!);
    if (sim && same(sim.exits, step.exited) && same(sim.entries, step.entered)) return lines.concat(sim.lines);
  }
  return lines.concat(observed(step));
}

function same(a: readonly SpyState[], b: readonly SpyState[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `SIG:state` from each active leaf outwards up to the state that handled the event (or the outermost state). */
function bubbling(step: Step): string[] {
  const lines: string[] = [];
  const asked = new Set<SpyState>();
  for (const leaf of step.leaves) {
    const t = step.transitions.find((tr) => isAncestorOrSelf(tr.source, leaf));
    for (let x: SpyState | undefined = leaf; x; x = x.parent) {
      if (isRoot(x) && t?.source !== x) break;
      if (!asked.has(x)) {
        asked.add(x);
        lines.push(spyLine(step.signal, x.name));
      }
      if (t && x === t.source) break;
    }
  }
  for (const t of step.transitions) if (t.targets.length === 0) lines.push(hookLine(step.signal, t.source.name));
  return lines;
}

/** Lines derived from the engine's own exits and entries. */
function observed(step: Step): string[] {
  const lines: string[] = [];
  const targeted = step.transitions.filter((t) => t.targets.length > 0);
  if (targeted.length === 0) return lines;
  const targets = new Set(targeted.flatMap((t) => t.targets));
  for (const x of step.exited) {
    lines.push(spyLine(SPY.exit, x.name));
    const inner = targeted.some((t) => t.source !== x && isAncestorOrSelf(t.source, x));
    if (x.handlesExit && inner) lines.push(spyLine(SPY.search, x.name));
  }
  for (const n of step.entered) {
    if (isRoot(n)) continue;
    if (targets.has(n)) {
      lines.push(spyLine(SPY.entry, n.name), spyLine(SPY.init, n.name));
    } else if ([...targets].some((t) => t !== n && isAncestorOrSelf(n, t))) {
      lines.push(spyLine(SPY.entry, n.name));
    } else {
      lines.push(spyLine(SPY.search, n.name), spyLine(SPY.entry, n.name), spyLine(SPY.init, n.name));
    }
  }
  return lines;
}

/**
 * Replay miros's dispatch for a transition from source S (found by bubbling from `leaf`) to target T: the exit
 * walk from the leaf to S, the least-common-ancestor search (topologies a–g of Samek's algorithm), the entry
 * path and T's initial transitions. Returns undefined for shapes miros cannot have.
 */
function simulate(leaf: SpyState, S: SpyState, T: SpyState): { lines: string[]; exits: SpyState[]; entries: SpyState[] } | undefined {
  const lines: string[] = [];
  const exits: SpyState[] = [];
  const entries: SpyState[] = [];
  const exit = (x: SpyState) => {
    lines.push(spyLine(SPY.exit, x.name));
    exits.push(x);
  };
  // The root is miros's `top`, whose handler is not spied on.
  const search = (x: SpyState) => {
    if (!isRoot(x)) lines.push(spyLine(SPY.search, x.name));
  };

  // Exit from the active leaf up to (not including) the source.
  for (let x: SpyState | undefined = leaf; x !== S; x = x.parent) {
    if (!x || isRoot(x)) return undefined;
    exit(x);
    if (x.handlesExit) search(x);
  }

  let enter: SpyState[];
  if (S === T) {
    // (a) a transition to itself: exit and enter again.
    exit(S);
    enter = [T];
  } else {
    search(T);
    const tSuper = T.parent;
    if (tSuper === S) {
      // (b) into a direct child.
      enter = [T];
    } else {
      search(S);
      const sSuper = S.parent;
      if (sSuper === tSuper) {
        // (c) to a sibling.
        exit(S);
        enter = [T];
      } else if (sSuper === T) {
        // (d) to the direct parent: exit the source only, then the parent's initial transition.
        exit(S);
        enter = [];
      } else {
        // (e) deeper into the source? Collect T's ancestors until the source (or the top) turns up.
        const path: Array<SpyState | undefined> = [T, tSuper];
        let found = false;
        if (tSuper && !isRoot(tSuper)) {
          search(tSuper);
          for (let cur = tSuper.parent; cur; cur = cur.parent) {
            path.push(cur);
            if (cur === S) {
              found = true;
              path.pop();
              break;
            }
            if (isRoot(cur)) break;
            search(cur);
          }
        }
        if (found) {
          enter = (path as SpyState[]).slice().reverse();
        } else {
          // (f)/(g): exit the source, then its parents, until one of them is an ancestor of T.
          exit(S);
          let t = sSuper;
          for (;;) {
            const k = path.indexOf(t);
            if (k >= 0) {
              enter = (path.slice(0, k) as SpyState[]).reverse();
              break;
            }
            if (!t || isRoot(t)) return undefined;
            exit(t);
            if (t.handlesExit) search(t);
            t = t.parent;
          }
        }
      }
    }
  }

  for (const x of enter) {
    lines.push(spyLine(SPY.entry, x.name));
    entries.push(x);
  }
  // T's initial transitions, drilling in one level at a time.
  lines.push(spyLine(SPY.init, T.name));
  for (let cur = T; cur.initial; ) {
    const child = cur.initial;
    search(child);
    lines.push(spyLine(SPY.entry, child.name));
    entries.push(child);
    lines.push(spyLine(SPY.init, child.name));
    cur = child;
  }
  return { lines, exits, entries };
}
