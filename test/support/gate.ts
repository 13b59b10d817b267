/**
 * A gate for holding one step of a run: `pass()` waits until `open()`, and
 * `reached` resolves when the first `pass()` arrives.
 */
export function gate(): { pass(): Promise<void>; reached: Promise<void>; open(): void } {
  let open = () => {};
  let arrive = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  return {
    pass() {
      arrive();
      return opened;
    },
    reached,
    open: () => open(),
  };
}
