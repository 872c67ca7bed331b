export * from './rng.js';
export * from './split.js';
export * from './episode.js';
