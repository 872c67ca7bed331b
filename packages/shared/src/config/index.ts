export { defineConfig } from './define.js';
export type { ConfigDefinition, ConfigLoader, ConfigLoadOptions } from './define.js';
export type { ConfigLeaf, OptionDescription, OptionType } from './leaves.js';
