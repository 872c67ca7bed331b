export { toLayersModel, TFJS_LAYERS_VERSION, WEIGHTS_FILE } from './layers-model.js';
export type { ExportMetadata, ExportSource, LayersModelExport, LayersModelJson } from './layers-model.js';
export { MODEL_JSON, readLayersModel, writeLayersModel } from './files.js';
export type { LayersModelArtifacts } from './files.js';
export { exportModel } from './command.js';
export type { ExportCommandOptions } from './command.js';
