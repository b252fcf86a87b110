const texts = new WeakMap<object, string>();

/** JSON.stringify of an object that is never modified (configs), computed once per object. */
export function jsonOnce(value: object): string {
  let text = texts.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    texts.set(value, text);
  }
  return text;
}
