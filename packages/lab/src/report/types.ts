import type { MetricSummary } from '../metrics/index.js';

/** One method's scores at one K, as the harness summarises them. */
export type MetricsAtK = MetricSummary;

export interface CommunicationEntry {
  targetF1: number;
  roundsToTarget: number | null;
  bytesUploadedPerSite: number | null;
}

/**
 * The results the report reads: the harness's results.json, read structurally. The report only needs the fields
 * named here, so any results file of that format renders.
 */
export interface ResultsLike {
  dataset: string;
  evalFamilies: string[];
  seeds: number | number[];
  /** methods[method][K] */
  methods: Record<string, Record<string, MetricsAtK>>;
  communication: Record<string, CommunicationEntry>;
  /** Held-out score at the target after each round, per federated method. */
  curves?: Record<string, { round: number; f1: number; f1At50: number }[]>;
  target?: { family: string; K: number; metric: 'f1' | 'f1At50'; value: number };
}

/** One point of the federation's learning curve: one committed round. */
export interface RoundPoint {
  round: number;
  /** Mean query loss the sites reported after adaptation. */
  queryLoss?: number | null;
  /** Mean validation F1 the sites reported. */
  valF1?: number | null;
  /** Per-site validation F1, by site name. */
  sites?: Record<string, number>;
}

export interface LearningCurve {
  /** Which run this is ("fomaml over 4 offices"). */
  label: string;
  points: RoundPoint[];
  /** The version released to the offices, marked on the chart. */
  releasedRound?: number | null;
}

export interface ReportInput {
  title: string;
  results: ResultsLike;
  curves: LearningCurve[];
  /** Short facts about the run, shown as a list (sites, rounds, wall time). Plain text. */
  facts?: string[];
  /** Paragraphs of plain-text findings (e.g. where meta-learning did not win). */
  findings?: string[];
  /** Descriptions of methods, over the built-in ones (e.g. how this run trained a method). */
  methodNotes?: Record<string, string>;
  generatedAt: string;
}
