import * as z from '../validation';

/**
 * Schema pieces for values that SSM stores as strings. They transform rather
 * than coerce blindly so a typo ("ture", "5m") fails with the parameter's name.
 */

/** An integer stored as a String parameter, within bounds. */
export function integerString(min: number, max: number) {
  return z.pipe(
    z.pipe(z.string().check(z.regex(/^-?\d+$/, 'must be an integer')), z.transform(Number)),
    z.int().check(z.minimum(min, `must be at least ${min}`), z.maximum(max, `must be at most ${max}`)),
  );
}

/** `true` / `false` stored as a String parameter. */
export const booleanString = z.pipe(
  z.enum(['true', 'false'], { message: 'must be true or false' }),
  z.transform((v) => v === 'true'),
);

/** A StringList parameter (already split by the loader); a plain String is accepted as a one-item list. */
export const stringList = z.pipe(
  z.union([z.array(z.string()), z.string()]),
  z.transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean)),
);
