/**
 * Just enough of a WebAssembly encoder to build the project's few hand-written kernels (wasm-kernels.ts):
 * one module, i32 parameters and locals, structured loops, f32 and v128 loads and stores, one imported
 * memory. Each kernel is a function of byte offsets into the tfjs wasm backend's own memory.
 */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

/** Opcodes, named as in the WebAssembly text format. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  f32Const: 0x43,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  f32Gt: 0x5e,
  f32Load: [0x2a, 2, 0],
  f32Store: [0x38, 2, 0],
  v128Load: [0xfd, 0x00, 0, 0],
  v128Store: [0xfd, 0x0b, 0, 0],
  f32x4Gt: [0xfd, 0x44],
  v128And: [0xfd, 0x4e],
  v128Zero: [0xfd, 0x0c, ...new Array<number>(16).fill(0)],
} as const;

export const I32 = 0x7f;

export const get = (local: number): number[] => [op.localGet, local];
export const set = (local: number): number[] => [op.localSet, local];
export const i32 = (n: number): number[] => [op.i32Const, ...sleb(n)];
export const f32Zero = (): number[] => [op.f32Const, 0, 0, 0, 0];

/** for (v = from; v < limit; v += step) body; each of from/limit/step leaves one i32 on the stack. */
export function forLoop(v: number, from: number[], limit: number[], step: number[], body: number[]): number[] {
  return [
    ...from, ...set(v),
    ...op.block, ...op.loop,
    ...get(v), ...limit, op.i32GeU, op.brIf, 1,
    ...body,
    ...get(v), ...step, op.i32Add, ...set(v),
    op.br, 0, op.end, op.end,
  ];
}

export const minU = (a: number[], b: number[]): number[] => [...a, ...b, ...a, ...b, op.i32LtU, op.select];

export interface FunctionDef {
  name: string;
  params: number;
  /** Extra i32 locals, numbered after the parameters. */
  locals: number;
  body: number[];
}

/** A module importing `env.memory` (with the given limits bytes) and exporting void functions of i32s. */
export function assemble(memoryLimits: number[], fns: readonly FunctionDef[]): Uint8Array {
  const types = fns.flatMap((f) => [0x60, ...uleb(f.params), ...new Array<number>(f.params).fill(I32), 0]);
  const codes = fns.map((f) => {
    const body = [...(f.locals > 0 ? [1, ...uleb(f.locals), I32] : [0]), ...f.body, op.end];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [...uleb(fns.length), ...types]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, ...memoryLimits]),
    ...section(3, [...uleb(fns.length), ...fns.map((_, i) => i)]),
    ...section(7, [...uleb(fns.length), ...fns.flatMap((f, i) => [...name(f.name), 0x00, ...uleb(i)])]),
    ...section(10, [...uleb(fns.length), ...codes.flat()]),
  ]);
}
