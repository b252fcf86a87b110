// Copies of an array with one element inserted or removed, allocated at exactly their length (a copy
// then a splice allocates twice, the splice with room to grow): for copy-on-write arrays that were
// given out (policy/block-list.ts, inventory/sources/name-store.ts).

/** `xs` with `x` inserted at `i`, as a new array of exactly that length. */
export function withInserted<T>(xs: readonly T[], i: number, x: T): T[] {
  const out = new Array<T>(xs.length + 1);
  for (let k = 0; k < i; k++) out[k] = xs[k] as T;
  out[i] = x;
  for (let k = i; k < xs.length; k++) out[k + 1] = xs[k] as T;
  return out;
}

/** `xs` without its element at `i`, as a new array of exactly that length. */
export function withRemoved<T>(xs: readonly T[], i: number): T[] {
  const out = new Array<T>(xs.length - 1);
  for (let k = 0; k < i; k++) out[k] = xs[k] as T;
  for (let k = i + 1; k < xs.length; k++) out[k - 1] = xs[k] as T;
  return out;
}
