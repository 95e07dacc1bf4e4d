/**
 * Types the published declarations need without `@types/node`: a consumer
 * compiling against `lib: ES2022` alone (no DOM, no Node types) must be able
 * to type-check them (test/published-types.test.ts).
 */

/** Environment variables, as `process.env` holds them (process.env fits). */
export type Environment = Record<string, string | undefined>;

declare global {
  // Empty merges: with the DOM lib or @types/node these add nothing; without
  // them they let `signal?: AbortSignal` (ours) and zod's `URL` resolve.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface AbortSignal {}
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface URL {}
}
