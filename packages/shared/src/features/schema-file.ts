import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, FedmetaError } from '../errors.js';
import { builtinSchemaNames, builtinSchema } from './builtin/index.js';
import { parseFeatureSchema, type FeatureSchema } from './schema.js';

/** Schema files larger than this are certainly not schemas; refusing early avoids parsing a data file by mistake. */
const MAX_SCHEMA_FILE_BYTES = 1 << 20;

/**
 * Parses schema text: JSON when the name ends in .json, YAML otherwise (YAML also accepts JSON). The parser's
 * own message is not echoed, because it may quote the file's content.
 */
export function parseSchemaText(text: string, source: string): FeatureSchema {
  let data: unknown;
  try {
    data = extname(source).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true });
  } catch {
    throw new FedmetaError(
      ErrorCode.BAD_SCHEMA_FILE,
      `feature schema ${source} is not well-formed ${extname(source).toLowerCase() === '.json' ? 'JSON' : 'YAML'}; check its syntax`,
    );
  }
  return parseFeatureSchema(data, source);
}

/** Reads and validates a user's feature schema file (JSON or YAML). Refuses with BAD_SCHEMA_FILE. */
export async function loadSchemaFile(path: string): Promise<FeatureSchema> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new FedmetaError(ErrorCode.BAD_SCHEMA_FILE, `cannot read feature schema file ${basename(path)} (${code}); check the path`);
  }
  if (buf.length > MAX_SCHEMA_FILE_BYTES) {
    throw new FedmetaError(
      ErrorCode.BAD_SCHEMA_FILE,
      `feature schema file ${basename(path)} is ${buf.length} bytes, over the ${MAX_SCHEMA_FILE_BYTES}-byte limit; is it a data file?`,
    );
  }
  return parseSchemaText(buf.toString('utf8'), basename(path));
}

/**
 * A built-in schema by name, or a schema file by path: what a config's `schema` field names.
 * Anything that is not a built-in name is read as a path.
 */
export async function resolveSchema(nameOrPath: string): Promise<FeatureSchema> {
  if ((builtinSchemaNames as readonly string[]).includes(nameOrPath)) return builtinSchema(nameOrPath);
  return loadSchemaFile(nameOrPath);
}
