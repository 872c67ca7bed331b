export * from './task.js';
export * from './messages.js';
export * from './chunks.js';
export * from './validate.js';
export * from './codec.js';
export * from './secagg.js';
