// yaml reports a repeated map key as "Map keys must be unique" at the second
// key, without naming it. This finds which key it is, its field path and where
// it was first set, so the message can say what to remove.
import { isPair, isScalar, isSeq, visit, type Document, type Node } from 'yaml';
import { childPath } from './field-path.js';

export interface DuplicateKey {
  /** The key as written. */
  readonly key: string;
  /** Field path of the key, e.g. "nft.path" or "sources[1].kubernetes.context". */
  readonly field: string;
  /** Offset of the first occurrence of the key in the same map. */
  readonly firstOffset: number;
}

function keyText(k: unknown): string | undefined {
  return isScalar(k) ? String(k.value) : undefined;
}

/** The path of the map at the end of `ancestors` (visit's path, Document first). */
function fieldOf(ancestors: readonly unknown[], last: unknown): string {
  let field = '';
  const chain = [...ancestors, last];
  for (let i = 0; i < chain.length - 1; i++) {
    const here = chain[i];
    const next = chain[i + 1];
    if (isPair(here)) {
      const k = keyText(here.key);
      if (k !== undefined) field = childPath(field, k);
    } else if (isSeq(here)) {
      const index = here.items.indexOf(next as Node);
      if (index >= 0) field = childPath(field, index);
    }
  }
  return field;
}

/** The duplicate key whose second occurrence starts at `offset` (where yaml's DUPLICATE_KEY error points). */
export function duplicateKeyAt(doc: Document, offset: number): DuplicateKey | undefined {
  let found: DuplicateKey | undefined;
  visit(doc, {
    Map(_, map, path) {
      const i = map.items.findIndex((p) => isPair(p) && (p.key as Node | null)?.range?.[0] === offset);
      if (i < 0) return undefined;
      const key = keyText(map.items[i]?.key);
      if (key === undefined) return undefined;
      const first = map.items.find((p) => keyText(p.key) === key);
      const firstOffset = (first?.key as Node | null)?.range?.[0] ?? offset;
      found = { key, field: childPath(fieldOf(path, map), key), firstOffset };
      return visit.BREAK;
    },
  });
  return found;
}

