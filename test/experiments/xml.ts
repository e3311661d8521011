/**
 * A small, strict XML well-formedness checker for the SVGs we write (not a general XML parser): one root element,
 * balanced and properly nested tags, quoted and unique attributes, no raw '<' or stray '&' in text or attribute
 * values (only the five named entities and numeric character references). Throws an Error saying where; returns the
 * element tree so that tests can count elements.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*/;
const ENTITY = /^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/;

function checkText(s: string, where: number, what: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '<') throw new Error(`raw '<' in ${what} at offset ${where + i}`);
    if (s[i] === '&') {
      const m = ENTITY.exec(s.slice(i));
      if (!m) throw new Error(`bare '&' in ${what} at offset ${where + i}: '${s.slice(i, i + 10)}'`);
    }
  }
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9A-Fa-f]+|#[0-9]+|\w+);/g, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : named[e]!);
}

export function parseXml(src: string): XmlElement {
  let i = 0;
  if (src.startsWith('<?xml')) {
    const end = src.indexOf('?>');
    if (end < 0) throw new Error('unterminated XML declaration');
    i = end + 2;
  }
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = lt < 0 ? src.slice(i) : src.slice(i, lt);
    if (text) {
      if (stack.length === 0) {
        if (text.trim()) throw new Error(`text outside the root element at offset ${i}: '${text.trim().slice(0, 20)}'`);
      } else {
        stack[stack.length - 1]!.text += checkText(text, i, 'text');
      }
    }
    if (lt < 0) break;
    i = lt;
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end < 0) throw new Error(`unterminated comment at offset ${i}`);
      i = end + 3;
      continue;
    }
    if (src.startsWith('</', i)) {
      const m = NAME.exec(src.slice(i + 2));
      if (!m) throw new Error(`bad closing tag at offset ${i}`);
      const j = i + 2 + m[0].length;
      const close = src.slice(j).match(/^\s*>/);
      if (!close) throw new Error(`bad closing tag </${m[0]} at offset ${i}`);
      const open = stack.pop();
      if (!open) throw new Error(`closing tag </${m[0]}> at offset ${i} with nothing open`);
      if (open.name !== m[0]) throw new Error(`closing tag </${m[0]}> at offset ${i} does not match <${open.name}>`);
      i = j + close[0].length;
      continue;
    }
    const m = NAME.exec(src.slice(i + 1));
    if (!m) throw new Error(`bad tag at offset ${i}: '${src.slice(i, i + 12)}'`);
    const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
    let j = i + 1 + m[0].length;
    let selfClosing = false;
    for (;;) {
      const ws = /^\s*/.exec(src.slice(j))![0];
      j += ws.length;
      if (src.startsWith('/>', j)) {
        selfClosing = true;
        j += 2;
        break;
      }
      if (src[j] === '>') {
        j += 1;
        break;
      }
      if (j >= src.length) throw new Error(`unterminated tag <${el.name} at offset ${i}`);
      if (!ws) throw new Error(`missing whitespace before an attribute of <${el.name}> at offset ${j}`);
      const a = /^([A-Za-z_][\w.:-]*)\s*=\s*(["'])/.exec(src.slice(j));
      if (!a) throw new Error(`bad attribute in <${el.name}> at offset ${j}: '${src.slice(j, j + 15)}'`);
      const q = a[2]!;
      const vStart = j + a[0].length;
      const vEnd = src.indexOf(q, vStart);
      if (vEnd < 0) throw new Error(`unterminated attribute value in <${el.name}> at offset ${vStart}`);
      if (Object.prototype.hasOwnProperty.call(el.attrs, a[1]!)) throw new Error(`duplicate attribute ${a[1]} in <${el.name}> at offset ${j}`);
      el.attrs[a[1]!] = checkText(src.slice(vStart, vEnd), vStart, `attribute ${a[1]}`);
      j = vEnd + 1;
    }
    if (stack.length) stack[stack.length - 1]!.children.push(el);
    else if (root) throw new Error(`second root element <${el.name}> at offset ${i}`);
    else root = el;
    if (!selfClosing) stack.push(el);
    i = j;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]!.name}> at the end`);
  if (!root) throw new Error('no root element');
  return root;
}

/** Every element named `name` in the tree, depth first. */
export function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = el.name === name ? [el] : [];
  for (const c of el.children) out.push(...findAll(c, name));
  return out;
}
