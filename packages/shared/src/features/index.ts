export * from './schema.js';
export * from './fingerprint.js';
export * from './schema-file.js';
export * from './builtin/index.js';
export { RowEncoder, SKIP_REASONS, canonicalCategory, hashCategory, type SkipReason } from './encode.js';
export * from './read.js';
export * from './table.js';
export * from './stats.js';
