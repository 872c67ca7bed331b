// A renderer for the subset of Helm's Go templates that deploy/helm uses, so that the chart can be rendered and
// checked where the helm binary cannot be installed (it is not in the npm or Debian registries). It is NOT Helm:
// it supports exactly what the chart uses (define/include, if/else/with/range, variables, parenthesised calls and
// the functions below), fails loudly on anything else, and `helm template` / `helm lint` remain the reference.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

class TemplateError extends Error {}

/** Splits a template into text and actions, applying {{- and -}} whitespace trimming. */
function lex(src, file) {
  const out = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start++;
    }
    const close = src.indexOf('}}', start);
    if (close < 0) throw new TemplateError(`${file}: unclosed action`);
    let end = close;
    let trimAfter = false;
    if (src[close - 1] === '-' && /\s/.test(src[close - 2] ?? '')) {
      end = close - 1;
      trimAfter = true;
    }
    out.push({ text });
    out.push({ action: src.slice(start, end).trim() });
    i = close + 2;
    if (trimAfter) while (i < src.length && /\s/.test(src[i])) i++;
  }
  return out;
}

/** Builds the tree of if/with/range/define blocks. */
function parseTree(tokens, file) {
  const root = { kind: 'list', items: [] };
  const stack = [{ node: null, list: root.items }];
  const top = () => stack[stack.length - 1];
  for (const t of tokens) {
    if (t.text !== undefined) {
      if (t.text !== '') top().list.push({ kind: 'text', text: t.text });
      continue;
    }
    const a = t.action;
    if (a.startsWith('/*')) continue;
    const m = /^(if|with|range|define|else|end)\b\s*(.*)$/s.exec(a);
    const word = m?.[1];
    if (word === 'if' || word === 'with' || word === 'range' || word === 'define') {
      const node = { kind: word, expr: m[2], body: { kind: 'list', items: [] }, alt: null };
      top().list.push(node);
      stack.push({ node, list: node.body.items });
    } else if (word === 'else') {
      const frame = top();
      if (!frame.node || !['if', 'with', 'range'].includes(frame.node.kind) || m[2] !== '') throw new TemplateError(`${file}: else outside if, or else-if (not supported)`);
      frame.node.alt = { kind: 'list', items: [] };
      frame.list = frame.node.alt.items;
    } else if (word === 'end') {
      if (stack.length === 1) throw new TemplateError(`${file}: end without a block`);
      stack.pop();
    } else {
      top().list.push({ kind: 'action', expr: a });
    }
  }
  if (stack.length !== 1) throw new TemplateError(`${file}: missing end`);
  return root;
}

/** Tokens of an expression: strings, numbers, parentheses, pipes, fields, variables, identifiers. */
function tokenize(expr) {
  const re = /\s*("(?:[^"\\]|\\.)*"|\(|\)|\||:=|,|\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*|\.[A-Za-z0-9_.]*|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*)/y;
  const out = [];
  let m;
  re.lastIndex = 0;
  while (re.lastIndex < expr.length && (m = re.exec(expr)) !== null) out.push(m[1]);
  if (re.lastIndex < expr.replace(/\s+$/, '').length) throw new TemplateError(`cannot read expression: ${expr}`);
  return out;
}

const truthy = (v) => !(v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0));

function fieldOf(base, path) {
  let v = base;
  for (const k of path.split('.').filter(Boolean)) v = v === undefined || v === null ? undefined : v[k];
  return v;
}

