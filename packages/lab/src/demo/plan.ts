import type { SplitPlan } from '../eval/splits.js';

/**
 * Which branch office sees which threats. The split itself (disjoint benign slices, the validation and the
 * held-out office) is the evaluation harness's, so the processes of the demo and the in-process baselines
 * work on exactly the same flows.
 */
export interface DemoPlan {
  /** The flow file the offices' data is cut from, relative to the repository root. */
  dataset: string;
  /** Feature schema of the federation (a built-in name). */
  schema: string;
  /** Training offices and their attack families. */
  sites: { name: string; families: string[] }[];
  /** Held out of every office; only used to choose the adaptation steps and step size. */
  validationFamily: string;
  /** The held-out office's family: no training office ever sees it. */
  evalFamily: string;
}

/**
 * The shipped CIC-IDS2017 sample as branch offices. Botnet is the held-out office's threat: it is the family on
 * which starting points differ most. SSH-Patator is the validation family (as in the reference protocol), so
 * the FTP/SSH office trains on FTP brute force only. Heartbleed (11 flows) is given to no office.
 */
export const CIC_DEMO_PLAN: DemoPlan = {
  dataset: 'data/cic-ids2017/cic-ids2017-sample.csv.gz',
  schema: 'cicflowmeter',
  sites: [
    { name: 'office-ftp-ssh', families: ['FTP-Patator'] },
    { name: 'office-dos', families: ['DoS Hulk', 'DoS GoldenEye', 'DoS Slowloris', 'DoS Slowhttptest'] },
    { name: 'office-ddos-scan', families: ['DDoS', 'Portscan'] },
    {
      name: 'office-web-infil',
      families: ['Web Attack - Brute Force', 'Web Attack - SQL Injection', 'Web Attack - XSS', 'Infiltration', 'Infiltration - Portscan'],
    },
  ],
  validationFamily: 'SSH-Patator',
  evalFamily: 'Botnet',
};

/** The harness's view of the plan: every office standardises with its own statistics, as an agent does. */
export function splitPlanOf(plan: DemoPlan): SplitPlan {
  return { sites: plan.sites, validationFamily: plan.validationFamily, normalization: 'site' };
}
