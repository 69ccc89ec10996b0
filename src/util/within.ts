/**
 * `promise`'s value, or `fallback` once `ms` have passed, whichever comes first. The timer never outlives the
 * answer. A rejection of `promise` is the caller's (wrap it with `.catch` to turn it into a value).
 */
export async function within<T, F>(ms: number, promise: Promise<T>, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `promise` settled (either way) within `ms`. */
export function settledWithin(ms: number, promise: Promise<unknown>): Promise<boolean> {
  return within(
    ms,
    promise.then(
      () => true,
      () => true,
    ),
    false,
  );
}