const toYaml = (v) => (v === undefined || v === null ? 'null' : stringifyYaml(v, { lineWidth: 0 }).replace(/\n$/, ''));
const str = (v) => (v === undefined || v === null ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function renderChart(chartDir, values, release = { Name: 'test', Namespace: 'default', Service: 'Helm' }) {
  const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'));
  const defaults = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));
  const merge = (a, b) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof b !== 'object' || b === null || Array.isArray(b)) return b === undefined ? a : b;
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
    return out;
  };
  const top = {
    Values: merge(defaults, values),
    Release: release,
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const defines = new Map();
  const dir = join(chartDir, 'templates');
  const files = readdirSync(dir).sort();
  const trees = new Map(files.map((f) => [f, parseTree(lex(readFileSync(join(dir, f), 'utf8'), f), f)]));
  const collect = (list) => {
    for (const n of list.items) if (n.kind === 'define') defines.set(JSON.parse(n.expr.trim()), n.body);
  };
  for (const t of trees.values()) collect(t);

  const funcs = {
    quote: (v) => JSON.stringify(str(v)),
    nindent: (n, v) => `\n${str(v).split('\n').map((l) => ' '.repeat(n) + l).join('\n')}`,
    indent: (n, v) => str(v).split('\n').map((l) => ' '.repeat(n) + l).join('\n'),
    toYaml,
    b64enc: (v) => Buffer.from(str(v)).toString('base64'),
    lower: (v) => str(v).toLowerCase(),
    default: (d, v) => (truthy(v) ? v : d),
    required: (msg, v) => {
      if (!truthy(v)) throw new TemplateError(`required: ${msg}`);
      return v;
    },
    printf: (fmt, ...args) => {
      let k = 0;
      return fmt.replace(/%[sdv]/g, () => str(args[k++]));
    },
    trunc: (n, v) => str(v).slice(0, n),
    trimSuffix: (s, v) => (str(v).endsWith(s) ? str(v).slice(0, -s.length) : str(v)),
    not: (v) => !truthy(v),
    and: (...vs) => vs.find((v) => !truthy(v)) ?? vs[vs.length - 1],
    or: (...vs) => vs.find((v) => truthy(v)) ?? vs[vs.length - 1],
  };

  function evalPipeline(tokens, dot, vars) {
    let pos = 0;
    const operand = () => {
      const t = tokens[pos++];
      if (t === undefined) throw new TemplateError('expression ends early');
      if (t === '(') {
        const inner = [];
        let depth = 1;
        while (pos < tokens.length) {
          const u = tokens[pos++];
          if (u === '(') depth++;
          if (u === ')' && --depth === 0) break;
          inner.push(u);
        }
        return { value: evalPipeline(inner, dot, vars) };
      }
      if (t.startsWith('"')) return { value: JSON.parse(t) };
      if (/^-?\d/.test(t)) return { value: Number(t) };
      if (t === 'true' || t === 'false') return { value: t === 'true' };
      if (t === '.') return { value: dot };
      if (t.startsWith('.')) return { value: fieldOf(dot, t) };
      if (t.startsWith('$')) {
        const [name, ...path] = t.split('.');
        const base = name === '$' ? top : vars.get(name);
        return { value: fieldOf(base, path.join('.')) };
      }
      return { fn: t };
    };
    const commands = [];
    let current = [];
    while (pos < tokens.length) {
      if (tokens[pos] === '|') {
        pos++;
        commands.push(current);
        current = [];
        continue;
      }
      current.push(operand());
    }
    commands.push(current);
    let piped;
    let first = true;
    for (const cmd of commands) {
      const [head, ...rest] = cmd;
      const args = rest.map((a) => {
        if (a.fn !== undefined) throw new TemplateError(`a function as an argument: ${a.fn}`);
        return a.value;
      });
      if (!first) args.push(piped);
      first = false;
      if (head.fn === undefined) {
        if (args.length > 0) throw new TemplateError('a value cannot take arguments');
        piped = head.value;
      } else if (head.fn === 'include') {
        const body = defines.get(args[0]);
        if (!body) throw new TemplateError(`include of an unknown template ${args[0]}`);
        piped = render(body, args[1], new Map());
      } else {
        const f = funcs[head.fn];
        if (!f) throw new TemplateError(`function ${head.fn} is not supported by this renderer`);
        piped = f(...args);
      }
    }
    return piped;
  }

  function render(list, dot, vars) {
    let out = '';
    for (const n of list.items) {
      if (n.kind === 'text') out += n.text;
      else if (n.kind === 'define') continue;
      else if (n.kind === 'action') {
        const toks = tokenize(n.expr);
        out += str(evalPipeline(toks, dot, vars));
      } else if (n.kind === 'if') {
        out += truthy(evalPipeline(tokenize(n.expr), dot, vars)) ? render(n.body, dot, vars) : n.alt ? render(n.alt, dot, vars) : '';
      } else if (n.kind === 'with') {
        const v = evalPipeline(tokenize(n.expr), dot, vars);
        out += truthy(v) ? render(n.body, v, vars) : n.alt ? render(n.alt, dot, vars) : '';
      } else if (n.kind === 'range') {
        const toks = tokenize(n.expr);
        const assign = toks.indexOf(':=');
        const names = assign < 0 ? [] : toks.slice(0, assign).filter((t) => t !== ',');
        const coll = evalPipeline(assign < 0 ? toks : toks.slice(assign + 1), dot, vars);
        const entries = Array.isArray(coll) ? coll.map((v, i) => [i, v]) : coll && typeof coll === 'object' ? Object.entries(coll).sort(([a], [b]) => (a < b ? -1 : 1)) : [];
        if (entries.length === 0 && n.alt) out += render(n.alt, dot, vars);
        for (const [k, v] of entries) {
          const scope = new Map(vars);
          if (names.length === 2) {
            scope.set(names[0], k);
            scope.set(names[1], v);
          } else if (names.length === 1) scope.set(names[0], v);
          out += render(n.body, v, scope);
        }
      }
    }
    return out;
  }

  const rendered = {};
  for (const [f, tree] of trees) {
    if (f.startsWith('_')) continue;
    rendered[basename(f)] = render(tree, top, new Map());
  }
  return rendered;
}

export { TemplateError };
