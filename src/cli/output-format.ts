// Machine-readable output of every command: `-o json` and `-o yaml` carry the same document.

import { stringify } from 'yaml';

export type DocFormat = 'json' | 'yaml';

export function isDocFormat(f: string): f is DocFormat {
  return f === 'json' || f === 'yaml';
}

/** The document as JSON (2-space indent) or YAML, with a final newline. */
export function formatDoc(doc: unknown, format: DocFormat): string {
  if (format === 'json') return `${JSON.stringify(doc, null, 2)}\n`;
  // No anchors/aliases: a reader should not need to resolve them; long strings stay on one line.
  return stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 });
}
