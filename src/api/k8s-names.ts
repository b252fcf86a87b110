// Kubernetes' syntax rules for object names, label keys and label values
// (k8s.io/apimachinery/pkg/util/validation), and Cilium's selector keys with a
// source prefix (pkg/k8s/slim/k8s/apis/labels: IsValidCiliumLabelKey). Each
// check returns Kubernetes' messages, empty when the text is valid. These are
// what keep a NUL, a newline or an escape sequence in a name or label from
// ever reaching a log line, a terminal or the nft script.

import { shown, unprintableProblem } from './printable.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CILIUM_LABEL_SOURCE = /^[A-Za-z0-9]+$/;

const DNS1123_LABEL_MAX = 63;
const DNS1123_SUBDOMAIN_MAX = 253;
const QUALIFIED_NAME_MAX = 63;
const LABEL_VALUE_MAX = 63;

const subdomainText =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
  "and must start and end with an alphanumeric character (e.g. 'example.com')";
const labelText =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " +
  "and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')";
const qualifiedText =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric " +
  "character (e.g. 'MyName', or 'my.name', or '123-abc')";
const valueText =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', " +
  "and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')";

const maxLen = (n: number): string => `must be no more than ${n} characters`;

/** Prefix the encoding problem, if any, to Kubernetes' own messages. */
function withEncoding(s: string, messages: string[]): string[] {
  if (messages.length === 0) return messages;
  const enc = unprintableProblem(s);
  return enc === undefined ? messages : [enc, ...messages];
}

function subdomainRaw(s: string): string[] {
  const out: string[] = [];
  if (s.length > DNS1123_SUBDOMAIN_MAX) out.push(maxLen(DNS1123_SUBDOMAIN_MAX));
  if (!DNS1123_SUBDOMAIN.test(s)) out.push(subdomainText);
  return out;
}

function labelKeyRaw(key: string): string[] {
  const parts = key.split('/');
  if (parts.length > 2) {
    return [`a qualified name ${qualifiedText} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  const out: string[] = [];
  const name = parts.length === 2 ? (parts[1] ?? '') : key;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (prefix === '') out.push('prefix part must be non-empty');
    else for (const m of subdomainRaw(prefix)) out.push(`prefix part ${m}`);
  }
  if (name === '') out.push('name part must be non-empty');
  else if (name.length > QUALIFIED_NAME_MAX) out.push(`name part ${maxLen(QUALIFIED_NAME_MAX)}`);
  if (name !== '' && !QUALIFIED_NAME.test(name)) out.push(`name part ${qualifiedText}`);
  return out;
}

/** IsDNS1123Subdomain: object names (Node, CiliumClusterwideNetworkPolicy, ...). */
export function dns1123SubdomainProblems(s: string): string[] {
  return withEncoding(s, subdomainRaw(s));
}

/** IsDNS1123Label: namespace names. */
export function dns1123LabelProblems(s: string): string[] {
  const out: string[] = [];
  if (s.length > DNS1123_LABEL_MAX) out.push(maxLen(DNS1123_LABEL_MAX));
  if (!DNS1123_LABEL.test(s)) out.push(labelText);
  return withEncoding(s, out);
}

/** IsQualifiedName: a label key, `[prefix/]name`. */
export function labelKeyProblems(key: string): string[] {
  return withEncoding(key, labelKeyRaw(key));
}

/** IsValidLabelValue. */
export function labelValueProblems(v: string): string[] {
  const out: string[] = [];
  if (v.length > LABEL_VALUE_MAX) out.push(maxLen(LABEL_VALUE_MAX));
  if (!LABEL_VALUE.test(v)) out.push(valueText);
  return withEncoding(v, out);
}

/**
 * Cilium's selector key: an optional label source and ':' (`k8s:app`,
 * `reserved:host`, `any:io.kubernetes.pod.namespace`), then a Kubernetes label key.
 */
export function selectorKeyProblems(key: string): string[] {
  const parts = key.split(':');
  if (parts.length > 2) {
    return withEncoding(key, ["a valid label key only support ':' character as a source separator with non empty value"]);
  }
  const out: string[] = [];
  if (parts.length === 2 && !CILIUM_LABEL_SOURCE.test(parts[0] ?? '')) {
    out.push('label source should be a non empty string with only alphanumeric characters');
  }
  out.push(...labelKeyRaw(parts.length === 2 ? (parts[1] ?? '') : key));
  return withEncoding(key, out);
}

/** The message Kubernetes gives (`Invalid value: "x": ...`), all reasons joined. */
export function invalidValue(s: string, problems: readonly string[]): string {
  return `Invalid value: ${shown(s)}: ${problems.join('; ')}`;
}
