// How much each fault scenario injects. The suite (`npm run test:faults`) must stay well under ten minutes on two
// cores; the soak (`npm run soak -- --minutes N`) runs the same scenarios with the counts the issue sets for it.
// scripts/run-faults.mjs passes the profile to the test processes in FEDMETA_FAULTS_PROFILE.

export interface FaultProfile {
  name: 'suite' | 'soak';
  /** kill -9 of the coordinator at each crash point. */
  crashesPerPoint: number;
  /** Mutated messages the fuzzer sends (authenticated and unauthenticated together). */
  fuzzMessages: number;
  /** Agents in the churn federation. */
  churnSites: number;
  /** Seconds of random kills and restarts of agents. */
  churnSeconds: number;
  /** SIGSTOP/SIGCONT network cuts. */
  partitions: number;
  /** Rounds in which 30% of the agents are dropped mid-round. */
  dropRounds: number;
  /** Connections opened by the connection flood. */
  floodConnections: number;
  /** Seconds of the tiny-message flood. */
  floodSeconds: number;
}

export const PROFILES: Record<FaultProfile['name'], FaultProfile> = {
  suite: {
    name: 'suite',
    crashesPerPoint: 5,
    fuzzMessages: 100_000,
    churnSites: 6,
    churnSeconds: 15,
    partitions: 2,
    dropRounds: 2,
    floodConnections: 600,
    floodSeconds: 4,
  },
  soak: {
    name: 'soak',
    crashesPerPoint: 20,
    fuzzMessages: 1_000_000,
    churnSites: 10,
    churnSeconds: 120,
    partitions: 10,
    dropRounds: 10,
    floodConnections: 3000,
    floodSeconds: 30,
  },
};

export const PROFILE_ENV = 'FEDMETA_FAULTS_PROFILE';
/** JSON object of counts that replace the profile's, for a quick look while working on one scenario. */
export const COUNTS_ENV = 'FEDMETA_FAULTS_COUNTS';

export function faultProfile(): FaultProfile {
  const name = process.env[PROFILE_ENV] ?? 'suite';
  const p = PROFILES[name as FaultProfile['name']];
  if (p === undefined) throw new Error(`${PROFILE_ENV} must be one of ${Object.keys(PROFILES).join(', ')}`);
  const counts = process.env[COUNTS_ENV];
  return counts ? { ...p, ...(JSON.parse(counts) as Partial<FaultProfile>) } : p;
}
