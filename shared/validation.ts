import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

/**
 * The validation library: zod's mini build, which checks and reports exactly as
 * zod does (every bad field, by path) for a fraction of zod's size and load time.
 * It ships without messages; the English ones name what was expected and which
 * keys are unknown, as zod's full build does. Schemas import zod from here
 * (`import * as z from './validation'`) so that the messages are set before
 * anything is parsed.
 */
config(en());

export * from 'zod/mini';
