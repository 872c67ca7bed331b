export { followFile } from './tail-file.js';
export type { FollowOptions } from './tail-file.js';
export { csvRecords, parseQuotedLine } from './csv-records.js';
export type { CsvRecordsOptions } from './csv-records.js';
