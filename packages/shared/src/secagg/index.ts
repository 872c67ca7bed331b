export * from './types.js';
export { SecAggClient } from './client.js';
export { SecAggServer } from './server.js';
export { identityFromCredential, generateIdentity, identityFromSeed } from './crypto.js';
export { openSession, SECAGG_MAX_DIM, type SecAggSession } from './session.js';
export { makeQuantizer, clippedWeightedSum, type Quantizer } from './quantize.js';
export { buildGraph, type NeighbourGraph } from './graph.js';
export { splitSecret, reconstructSecret, SHAMIR_PRIME, SHARE_BYTES, type Share } from './shamir.js';
export { simulateSecAggRound, type SimulatedRound, type SimulateOptions, type SecAggDropPhase } from './simulate.js';
