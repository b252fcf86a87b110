// The binary search of the sorted model lists (model-at-address.ts, pool-index.ts): the last element
// at or before a key.

/**
 * The index of the last element of `list` for which `atOrBefore(element, a, b)` holds, -1 when none;
 * it must hold for a leading run of the list and for nothing after it (a sorted list and a key). `a`
 * and `b` carry the key, so that a caller passes a module-level function and allocates nothing per
 * search (the search runs per pod event).
 */
export function lastAtOrBefore<T, A, B>(list: readonly T[], a: A, b: B, atOrBefore: (item: T, a: A, b: B) => boolean): number {
  let lo = 0;
  let hi = list.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (atOrBefore(list[mid] as T, a, b)) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
