/** A mistake in how the command was called: printed with the command's usage, exit code 2. */
export class UsageError extends Error {}

/** `open()`, with an error of class `as` (a flag's folder that is missing, say) turned into a UsageError. */
export function asUsageError<T>(open: () => T, as: new (...args: never[]) => Error): T {
  try {
    return open();
  } catch (e) {
    if (e instanceof as) throw new UsageError(e.message);
    throw e;
  }
}
