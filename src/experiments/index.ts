/**
 * Experiments that make the library's claims visible. Browser-safe (no node imports): the CLI writes the files.
 */
export { degradation, downsampleDataset } from './degradation.js';
export type { DegradationOptions, DegradationResult, DegradationSchedule, NetResult, CurvePoint } from './degradation.js';
export { gradientNorms, responseStds, layerWeights, l2norm, tensorStd } from './probes.js';
export type { LayerGradNorms } from './probes.js';
export { degradationFigures, trainingCurvesSvg, gradientNormsSvg, responseStdSvg, settingNote } from './figures.js';
export { plotPanels, escapeXml, niceTicks, logTicks, tickLabel, shades } from './svg.js';
export type { Panel, Series, FigureOptions } from './svg.js';
export { seedSummary, seedCurvesSvg, formatSeedSummary, spread } from './seeds.js';
export type { SeedSummary, SeedNetSummary, Spread } from './seeds.js';
