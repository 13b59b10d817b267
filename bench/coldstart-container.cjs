/**
 * A stand-in for one Lambda container of the cold-start benchmark: loads the
 * bundle named by argv[2] once, then runs each event that arrives over IPC
 * through its handler and answers with the invocation's duration (and its
 * error's message, if it threw). Nothing else of the parent is loaded here.
 */
const { performance } = require('node:perf_hooks');

const started = performance.now();
const { handler } = require(process.argv[2]);
const loadMs = performance.now() - started;
const context = { functionName: 'coldstart-bench', getRemainingTimeInMillis: () => 900_000 };

process.on('message', async (event) => {
  const invoked = performance.now();
  try {
    await handler(event, context);
    process.send({ ms: performance.now() - invoked });
  } catch (error) {
    process.send({ ms: performance.now() - invoked, error: String(error?.message ?? error) });
  }
});
process.send({ loadMs });
