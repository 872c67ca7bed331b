export * from './errors.js';
export * from './params.js';
