import type { TestProject } from 'vitest/node';
import { type StackInfo, startStack } from './stack';
import { assertPrerequisites, stackNeeds } from './stack/prerequisites';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

/** Starts the local stack once for the whole run and stops it at the end. */
export default async function setup(project: TestProject) {
  assertPrerequisites({ ...stackNeeds(), pgbouncer: true });
  const stack = await startStack();
  const { stop, ...info } = stack;
  project.provide('stack', info);
  return stop;
}
