/** Small async helpers for specs. */

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
  everyMs = 20,
): Promise<Exclude<T, null | undefined | false | 0 | ''>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as Exclude<T, null | undefined | false | 0 | ''>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}

/** Collects items pushed to it; `next(n)` waits until n have arrived. */
export class Collector<T> {
  readonly items: T[] = [];
  private waiters: Array<() => void> = [];
  push = (item: T): void => {
    this.items.push(item);
    for (const w of this.waiters.splice(0)) w();
  };
  async waitCount(n: number, timeoutMs = 5000, what = 'messages'): Promise<T[]> {
    const end = Date.now() + timeoutMs;
    while (this.items.length < n) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`Timed out waiting for ${n} ${what}, got ${this.items.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.items.slice(0, n);
  }
}
