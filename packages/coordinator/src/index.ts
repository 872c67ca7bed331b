export * from './config.js';
export * from './state/index.js';
export * from './engine/index.js';
export * from './transport/index.js';
export * from './admin/index.js';
export * from './cli/index.js';
export * from './serve.js';
