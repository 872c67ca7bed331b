/** The round engine and the types it exchanges, from the coordinator package (one place to import them from). */
export { RoundEngine, createMemoryHub } from '@fedmeta/coordinator';
export type { Checkpoint, DpConfig, EngineConfig, EngineStore, PrivacySpent, RoundJournalEntry, RoundOffer, RoundRecord, SiteUpdate } from '@fedmeta/coordinator';
