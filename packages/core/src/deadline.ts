/**
 * Waits for `work` at most `ms` milliseconds: `{ value }` when it settles in time (its rejection is
 * thrown), `undefined` when the time is up first. The work goes on either way, and whoever started
 * it still sees its outcome; a rejection after the deadline is not reported here a second time.
 */
export async function within<T>(work: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  // Observed here so that a rejection after the deadline, which nobody awaits through this race, is not "unhandled".
  work.catch(() => undefined);
  try {
    return await Promise.race([work.then((value) => ({ value })), late]);
  } finally {
    clearTimeout(timer);
  }
}
