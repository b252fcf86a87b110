// A strict parser of the Prometheus text exposition format (version 0.0.4),
// for tests: every line must be a HELP, a TYPE, or a sample of a metric
// declared before; label values must be quoted with valid escapes; values must
// be numbers (or NaN/+Inf/-Inf). Throws naming the line on anything else.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  help?: string;
  type?: string;
  readonly samples: Sample[];
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: number): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** The family a sample name belongs to (histogram _bucket/_sum/_count). */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct !== undefined) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const f = families.get(name.slice(0, -suffix.length));
    if (f !== undefined && (f.type === 'histogram' || f.type === 'summary')) return f;
  }
  return undefined;
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      if (!metricName.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      let f = families.get(name);
      if (f === undefined) families.set(name, (f = { name, samples: [] }));
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`line ${line}: second HELP for ${name}`);
        f.help = rest;
      } else {
        if (!types.has(rest)) throw new Error(`line ${line}: bad type ${rest}`);
        if (f.type !== undefined || f.samples.length > 0) throw new Error(`line ${line}: TYPE for ${name} after its samples or twice`);
        f.type = rest;
      }
      return;
    }
    if (raw.startsWith('#')) return; // other comments are allowed
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(raw);
    if (m === null) throw new Error(`line ${line}: not a sample: ${raw.slice(0, 200)}`);
    const [, name = '', , body, value = ''] = m;
    const labels: Record<string, string> = {};
    if (body !== undefined && body !== '') {
      let rest = body;
      while (rest !== '') {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
        if (lm === null || !labelName.test(lm[1] ?? '')) throw new Error(`line ${line}: bad labels: ${body.slice(0, 200)}`);
        const key = lm[1] ?? '';
        if (Object.hasOwn(labels, key)) throw new Error(`line ${line}: label ${key} twice`);
        labels[key] = (lm[2] ?? '').replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
        rest = rest.slice(lm[0].length);
      }
    }
    const f = familyOf(name, families);
    if (f === undefined) throw new Error(`line ${line}: sample ${name} without HELP/TYPE`);
    f.samples.push({ name, labels, value: parseValue(value, line) });
  });
  return families;
}

/** The value of the sample `name` whose labels include `labels` (undefined: none). */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = familyOf(name, families);
  const s = f?.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}
