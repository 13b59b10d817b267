/**
 * A value built on first use and kept for the container's lifetime: an AWS
 * client, or a module. `lazy(() => import('./x'))` keeps `./x` in the function's
 * bundle (esbuild turns the import into a `require` inside a function) but
 * evaluates it only when an invocation first needs it, so a cold start pays for
 * the code that invocation runs rather than for every path the function has.
 */
export function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}
