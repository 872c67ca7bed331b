#!/bin/sh
# Rebuilds the wasm kernels from kernels.c and writes them, base64-encoded, into ../native-module.ts (the
# only file the runtime reads; neither clang nor this script is needed to run or test the project).
# Needs clang and wasm-ld with the wasm32 target (Debian/Ubuntu: apt-get install clang lld).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clang --target=wasm32 -O3 -msimd128 -nostdlib -fno-builtin \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all \
  -Wl,--export=gemm -Wl,--export=colsum \
  -o "$out/kernels.wasm" "$here/kernels.c"
# The module runs on memory it does not own: refuse static data (it would be written over the backend's
# memory at instantiation) and any use of globals (the C stack), calls or growth.
objdump=${OBJDUMP:-llvm-objdump}
if "$objdump" -h "$out/kernels.wasm" | grep -E '[[:space:]](DATA|DATACOUNT|START)[[:space:]]' >/dev/null; then
  echo "kernels.wasm has static data; keep constants in code" >&2
  exit 1
fi
if "$objdump" -d "$out/kernels.wasm" | grep -E 'global\.|memory\.grow|[[:space:]]call[[:space:]]' >/dev/null; then
  echo "kernels.wasm uses the stack, calls or grows memory; keep every function a leaf with register-only state" >&2
  exit 1
fi
node "$here/embed.mjs" "$out/kernels.wasm" "$here/kernels.c" "$here/../native-module.ts"
