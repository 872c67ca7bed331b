export * from './types.js';
export { PALETTE, barChart, escapeXml, fmtTick, lineChart, niceTicks } from './svg.js';
export type { Bar, BarChartOptions, LineChartOptions, Series, SeriesPoint } from './svg.js';
export { METHOD_NOTES, formatBytes, kValues, methodNames, renderReport } from './html.js';
export { formatResultsTable } from './text-table.js';
