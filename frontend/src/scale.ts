// Which densities the heatmap's colours stand for, at the map's zoom.
//
// The tiles colour density on a log scale between scale.min (transparent below) and scale.max
// (yellow), both proportional to the peak density of one report, 1 / (2π bandwidth²). The
// bandwidth grows at coarse zooms where one cell is wider than the configured kernel: it is
// max(bandwidth_m, cell size). heatmap/get is asked at a coarser zoom than the map's (to keep
// its answer small), so its scale is converted to the map's zoom by the ratio of bandwidths².

const EARTH_CIRCUMFERENCE_M = 40_075_016.686;
const TILE = 256;
const MAX_LAT = 85.05112878;

/** Ground size (m) of one heatmap cell (one tile pixel) at zoom z and latitude lat. */
export function cellGroundM(z: number, lat: number): number {
  const l = Math.max(-MAX_LAT, Math.min(MAX_LAT, lat));
  return (EARTH_CIRCUMFERENCE_M * Math.cos((l * Math.PI) / 180)) / (TILE * 2 ** z);
}

export function bandwidthAt(bandwidthM: number, z: number, lat: number): number {
  return Math.max(bandwidthM, cellGroundM(z, lat));
}

export interface Scale {
  min: number;
  max: number;
}

/** The colour ramp's ends at zoom `z` from one known at bandwidth `knownBandwidthM`. */
export function scaleAtZoom(known: Scale, knownBandwidthM: number, bandwidthM: number, z: number, lat: number): Scale {
  const ratio = (knownBandwidthM / bandwidthAt(bandwidthM, z, lat)) ** 2;
  return { min: known.min * ratio, max: known.max * ratio };
}

/** Zoom for heatmap/get: as fine as the map's, but with at most `budget` cells for the view. */
export function summaryZoom(mapZoom: number, widthPx: number, heightPx: number, budget = 4096): number {
  const cells = Math.max(1, widthPx) * Math.max(1, heightPx);
  const steps = Math.max(0, Math.ceil(Math.log2(Math.sqrt(cells / budget))));
  return Math.max(0, mapZoom - steps);
}
