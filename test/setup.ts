import { inject } from 'vitest';
import { useStackEnvironment } from './stack';

// Every test file talks to the stack the global setup started.
useStackEnvironment(inject('stack'));
